"""The grader's reading of a student's source: what a function reaches, read, never run.

Rules such as "``mse_loss`` must not call ``torch.nn.functional.mse_loss``" cannot be
enforced inside a process the student's code controls, so the grader decides them from the
source handed in: the code cells of the notebook and the Python modules beside it. A
function *reaches* its own body and, through the names it reads, every function and class
of the submission it uses. A forbidden name is *used* when the reached code reads it as an
attribute (``F.mse_loss``), imports it, or reads it as a bare name the submission does not
define itself. What reading cannot decide (``getattr`` with a computed name, ``exec``,
``eval``, ``__import__``, ``importlib``, ``globals()``) is reported for a person to look at,
and never changes points.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hw8.course.cells import parse

MAX_MODULE_BYTES = 1 << 20
DYNAMIC_CALLS = frozenset(
    {"getattr", "setattr", "eval", "exec", "compile", "__import__", "globals", "vars", "locals"}
)
DYNAMIC_NAMES = frozenset({"importlib", "__builtins__", "builtins", "sys"})
DYNAMIC_ATTRIBUTES = frozenset({"__dict__", "__globals__", "__code__", "__getattribute__"})


class SourceIndex:
    """The top-level definitions and imports of a submission's code cells and modules."""

    def __init__(self, sources: list[str], folder: Path | None = None):
        self.definitions: dict[str, list[ast.AST]] = {}
        self.imports: dict[str, str] = {}  # local name -> dotted name it was imported as
        for source in sources:
            tree = parse(source)
            if tree is not None:
                self._add(tree)
        for path in sorted(Path(folder).glob("*.py")) if folder else []:
            try:
                if path.stat().st_size <= MAX_MODULE_BYTES:
                    self._add(ast.parse(path.read_text(errors="replace")))
            except (OSError, SyntaxError, ValueError):
                continue

    def _add(self, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.definitions.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.definitions.setdefault(name.id, []).append(node.value)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def knows(self, name: str) -> bool:
        """Whether the submission defines ``name`` at the top level of a cell or module."""
        return name in self.definitions

    def reach(self, name: str) -> list[ast.AST]:
        """The definitions of ``name`` and of every submission name they read, in turn."""
        seen, todo, nodes = set(), [name], []
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            for node in self.definitions.get(current, []):
                nodes.append(node)
                todo += [
                    sub.id
                    for sub in ast.walk(node)
                    if isinstance(sub, ast.Name) and sub.id in self.definitions
                ]
        return nodes

    def names_read(self, name: str) -> set[str]:
        """Every name the code ``name`` reaches reads or binds."""
        return {
            sub.id
            for node in self.reach(name)
            for sub in ast.walk(node)
            if isinstance(sub, ast.Name)
        }

    def uses(self, name: str, dotted_names) -> list[str]:
        """The forbidden ``dotted_names`` that the code ``name`` reaches uses."""
        found = []
        nodes = self.reach(name)
        for dotted in dotted_names:
            last = dotted.rpartition(".")[2]
            for node in nodes:
                local = _local_names(node)
                if any(self._names(sub, dotted, last, local) for sub in ast.walk(node)):
                    found.append(dotted)
                    break
        return found

    def _names(self, node: ast.AST, dotted: str, last: str, local: set[str]) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr == last
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
            origin = self.imports.get(node.id)
            if origin is not None:
                return origin == dotted or origin.endswith(f".{last}")
            return node.id == last and node.id not in self.definitions
        if isinstance(node, ast.ImportFrom | ast.Import):
            return any(alias.name.rpartition(".")[2] == last for alias in node.names)
        return False

    def unreadable(self, name: str) -> list[str]:
        """What in the code ``name`` reaches hides what it calls from a reader."""
        found = []
        for node in self.reach(name):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                    if sub.func.id in DYNAMIC_CALLS:
                        found.append(f"{sub.func.id}()")
                elif isinstance(sub, ast.Name) and sub.id in DYNAMIC_NAMES:
                    found.append(sub.id)
                elif isinstance(sub, ast.Attribute) and sub.attr in DYNAMIC_ATTRIBUTES:
                    found.append(f".{sub.attr}")
        if not self.reach(name):
            found.append("no definition in the notebook or a module beside it")
        return sorted(set(found))

    def moves(self, name: str) -> list[str]:
        """Where the code ``name`` reaches moves a tensor between devices: a call of the
        tensor method ``cpu`` or ``cuda``, or of ``to`` given a device (``x.device``,
        ``device=``, a device name). A tensor drawn on the CPU and moved passes a CPU-only
        grader's checks."""
        found = []
        for node in self.reach(name):
            for sub in ast.walk(node):
                if not isinstance(sub, ast.Call) or not isinstance(sub.func, ast.Attribute):
                    continue
                if sub.func.attr in ("cpu", "cuda"):
                    found.append(f".{sub.func.attr}()")
                elif sub.func.attr == "to" and _names_a_device(sub):
                    found.append(".to(device)")
        return sorted(set(found))

    def mentions(self, name: str, check) -> list[str]:
        """``check(tree)`` (a list of findings) over each definition ``name`` reaches."""
        found = []
        for node in self.reach(name):
            found += check(node)
        return list(dict.fromkeys(found))


def _local_names(node: ast.AST) -> set[str]:
    """Names bound inside a definition (its parameters, assignments, loops, nested
    definitions): a read of one of them is not a read of a global."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            names.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            names.add(sub.id)
        elif sub is not node and isinstance(sub, ast.FunctionDef | ast.ClassDef):
            names.add(sub.name)
    return names


def _names_a_device(call: ast.Call) -> bool:
    """Whether a ``.to(...)`` call is given a device."""
    if any(keyword.arg == "device" for keyword in call.keywords):
        return True
    for argument in call.args:
        if isinstance(argument, ast.Attribute) and argument.attr == "device":
            return True
        if isinstance(argument, ast.Constant) and argument.value in ("cpu", "cuda", "mps", "meta"):
            return True
        if isinstance(argument, ast.Name) and "device" in argument.id.lower():
            return True
    return False
