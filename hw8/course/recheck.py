"""The grader's re-check: every test cell run again, outside the student's kernel.

``nbgrader autograde`` runs a submission in a Jupyter kernel, and there the student's code
shares the process with the test cells: a student cell can replace ``hw8.grading``'s
checks, torch or numpy functions, or IPython's error display, and a test then passes that
should fail. So after the kernel run, :class:`Recheck` (an autograde preprocessor, set in
``nbgrader_config.py``) runs the notebook once more in a fresh Python process
(``python -m hw8.course.recheck``), where:

1. before any student code, the runner imports every module the course's cells import
   (installed modules only: a ``numpy.py`` or ``hw8/`` handed in beside the notebook is
   never imported) and records those the tests use (``builtins``, ``math``, ``numpy``,
   ``torch`` and its ``nn.functional``, ``Tensor``, ``distributions``, ``sklearn.metrics``
   where loaded, and every ``hw8`` module: their attributes and the code of their Python
   functions) and the names the locked cells define;
2. student code (solution cells, the free cell, any cell the student added) runs as in the
   kernel, but each time it finishes (its cell ends, or a function the student wrote
   returns to the tests' code) everything recorded is put back as it was;
3. the test cells run as written. A test cell that fails here loses its points even if it
   passed in the kernel; one that fails in the kernel stays failed. The re-check never
   adds points, and the kernel's output (what the student reads) is kept.

Each verdict carries a one-time token the runner reads before any student code runs. A
kernel cannot be a sandbox: code written to read the runner's memory (frames, ``gc``) or
to patch C extensions can still cheat; ``hw8.course.scan`` flags such code for a person.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

GUARDED_MODULES = (
    "builtins",
    "math",
    "sys",
    "numpy",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.distributions",
    "torch.distributions.kl",
    "torch.linalg",
    "torch.testing",
    "sklearn.metrics",
)
SKIP_TAG = "skip-recheck"
STUDENT = "<student"


# ----------------------------------------------------------------------------- the guard


class Guard:
    """Records the state student code could tamper with, and puts it back on demand."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.modules = [sys.modules[name] for name in self._guarded_names()]
        self.classes = [cls for cls in self._guarded_classes() if _mutable(cls)]
        self.saved_modules = {name: sys.modules[name] for name in self._guarded_names()}
        self.attributes = [(owner, dict(vars(owner))) for owner in self.modules + self.classes]
        self.codes = [
            (function, function.__code__, function.__defaults__, function.__kwdefaults__)
            for _owner, values in self.attributes
            for function in values.values()
            if isinstance(function, types.FunctionType)
        ]
        self.locked: dict = {}
        self.hook = None

    @staticmethod
    def _guarded_names() -> list[str]:
        names = [name for name in GUARDED_MODULES if name in sys.modules]
        return names + sorted(name for name in sys.modules if name.split(".")[0] == "hw8")

    @staticmethod
    def _guarded_classes() -> list[type]:
        import numpy as np
        import torch

        return [torch.Tensor, torch.nn.Module, torch.nn.Parameter, np.ndarray]

    def lock_names(self) -> None:
        """Record the notebook's names that instructor code (not student code) defined."""
        for name, value in self.namespace.items():
            if not _from_student(value):
                self.locked[name] = value

    def restore(self) -> None:
        """Put back every recorded module, attribute, function body and locked name."""
        self.restore_modules()
        self.namespace.update(self.locked)
        sys.settrace(self.hook)

    def restore_modules(self) -> None:
        """Put back the recorded modules, their attributes and their functions' code."""
        sys.modules.update(self.saved_modules)
        for owner, values in self.attributes:
            current = vars(owner)
            for name in [n for n in current if n not in values and not n.startswith("__")]:
                _delete(owner, name)
            for name, value in values.items():
                if current.get(name, _MISSING) is not value:
                    _assign(owner, name, value)
        for function, code, defaults, kwdefaults in self.codes:
            if function.__code__ is not code:
                function.__code__ = code
            function.__defaults__, function.__kwdefaults__ = defaults, kwdefaults

    def install(self) -> None:
        """Undo what student code changed, each time it returns to the course's code.

        On entering student code from course code the locked names are noted; on the way
        back the modules are restored and the locked names put back as they were at entry
        (so a test cell's own names survive, and a student's ``global grading`` does not).
        The hook is a trace function: it runs once per Python call, and only the frames
        where student code is entered get a return hook (a profile hook would also run
        for every C call and every return, and cost up to a second per notebook). The
        return hook belongs to the frame, so it fires even after student code has called
        ``sys.settrace(None)``, and it sets the hook again.
        """
        entries: list[dict] = []

        def on_return(_frame, event, _arg):
            if event != "return":
                return on_return
            self.restore_modules()
            for name, value in (entries.pop() if entries else {}).items():
                if value is _MISSING:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value
            sys.settrace(on_call)
            return None

        def on_call(frame, _event, _arg):
            if not frame.f_code.co_filename.startswith(STUDENT):
                return None
            caller = frame.f_back
            if caller is not None and caller.f_code.co_filename.startswith(STUDENT):
                return None
            entries.append({name: self.namespace.get(name, _MISSING) for name in self.locked})
            frame.f_trace_lines = False
            return on_return

        self.hook = on_call
        sys.settrace(on_call)

    def intact(self) -> bool:
        """True while the runner's own hook is still in place."""
        return sys.gettrace() is self.hook


