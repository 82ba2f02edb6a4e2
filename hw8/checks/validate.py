"""``hw8 validate NOTEBOOK``: check a homework notebook without nbgrader.

Students on Colab, Kaggle or a laptop may have no nbgrader. This runs the notebook from
top to bottom in a fresh kernel, in its own folder, as ``nbgrader validate`` does (the
notebook file is not changed), and then reads the result the way grading would:

- an exercise is *not done yet* while its cell still holds the stub (``raise
  NotImplementedError()``, in the function it asks for or at the cell's top level), or
  when its cell fails to run (then nothing it should define exists);
- a test cell *passes* only when it ran cleanly **and** reads nothing that depends on an
  exercise not done yet. Names are followed through the notebook: a locked cell that
  calls ``train_sample_models`` makes the names it defines wait for that exercise too, so a
  test whose visible checks happen to pass on a blank notebook (the leaderboard's) still
  counts as failing, and a ``NameError`` for a name an unfinished exercise should define is
  put down to that exercise;
- the notebook is ready (exit status 0) only when every exercise is done and every test
  cell passes. Written answers are graded by hand: they are listed, never counted.

Only the visible tests run here; the hidden ones run when the course grades the notebook.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import symtable
from dataclasses import dataclass, field
from pathlib import Path

from hw8.errors import ValidateError
from hw8.settings import CELL_TIMEOUT_S

STUB = "NotImplementedError"
MAGIC = re.compile(r"^(\s*)[%!?].*$", re.M)  # IPython's magics and shell escapes
CALLED_IN_TEXT = re.compile(r"`([A-Za-z_]\w*)\(")  # "Write `mse_loss(x_hat, x)`"
DEFINED_IN_TEXT = re.compile(
    r"^\s*(?:async\s+def|def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=(?!=)", re.M
)
NAME_ERROR = re.compile(r"name '(\w+)' is not defined")
# the kernel's environment: no debugger warnings about frozen modules (debugpy, in
# ipykernel), which tell a student to change how Python starts
KERNEL_ENV = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}


@dataclass
class Statement:
    """One top-level statement of a code cell: the global names it reads and binds, and
    whether it holds the exercise stub."""

    reads: set[str]
    binds: set[str]
    stub: bool = False
    later: set[str] = field(default_factory=set)  # read only when a function it defines runs


@dataclass
class Exercise:
    """A solution cell: the names it defines (or should), and why it is unfinished
    (None when it is done)."""

    grade_id: str
    names: list[str]
    unfinished: str | None = None
    expected: set[str] = field(default_factory=set)

    @property
    def title(self) -> str:
        return ", ".join(f"`{name}`" for name in self.names) or self.grade_id


@dataclass
class Report:
    """What validate found in an executed notebook."""

    tests: dict[str, str | None]  # test cell -> None (passes) or why it fails
    exercises: list[Exercise]
    locked_errors: dict[str, str]  # locked cells that failed for a reason of their own
    answers: dict[str, tuple[float, bool]]  # written answer -> (points, answered)

    @property
    def unfinished(self) -> list[Exercise]:
        return [exercise for exercise in self.exercises if exercise.unfinished]

    @property
    def ready(self) -> bool:
        """Every exercise done and every test cell passing (written answers aside)."""
        return not self.unfinished and all(why is None for why in self.tests.values())


# ----------------------------------------------------------------------------- reading cells


def graded_meta(cell) -> dict:
    """The cell's nbgrader metadata ({} when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def cell_name(cell) -> str:
    return graded_meta(cell).get("grade_id") or cell.get("id") or "?"


def role(cell) -> str:
    """``test``, ``exercise``, ``answer`` (a written answer), ``code`` or ``text``."""
    meta = graded_meta(cell)
    if cell.get("cell_type") == "code":
        if meta.get("solution"):
            return "exercise"
        return "test" if meta.get("grade") else "code"
    return "answer" if meta.get("solution") and meta.get("grade") else "text"


