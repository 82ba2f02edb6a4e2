"""A static scan of a submitted notebook for code that has no business in an exercise.

``suspicious_code(path)`` parses every code cell (IPython magics and shell escapes are
looked at as lines, the rest as Python) and lists what a grader should look at: imports of
modules that reach the system (``os``, ``subprocess``, ``socket``, ...), dynamic code
(``exec``, ``eval``, ``__import__``), ``open()`` and friends on paths outside the working
folder, rebinding of builtins, monkeypatching of imported modules (``torch.allclose =
...``, ``assertions.check = ...``), exits of the interpreter, and overrides of IPython's
display and traceback machinery. ``shadowing_files(folder)`` lists the Python modules
handed in beside the notebooks that bear an installed module's name. The scan only
reads: it never runs the code, and a finding never changes points (``hw8 course grade``
lists the findings in its report).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Collection
from pathlib import Path

# Modules that reach the operating system, other processes, the network, the interpreter
# itself or the gradebook: an exercise on autoencoders needs none of them.
SUSPICIOUS_MODULES = frozenset(
    {
        "builtins",
        "ctypes",
        "gc",
        "http",
        "importlib",
        "inspect",
        "multiprocessing",
        "os",
        "pty",
        "requests",
        "shutil",
        "signal",
        "socket",
        "sqlite3",
        "subprocess",
        "sys",
        "urllib",
    }
)
DYNAMIC_CODE = frozenset({"__import__", "compile", "eval", "exec", "setattr"})
# Namespaces code may read (the course's own test cells look names up in globals()), but
# writing into them rebinds what the tests use.
NAMESPACES = frozenset({"globals", "locals", "vars"})
NAMESPACE_WRITES = frozenset({"__delitem__", "__setitem__", "clear", "pop", "setdefault", "update"})
EXITS = frozenset({"_exit", "abort", "exit", "kill", "quit"})
# Calls whose string arguments are paths (a literal outside '.' is reported).
PATH_FUNCTIONS = frozenset(
    {
        "Path",
        "chdir",
        "connect",
        "copy",
        "copyfile",
        "glob",
        "iglob",
        "listdir",
        "load",
        "loadtxt",
        "open",
        "read_csv",
        "remove",
        "rename",
        "rmtree",
        "save",
        "savetxt",
        "scandir",
        "unlink",
        "walk",
    }
)
# Module names the course's notebooks bind in their locked set-up cells.
KNOWN_MODULES = frozenset(
    {"F", "assertions", "hw8", "leaderboard", "math", "nn", "np", "plt", "torch"}
)
# Names a test cell relies on; rebinding one in the notebook changes what a test checks.
PROTECTED_NAMES = frozenset(
    {
        "AssertionError",
        "BaseException",
        "Exception",
        "__builtins__",
        "display",
        "getattr",
        "isinstance",
        "open",
        "print",
    }
)
# Parts of IPython that decide what an error looks like or whether it is recorded.
IPYTHON_HOOKS = frozenset(
    {
        "_showtraceback",
        "display_pub",
        "displayhook",
        "events",
        "excepthook",
        "run_cell",
        "set_custom_exc",
        "showsyntaxerror",
        "showtraceback",
        "user_ns",
    }
)
# Magics that run other programs or touch files (``%load`` also matches ``%load_ext``).
SHELL_MAGICS = (
    "%%bash",
    "%%file",
    "%%perl",
    "%%python",
    "%%ruby",
    "%%script",
    "%%sh",
    "%%writefile",
    "%cd",
    "%env",
    "%load",
    "%run",
    "%sx",
    "%system",
)


def suspicious_code(notebook_path, course_sources: Collection[str] = ()) -> list[str]:
    """What looks suspicious in the notebook's code cells, one line per finding.

    Each line reads ``cell <id>: <what>``. A cell whose source is one of
    ``course_sources`` (the course's own locked code, :func:`course_code`) is the
    instructor's, unchanged, and is not scanned. A file that is not a notebook raises
    ``ValueError`` (or ``OSError`` when it cannot be read).
    """
    known = set(course_sources)
    cells = [
        (label, *split_magics(source))
        for label, source in code_cells(Path(notebook_path))
        if source not in known
    ]
    modules = set(KNOWN_MODULES)
    for _, _, tree in cells:
        modules |= imported_names(tree)
    findings = []
    for label, magics, tree in cells:
        found = [*magics, *scan_tree(tree, modules)]
        findings += [f"cell {label}: {what}" for what in dict.fromkeys(found)]
    return findings


def course_code(source_dir: Path) -> frozenset[str]:
    """The sources of the locked code cells of the course's notebooks in ``source_dir``
    (the instructor's set-up and install cells, which may import what a student's code
    should not)."""
    sources = set()
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "code" and meta.get("locked") and not meta.get("grade"):
                source = cell.get("source", "")
                sources.add("".join(source) if isinstance(source, list) else source)
    return frozenset(sources)


def shadowing_files(folder: Path) -> list[str]:
    """The Python modules and packages handed in beside the notebooks that bear the name of
    an installed or standard module (``numpy.py``, a ``hw8/`` package): the student's
    kernel would import them in its place. The grader never does, so they gain nothing,
    but a person should look."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    findings = []
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.name.endswith(suffixes):
            name = path.name.split(".")[0]
        elif (path / "__init__.py").is_file():
            name = path.name
        else:
            continue
        if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
            findings.append(f"{path.name} handed in: it hides the installed module {name}")
    return findings


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(label, source) of every code cell; the label is the cell's id or its number."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if not isinstance(cells, list):
            raise TypeError("'cells' is not a list")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a notebook ({error})") from error
    found = []
    for number, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        found.append((str(cell.get("id") or number), source))
    return found


def split_magics(source: str) -> tuple[list[str], ast.AST]:
    """The findings among a cell's magic and shell lines, and the rest parsed as Python.

    A cell that does not parse gives an empty tree: it cannot run either.
    """
    findings, python = [], []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("!"):
            findings.append(f"runs a shell command: {stripped[:60]}")
        elif stripped.startswith(SHELL_MAGICS):
            findings.append(f"runs a shell or file magic: {stripped[:60]}")
        python.append("" if stripped.startswith(("!", "%")) else line)
    try:
        return findings, ast.parse("\n".join(python))
    except SyntaxError:
        return findings, ast.Module(body=[], type_ignores=[])


def scan_tree(tree: ast.AST, modules: set[str]) -> list[str]:
    """The findings in a parsed cell, in the order ``ast.walk`` meets them."""
    return [what for node in ast.walk(tree) for what in check_node(node, modules)]


def imported_names(tree: ast.AST) -> set[str]:
    """The names that the imports of a cell bind."""
    return {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }


def check_node(node: ast.AST, modules: set[str]) -> list[str]:
    """The findings of one syntax node."""
    if isinstance(node, ast.Import):
        return [f"imports {a.name}" for a in node.names if top(a.name) in SUSPICIOUS_MODULES]
    if isinstance(node, ast.ImportFrom):
        return [f"imports from {node.module}"] if top(node.module) in SUSPICIOUS_MODULES else []
    if isinstance(node, ast.Call):
        return check_call(node, modules)
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        return [what for target in targets for what in check_target(target, modules)]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [f"redefines {node.name}"] if node.name in PROTECTED_NAMES else []
    if isinstance(node, ast.Raise) and dotted(node.exc) in {"SystemExit", "KeyboardInterrupt"}:
        return [f"raises {dotted(node.exc)}"]
    if isinstance(node, ast.Name) and node.id in {"__builtins__", "builtins"}:
        return [f"uses {node.id}"]
    if isinstance(node, ast.Attribute) and node.attr in IPYTHON_HOOKS:
        return [f"touches IPython's {node.attr}"]
    return []


def check_call(node: ast.Call, modules: set[str]) -> list[str]:
    """Dynamic code, exits, IPython access, setattr on a module, paths outside '.'."""
    name = dotted(node.func)
    last = name.rsplit(".", 1)[-1]
    findings = []
    if last in DYNAMIC_CODE and (name == last or top(name) == "builtins"):
        target = dotted(node.args[0]) if node.args and last == "setattr" else ""
        if last != "setattr" or top(target) in modules:
            findings.append(f"calls {name}({target})" if target else f"calls {name}()")
    if last in EXITS and (name == last or top(name) in {"os", "sys", "signal"}):
        findings.append(f"calls {name}()")
    if name == "get_ipython":
        findings.append("calls get_ipython()")
    if last in NAMESPACE_WRITES and writes_namespace(node.func):
        findings.append(f"changes {dotted(node.func.value)}() with .{last}()")
    if last in PATH_FUNCTIONS:
        findings += [f"{name}() on a path outside '.': {p!r}" for p in outside_paths(node)]
    return findings


def check_target(target: ast.AST, modules: set[str]) -> list[str]:
    """Assigning or deleting a protected name, or an attribute of an imported module."""
    if isinstance(target, ast.Tuple | ast.List):
        return [what for element in target.elts for what in check_target(element, modules)]
    if isinstance(target, ast.Name) and target.id in PROTECTED_NAMES:
        return [f"rebinds {target.id}"]
    if isinstance(target, ast.Attribute) and top(dotted(target)) in modules:
        return [f"monkeypatches {dotted(target)}"]
    if isinstance(target, ast.Subscript) and writes_namespace(target):
        return [f"writes into {dotted(target.value)}()"]
    return []


def writes_namespace(node: ast.AST) -> bool:
    """Whether ``node`` is ``globals()[...]``, ``globals().update`` and the like."""
    value = getattr(node, "value", None)
    return isinstance(value, ast.Call) and dotted(value.func) in NAMESPACES


def outside_paths(node: ast.Call) -> list[str]:
    """String literals among a call's arguments that point outside the working folder."""
    values = [*node.args, *(keyword.value for keyword in node.keywords)]
    literals = [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return [text for text in literals if leaves_folder(text)]


def leaves_folder(text: str) -> bool:
    """Whether a path string is absolute, starts at home, or climbs with '..'."""
    return text.startswith(("/", "~", "\\")) or ".." in Path(text).parts


def dotted(node) -> str:
    """``a.b.c`` for a chain of attributes on a name; '' for anything else."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def top(name: str | None) -> str:
    """The first part of a dotted name."""
    return (name or "").split(".")[0]
