"""The package's house rules, read from its source.

- Imports point one way. ``hw8/`` (the library: data, models, training, scoring, plots)
  imports neither the check kit that test cells use (``hw8/checks/``) nor the instructor
  tools (``hw8/course/``); the check kit does not import the instructor tools; nothing
  but the command line imports the command line; and the notebooks never import
  ``hw8.course`` (a student's runtime has no ``course`` extra).
- No measured number in a docstring or a comment: measurements live in
  benchmarks/RESULTS.md, where they are re-recorded.
"""

import ast
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hw8"

# ----------------------------------------------------------------------------- imports


def layer(module: str) -> str:
    """``library``, ``checks``, ``course`` or ``cli`` for a module name under hw8."""
    parts = module.split(".")
    if parts[:2] == ["hw8", "cli"]:
        return "cli"
    if len(parts) > 1 and parts[1] in ("checks", "course"):
        return parts[1]
    return "library"


# What each layer may import, besides itself and the library.
ALLOWED = {"library": set(), "checks": set(), "course": {"checks"}, "cli": {"checks", "course"}}


def imported_modules(source: str, package: str = "hw8") -> set[str]:
    """The hw8 modules ``source`` imports, at the top or inside a function; ``from hw8
    import x`` counts as importing ``hw8.x``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == package or name.startswith(package + ".")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def wrong_way_imports(modules: dict[str, str]) -> list[str]:
    """``importer -> imported`` for every import that points the wrong way."""
    found = []
    for importer, source in modules.items():
        mine = layer(importer)
        for imported in sorted(imported_modules(source)):
            theirs = layer(imported)
            if theirs not in ("library", mine) and theirs not in ALLOWED[mine]:
                found.append(f"{importer} ({mine}) -> {imported} ({theirs})")
    return found


def test_imports_point_one_way():
    modules = {module_name(path): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}
    assert {layer(name) for name in modules} == {"library", "checks", "course", "cli"}
    assert not wrong_way_imports(modules)


def test_notebooks_never_import_the_instructor_tools():
    found = []
    for path in sorted((ROOT / "notebooks" / "hw8").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found += [
                    f"{path.name}:{cell.id} -> {name}"
                    for name in imported_modules(cell.source)
                    if layer(name) in ("course", "cli")
                ]
    assert not found, found


@pytest.mark.parametrize(
    "importer, source",
    [
        ("hw8.train", "from hw8.checks import assertions"),
        ("hw8.datasets", "def f():\n    from hw8 import course"),
        ("hw8.checks.leaderboard", "import hw8.course.autograde"),
        ("hw8.models", "from hw8.cli import main"),
    ],
)
def test_the_direction_check_finds_a_wrong_way_import(importer, source):
    assert wrong_way_imports({importer: source})


# ----------------------------------------------------------------------------- numbers

# A time, a size, a share, a speed-up, a parameter count, or an AUC written as a number.
MEASUREMENT = re.compile(
    r"(?<![\w.])\d+(\.\d+)?\s?(s|ms|seconds?|minutes?|hours?|GB|MB|GiB|MiB|%"
    r"|x (faster|slower|speed-?up)|M parameters)(?!\w)"
    r"|\bAUCs?\b[^.\n]{0,30}\b0\.\d{2,}"
)


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring in ``source``."""
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if docstring := ast.get_docstring(node, clean=False):
                found.append((getattr(node, "lineno", 1), docstring))
    return found


def measurements(source: str) -> list[str]:
    """The measured numbers in ``source``'s comments and docstrings, with their line."""
    return [
        f"line {line}: {match.group(0)!r}"
        for line, text in prose(source)
        for match in MEASUREMENT.finditer(text)
    ]


def test_no_measured_number_in_a_docstring_or_comment():
    found = {
        path.relative_to(PACKAGE).as_posix(): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if (hits := measurements(path.read_text()))
    }
    assert not found, f"move these measurements to benchmarks/RESULTS.md: {found}"


@pytest.mark.parametrize(
    "source",
    [
        "# importing torch takes about 3 s\n",
        'def f():\n    """The wide FCN has 122M parameters."""\n',
        '"""Mean ROC AUC about 0.94 on Fashion-MNIST."""\n',
        "x = 1  # 4.1x faster than the sample\n",
        '"""Grading takes 30.8 seconds a submission."""\n',
    ],
)
def test_the_scan_finds_a_measurement(source):
    assert measurements(source)