def error_of(cell) -> tuple[str, str] | None:
    """``(ename, evalue)`` of the error the cell raised, or None when it ran cleanly."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", "Error"), output.get("evalue", "")
    return None


def error_line(error: tuple[str, str]) -> str:
    return f"{error[0]}: {error[1]}".strip().rstrip(":")


def is_stub(node: ast.AST) -> bool:
    """Whether ``node`` holds ``raise NotImplementedError`` (the release's stub)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Raise) and sub.exc is not None:
            exc = sub.exc.func if isinstance(sub.exc, ast.Call) else sub.exc
            if isinstance(exc, ast.Name) and exc.id == STUB:
                return True
    return False


def bound_names(node: ast.stmt) -> set[str]:
    """The global names a top-level statement binds (function and class bodies, lambdas
    and comprehensions are scopes of their own)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    names: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(sub.name)
            continue
        if isinstance(sub, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp):
            continue
        if isinstance(sub, ast.GeneratorExp):
            continue
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            names.add(sub.id)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in sub.names if a.name != "*"}
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            names.add(sub.name)
        stack.extend(ast.iter_child_nodes(sub))
    return names


RUN_AT_ONCE = {"listcomp", "setcomp", "dictcomp", "genexpr"}  # scopes that run where they are


def read_names(source: str) -> tuple[set[str], set[str]]:
    """The global names a piece of module code reads: ``(now, later)``, ``later`` those
    read only inside the functions (and lambdas) it defines, when they are called. Their
    own parameters and locals are left out."""
    table = symtable.symtable(source, "<cell>", "exec")
    now = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    later: set[str] = set()
    stack = [(child, False) for child in table.get_children()]
    while stack:
        child, deferred = stack.pop()
        deferred = deferred or (
            child.get_type() == "function" and child.get_name() not in RUN_AT_ONCE
        )
        names = {s.get_name() for s in child.get_symbols() if s.is_referenced() and s.is_global()}
        (later if deferred else now).update(names)
        stack.extend((grandchild, deferred) for grandchild in child.get_children())
    return now, later - now


def reads_of(node: ast.stmt, bound: frozenset[str] = frozenset()) -> tuple[set[str], set[str]]:
    """The global names a top-level statement reads before binding them itself, as
    ``(now, later)`` (see :func:`read_names`): a block's statements are read in order (a
    loop's or a ``with``'s target, and what an earlier statement of the block binds, are
    not read from before), ``bound`` the names bound already."""
    heads: list[ast.AST] = []
    blocks: list[list[ast.stmt]] = []
    targets: set[str] = set()
    if isinstance(node, ast.For | ast.AsyncFor):
        targets = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        heads, blocks = [node.iter], [node.body, node.orelse]
    elif isinstance(node, ast.While | ast.If):
        heads, blocks = [node.test], [node.body, node.orelse]
    elif isinstance(node, ast.With | ast.AsyncWith):
        for item in node.items:
            if item.optional_vars is not None:
                targets |= {n.id for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name)}
        heads, blocks = [item.context_expr for item in node.items], [node.body]
    elif isinstance(node, ast.Try):
        blocks = [node.body, node.orelse, node.finalbody]
        blocks += [handler.body for handler in node.handlers]
        heads = [handler.type for handler in node.handlers if handler.type is not None]
    else:
        now, later = names_in(ast.unparse(node))
        return now - bound, later - bound
    now: set[str] = set()
    later: set[str] = set()
    for head in heads:
        found_now, found_later = names_in(ast.unparse(head))
        now |= found_now - bound
        later |= found_later - bound
    for block in blocks:
        inside = set(bound | targets)
        for statement in block:
            found_now, found_later = reads_of(statement, frozenset(inside))
            now |= found_now
            later |= found_later
            inside |= bound_names(statement)
    return now, later


def names_in(source: str) -> tuple[set[str], set[str]]:
    try:
        return read_names(source)
    except SyntaxError:  # symtable is stricter than ast about a few constructs
        return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}, set()


def statements(source: str) -> list[Statement] | None:
    """The cell's top-level statements, or None when it is not valid Python."""
    try:
        tree = ast.parse(MAGIC.sub(r"\1pass", source))
    except SyntaxError:
        return None
    found = []
    for node in tree.body:
        now, later = reads_of(node)
        found.append(Statement(now, bound_names(node), is_stub(node), later))
    return found


def text_names(source: str) -> set[str]:
    """Names a cell that cannot be parsed seems to define (``def``, ``class``, ``x =``)."""
    return {a or b for a, b in DEFINED_IN_TEXT.findall(source)}


# ----------------------------------------------------------------------------- the analysis