_MISSING = object()


def _mutable(cls: type) -> bool:
    try:
        cls.__hw8_probe__ = None
        delattr(cls, "__hw8_probe__")
    except TypeError:
        return False
    return True


def _assign(owner, name, value) -> None:
    try:
        setattr(owner, name, value)
    except (AttributeError, TypeError):
        pass


def _delete(owner, name) -> None:
    try:
        delattr(owner, name)
    except (AttributeError, TypeError):
        pass


def _from_student(value) -> bool:
    code = getattr(value, "__code__", None)
    if code is None and isinstance(value, type):
        code = next(
            (f.__code__ for f in vars(value).values() if isinstance(f, types.FunctionType)),
            None,
        )
    return code is not None and code.co_filename.startswith(STUDENT)


# ----------------------------------------------------------------------------- the runner


class CellTimeout(BaseException):
    """A cell ran past its time limit (raised by the alarm, like a kernel interrupt)."""


def _alarm(_signum, _frame):
    raise CellTimeout()


class Node(dict):
    """A JSON object whose keys read as attributes too, as nbformat's cells do."""

    __getattr__ = dict.__getitem__


def cell_role(cell) -> str:
    """test, locked (instructor code), skip, or student."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("locked"):
        return "skip" if SKIP_TAG in cell.metadata.get("tags", []) else "locked"
    return "student"


def run_notebook(nb, cell_timeout: int, emit) -> None:
    """Run every code cell under the guard; ``emit(grade_id, ok, message)`` per test cell."""
    import builtins

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    shell = InteractiveShell.instance()
    builtins.get_ipython, builtins.display = shell.get_ipython, display
    load_course_modules(nb, shell)
    namespace = shell.user_ns
    signal.signal(signal.SIGALRM, _alarm)
    guard = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        role = cell_role(cell)
        if role == "skip":
            continue
        label = cell.get("id", "cell")
        kind = STUDENT if role == "student" else "<course"
        try:
            code = compile(shell.transform_cell(cell.source), f"{kind}:{label}>", "exec")
        except SyntaxError as error:
            if role == "test":
                emit(cell.metadata["nbgrader"]["grade_id"], False, f"SyntaxError: {error}")
            continue
        if guard is None and role != "locked":
            guard = Guard(namespace)
            guard.lock_names()
            guard.install()
        if guard is not None and role != "student":
            guard.restore()
        error = _run(code, namespace, cell_timeout)
        if guard is not None and role == "student":
            guard.restore()
        if role == "test":
            if error is None and guard is not None and not guard.intact():
                error = "the grader's checks were switched off by the code under test"
            emit(cell.metadata["nbgrader"]["grade_id"], error is None, error or "")
        if guard is not None and role != "student":
            guard.lock_names()


def load_course_modules(nb, shell) -> None:
    """Import, before any student code, what the course's cells import and the guarded
    modules of every package loaded by then, so that the guard records them all.

    Only installed modules are loaded here: the submission's folder is taken off
    ``sys.path`` meanwhile, and put back at its end (a student's own helper module still
    imports; a ``numpy.py`` or ``hw8/`` handed in beside the notebook shadows nothing).
    Packages no course cell needs (``sklearn`` in most notebooks) are not loaded at all.
    """
    folder = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if entry not in ("", ".", folder)]
    for name in ("numpy", "torch", *course_imports(nb, shell)):
        _try_import(name)
    for name in GUARDED_MODULES:
        if name.split(".")[0] in sys.modules:
            _try_import(name)
    sys.path.append(folder)


def course_imports(nb, shell) -> list[str]:
    """The modules named by import statements in the locked and test cells that run here;
    for ``from package import name`` also ``package.name``, in case it is a submodule."""
    import ast

    names = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell_role(cell) not in ("locked", "test"):
            continue
        try:
            tree = ast.parse(shell.transform_cell(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


def _try_import(name: str) -> None:
    import importlib

    try:
        importlib.import_module(name)
    except Exception:  # not a module, or not installed: the cell that needs it fails itself
        pass


def _run(code, namespace: dict, cell_timeout: int) -> str | None:
    """Execute one cell; None when it succeeded, else the error in one line."""
    signal.alarm(cell_timeout)
    try:
        exec(code, namespace)
    except CellTimeout:
        return f"the cell ran past its time limit of {cell_timeout} s"
    except BaseException as error:  # SystemExit and KeyboardInterrupt included
        return f"{type(error).__name__}: {error}"
    finally:
        signal.alarm(0)
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m hw8.course.recheck CELLS_JSON CELL_TIMEOUT FOLDER``, the token on stdin.

    It is started outside FOLDER (the submission's copy), so that ``-m`` finds this module
    and not a ``hw8`` package handed in beside the notebook; the cells run in FOLDER.
    """
    path, cell_timeout, folder = (argv or sys.argv[1:])[:3]
    token = sys.stdin.readline().strip()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(folder)

    def emit(grade_id: str, ok: bool, message: str) -> None:
        out.write(f"{token} {json.dumps([grade_id, ok, message])}\n")

    with open(path) as stream:  # the code cells only (``Recheck`` writes them); no nbformat:
        nb = json.load(stream, object_hook=Node)  # importing it costs a second per process
    run_notebook(nb, int(cell_timeout), emit)
    out.write(f"{token} done\n")
    out.flush()
    os._exit(0)  # no student finaliser runs after the verdicts


