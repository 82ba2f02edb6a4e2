"""What each cell of a submission is, decided in one place, and what names it uses.

A cell's role comes from the *instructor's* notebook, never from the metadata a student
could edit: a cell whose grade id the instructor's notebook holds is a test (graded, not a
solution), locked instructor code (``demo`` when tagged ``skip-recheck``: a demonstration
no test needs) or a solution; any other cell is the student's own. Locked cells and tests
run the instructor's source, whatever the submission holds in their place.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

DEMO_TAG = "skip-recheck"
# What a test cell holds wherever the student's code runs (the kernel, the sandbox).
STUB = "# This test runs in the grader, outside this notebook's kernel; its verdict follows."
TEST, LOCKED, DEMO, SOLUTION, STUDENT = "test", "locked", "demo", "solution", "student"


@dataclass(frozen=True)
class Cell:
    """One code cell as the grader runs it: its role, grade id (or ""), source and label."""

    role: str
    grade_id: str
    source: str
    label: str


def role_of(cell) -> str:
    """The role of an instructor's code cell (from its nbgrader metadata and tags)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return TEST
    if meta.get("solution"):
        return SOLUTION
    if meta.get("locked"):
        return DEMO if DEMO_TAG in cell.get("metadata", {}).get("tags", []) else LOCKED
    return STUDENT


def source_of(cell) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def grade_id_of(cell) -> str:
    """The cell's nbgrader grade id, or ""."""
    value = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
    return value if isinstance(value, str) else ""


def merge(submitted: dict, instructor: dict) -> list[Cell]:
    """The code cells to grade: the submission's, in its order, with the instructor's
    source and role for every cell whose grade id the instructor's notebook holds."""
    known = {grade_id_of(c): c for c in instructor.get("cells", []) if grade_id_of(c)}
    cells = []
    for index, cell in enumerate(submitted.get("cells", [])):
        grade_id = grade_id_of(cell)
        original = known.get(grade_id)
        if original is None or original.get("cell_type") != "code":
            if cell.get("cell_type") == "code":
                cells.append(Cell(STUDENT, "", source_of(cell), f"cell {index + 1}"))
            continue
        role = role_of(original)
        source = source_of(cell) if role == SOLUTION else source_of(original)
        cells.append(Cell(role, grade_id, source, grade_id))
    return cells


def tests_of(instructor: dict) -> list[str]:
    """The grade ids of the instructor's test cells, in order."""
    return [
        grade_id_of(c)
        for c in instructor.get("cells", [])
        if c.get("cell_type") == "code" and role_of(c) == TEST
    ]


def solution_names(instructor: dict) -> set[str]:
    """The names the instructor's solution cells define: what the tests ask a submission
    for (``mse_loss``, ``DenseAutoencoder``, ``SAMPLE_SETTINGS``)."""
    names: set[str] = set()
    for cell in instructor.get("cells", []):
        if cell.get("cell_type") == "code" and role_of(cell) == SOLUTION:
            names |= defined_names(source_of(cell))
    return names


def parse(source: str) -> ast.Module | None:
    """The syntax tree of a cell (IPython's magics and shell escapes blanked), or None."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (assignments, definitions, imports, loops)."""
    tree = parse(source)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in tree.body:
        for sub in _top_level(node):
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(sub.name)
            elif isinstance(sub, ast.Import | ast.ImportFrom):
                for alias in sub.names:
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
    return names - {"*"}


def _top_level(node: ast.AST):
    """The nodes of a statement outside any function or class body (which bind locally)."""
    yield node
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
        return
    for child in ast.iter_child_nodes(node):
        yield from _top_level(child)


def used_names(source: str) -> set[str]:
    """Every name a cell reads, inside functions too (builtins left out)."""
    tree = parse(source)
    if tree is None:
        return set()
    found = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    return found - set(dir(builtins))


def demos_needed(cells: list[Cell]) -> set[int]:
    """Indices of the demonstration cells whose names a later student or locked cell
    reads (and the demonstrations those need): the student's process runs them, so a
    correct answer that uses a variable of a demonstration still works."""
    needed_names: set[str] = set()
    needed: set[int] = set()
    for index in range(len(cells) - 1, -1, -1):
        cell = cells[index]
        if cell.role in (SOLUTION, STUDENT, LOCKED):
            needed_names |= used_names(cell.source)
        elif cell.role == DEMO and defined_names(cell.source) & needed_names:
            needed.add(index)
            needed_names |= used_names(cell.source)
    return needed