def analyse(nb) -> Report:
    """Read an executed notebook as grading would (see the module's docstring)."""
    exercises: dict[int, Exercise] = {}
    parsed: dict[int, list[Statement] | None] = {}
    text = ""  # the markdown since the last code cell: what an exercise asks for
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            text += cell.get("source", "") + "\n"
            continue
        parsed[index] = statements(cell.get("source", ""))
        if role(cell) == "exercise":
            exercises[index] = exercise_of(cell, parsed[index], text)
        text = ""

    # Two maps from a global name to the unfinished exercises it depends on: ``made``,
    # a value computed with one (it cannot be right), and ``calls``, a function that may
    # call one when it runs (it fails only if that path runs: counted against a cell
    # only when the cell raised).
    made: dict[str, set[str]] = {}
    calls: dict[str, set[str]] = {}
    tests: dict[str, str | None] = {}
    locked_errors: dict[str, str] = {}
    by_id = {e.grade_id: e for e in exercises.values()}
    known: set[str] = set()  # every name an earlier cell binds

    def roots_of(names, table) -> set[str]:
        return set().union(*(table.get(name, set()) for name in names))

    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        found, error = parsed[index], error_of(cell)
        exercise = exercises.get(index)
        surely = waits_for(cell, found, error, made, exercises, index)
        maybe: set[str] = set()
        if found is None:
            words = set(re.findall(r"[A-Za-z_]\w*", cell.get("source", "")))
            maybe = roots_of(words, calls)
        if exercise is not None and exercise.unfinished:
            reads = {n for statement in found or [] for n in statement.reads | statement.later}
            if exercise.unfinished != "not done yet" and (
                surely or maybe or roots_of(reads, made) or roots_of(reads, calls)
            ):
                exercise.unfinished = None  # it failed on an earlier exercise, not its own
            else:
                names = exercise.expected if found is None or error else set()
                names |= {b for s in found or [] if s.stub for b in s.binds}
                for name in names:
                    made[name], calls[name] = {exercise.grade_id}, set()
                known |= {b for s in found or [] for b in s.binds}
                continue
        # statement by statement: what each reads is what the statements before it left
        bound_here = {name for statement in found or [] for name in statement.binds}
        stopped: set[str] = set()  # a cell that raised: what it binds after that is missing
        for statement in found or []:
            # a function defined here reads, when called, the names the cell binds by then
            later = statement.later - bound_here
            now = roots_of(statement.reads, made)
            deferred = roots_of(statement.reads, calls)
            deferred |= roots_of(later, made) | roots_of(later, calls)
            surely |= now
            maybe |= deferred
            if error:
                stopped |= now | deferred
            for name in statement.binds:  # the last binding decides
                if stopped and not now and name in known:
                    continue  # perhaps never bound again here: the earlier value stays
                made[name], calls[name] = now | stopped, deferred
            known |= statement.binds
        roots = surely | (maybe if error else set())
        if role(cell) == "test":
            if roots:
                waiting = (by_id[r] for r in sorted(roots))
                tests[cell_name(cell)] = "waits for " + ", ".join(
                    f"{e.title} ({e.unfinished})" for e in waiting
                )
            else:
                tests[cell_name(cell)] = error_line(error) if error else None
        elif error and not roots and exercise is None:
            locked_errors[cell_name(cell)] = error_line(error)
    answers = {
        cell_name(cell): (
            float(graded_meta(cell).get("points") or 0),
            answered(cell.get("source", "")),
        )
        for cell in nb.cells
        if role(cell) == "answer"
    }
    return Report(tests, list(exercises.values()), locked_errors, answers)


def exercise_of(cell, found: list[Statement] | None, text: str) -> Exercise:
    """The exercise of a solution cell, before anything ran after it."""
    source = cell.get("source", "")
    asked = set(CALLED_IN_TEXT.findall(text))
    if found is None:
        defined = text_names(source)
        stub = bool(re.search(rf"raise\s+{STUB}", source))
        stubbed = defined if stub else set()
    else:
        defined = set().union(*(s.binds for s in found)) if found else set()
        stubbed = set().union(*(s.binds for s in found if s.stub)) if found else set()
        stub = any(s.stub for s in found)
    names = sorted(stubbed) or sorted(defined & asked) or sorted(asked) or sorted(defined)
    exercise = Exercise(cell_name(cell), names, expected=defined | asked)
    error = error_of(cell)
    if stub or (error and error[0] == STUB):
        exercise.unfinished = "not done yet"
    elif found is None or error:
        exercise.unfinished = error_line(error) if error else "not valid Python"
    return exercise