# ----------------------------------------------------------------------------- the grader's side


LINK_ABOVE_BYTES = 50 * 2**20


class Recheck:
    """The re-check of one notebook, running in its own process and scratch folder.

    It starts before the kernel run and runs beside it (a submission is graded in about
    half the time); :meth:`failures` waits for it. The scratch folder holds a copy of the
    submission's folder, so the two runs never read each other's half-written files; files
    over 50 MB (data sets, weights: read, not written) are linked, not copied.
    """

    def __init__(self, nb, folder: Path | str, cell_timeout: int, total_timeout: int):
        self.token = secrets.token_hex(16)
        self.tests = [
            cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells if cell_role(cell) == "test"
        ]
        self.deadline = time.monotonic() + total_timeout
        self.scratch = tempfile.TemporaryDirectory()
        root = Path(self.scratch.name)
        work = root / "submission"
        shutil.copytree(folder, work, symlinks=True, copy_function=_copy_or_link)
        source = root / "cells.json"
        keys = ("id", "cell_type", "metadata", "source")
        code = [{key: cell.get(key, "") for key in keys} for cell in nb.cells]
        code = [cell for cell in code if cell["cell_type"] == "code"]
        source.write_text(json.dumps({"cells": code}))
        self.verdicts = root / "verdicts.txt"
        with open(self.verdicts, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hw8.course.recheck", str(source), str(cell_timeout), work],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.DEVNULL,
                cwd=root,
                text=True,
                start_new_session=True,
            )
        self.process.stdin.write(self.token + "\n")
        self.process.stdin.close()

    def failures(self) -> dict[str, str]:
        """Wait for the re-check; the grade ids it did not confirm, with why."""
        try:
            self.process.wait(timeout=max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        finally:
            _kill_group(self.process)
        stdout = self.verdicts.read_text(errors="replace")
        self.scratch.cleanup()
        return self._read(stdout)

    def _read(self, stdout: str) -> dict[str, str]:
        confirmed, failures = set(), {}
        for line in stdout.splitlines():
            if not line.startswith(self.token + " ["):
                continue
            grade_id, ok, message = json.loads(line[len(self.token) + 1 :])
            if ok:
                confirmed.add(grade_id)
            else:
                failures[grade_id] = message
        for grade_id in self.tests:
            if grade_id not in confirmed and grade_id not in failures:
                failures[grade_id] = "the re-check did not reach this cell (stopped or timed out)"
        return failures


def _copy_or_link(source: str, destination: str) -> None:
    if os.path.getsize(source) > LINK_ABOVE_BYTES:
        os.symlink(os.path.abspath(source), destination)
    else:
        shutil.copy2(source, destination)


def _kill_group(process: subprocess.Popen) -> None:
    """Stop the re-check and anything student code started from it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def recheck(nb, folder: Path | str, cell_timeout: int, total_timeout: int) -> dict[str, str]:
    """Run the re-check of ``nb`` in a copy of ``folder``; the grade ids it did not confirm."""
    return Recheck(nb, folder, cell_timeout, total_timeout).failures()


if __name__ == "__main__":
    sys.exit(main())