def waits_for(cell, found, error, made, exercises, index) -> set[str]:
    """The unfinished exercises a cell that cannot be parsed reads names of, or that a
    NameError tells it depends on: the name is one an earlier unfinished exercise should
    define. (What a parsed cell reads is followed statement by statement.)"""
    roots: set[str] = set()
    if found is None:
        words = set(re.findall(r"[A-Za-z_]\w*", cell.get("source", "")))
        roots = set().union(*(made.get(word, set()) for word in words))
    match = NAME_ERROR.search(error[1]) if error and error[0] == "NameError" else None
    if match and not made.get(match.group(1)):
        earlier = [e for i, e in sorted(exercises.items()) if i < index and e.unfinished]
        named = [e for e in earlier if match.group(1) in e.expected]
        if named:
            roots.add(named[-1].grade_id)
    return roots


def answered(source: str) -> bool:
    return bool(source.strip()) and source.strip() != "YOUR ANSWER HERE"


# ----------------------------------------------------------------------------- running


def execute(path: Path, timeout: int):
    """Execute a copy of the notebook in a fresh kernel, in the notebook's folder."""
    try:
        import nbformat
        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient import NotebookClient
        from nbclient.exceptions import DeadKernelError
    except ImportError as error:  # pragma: no cover - nbclient is a requirement of hw8
        raise ValidateError(
            f"it needs Jupyter's nbclient ({error}): run `pip install nbclient`, then again."
        ) from error
    try:
        nb = nbformat.read(path, as_version=4)
    except (ValueError, nbformat.ValidationError) as error:  # NotJSONError is a ValueError
        raise ValidateError(f"{path}: not a notebook file ({error}).") from error
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(
        nb,
        timeout=timeout,
        interrupt_on_timeout=True,  # as grading: an endless loop costs its cell, no more
        allow_errors=True,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # The kernel's own log (ipykernel's warnings about its transport, the debugger's) is
    # not the student's business: it goes nowhere, each cell's error comes back anyway.
    for name, value in KERNEL_ENV.items():  # also here: not every jupyter_client passes env
        os.environ.setdefault(name, value)
    try:
        client.execute(env={**os.environ, **KERNEL_ENV}, stderr=subprocess.DEVNULL)
    except NoSuchKernel as error:
        raise ValidateError(
            f"no Jupyter kernel named {kernel!r} here: run `pip install ipykernel` "
            "(or open the notebook where Jupyter runs it), then again."
        ) from error
    except DeadKernelError as error:
        raise ValidateError(
            f"{path.name}: the kernel died while running it ({error}); out of memory, or "
            "a crash in a library: run it in Jupyter to see which cell."
        ) from error
    return nb


def print_report(name: str, report: Report) -> None:
    passed = sum(why is None for why in report.tests.values())
    total = len(report.tests)
    print(f"{name}: {passed} of {total} test cells pass")
    for exercise in report.unfinished:
        print(f"  {exercise.title}: {exercise.unfinished}")
    for grade_id, why in report.tests.items():
        if why is not None:
            print(f"  FAILED  {grade_id}: {why}")
    for grade_id, why in report.locked_errors.items():
        print(f"  error in {grade_id} (a locked cell, not graded; later tests may need it): {why}")
    if report.answers:
        points = sum(p for p, _ in report.answers.values())
        left = [a for a, (_, done) in report.answers.items() if not done]
        print(
            f"  written answers: {len(report.answers)} ({points:g} points), graded by hand"
            + (f"; not answered yet: {', '.join(left)}" if left else "")
        )
    if report.ready:
        print(
            "  ready: every exercise is done and every test cell passes "
            "(hidden tests run when it is graded)"
        )
    else:
        print("  not ready: autograde would not give this notebook full marks")


def validate(path: Path, timeout: int = CELL_TIMEOUT_S) -> bool:
    """Run one notebook and print its report; True when it is ready to hand in (every
    exercise done, every test cell passing)."""
    if not path.is_file():
        raise ValidateError(f"{path}: no such notebook. Give the path of an .ipynb file.")
    nb = execute(path, timeout)
    report = analyse(nb)
    if not report.tests:
        print(f"{path.name}: no test cells found (is this a homework notebook?)")
        return True
    print_report(path.name, report)
    return report.ready
