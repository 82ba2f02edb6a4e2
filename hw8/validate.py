"""``hw8 validate NOTEBOOK``: check a homework notebook without nbgrader.

Students on Colab, Kaggle or a laptop may have no nbgrader. This runs the notebook from
top to bottom in a fresh kernel, in its own folder, as ``nbgrader validate`` does, and
reports each test cell that fails (with the last line of its error) and each exercise
still left as ``raise NotImplementedError()``. Only the visible tests run: the hidden
ones are added when the course grades the notebook. The notebook file is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STUB = "NotImplementedError"


class ValidateError(ValueError):
    """The notebook cannot be validated; the message says why and what to do."""


@dataclass
class CellReport:
    """One graded cell that did not pass: its grade id, kind (test or exercise) and why."""

    grade_id: str
    kind: str
    error: str


def graded_meta(cell) -> dict:
    """The cell's nbgrader metadata ({} when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def error_of(cell) -> str | None:
    """The last line of the error the cell raised, or None when it ran cleanly."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
    return None


def failures(nb) -> tuple[list[CellReport], int]:
    """The failing graded cells of an executed notebook, and how many test cells it has."""
    reports, tests = [], 0
    for cell in nb.cells:
        meta = graded_meta(cell)
        if cell.get("cell_type") != "code" or not (meta.get("grade") or meta.get("solution")):
            continue
        error = error_of(cell)
        if meta.get("grade") and not meta.get("solution"):
            tests += 1
            if error:
                reports.append(CellReport(meta.get("grade_id", "?"), "test", error))
        elif error and STUB in error:
            reports.append(CellReport(meta.get("grade_id", "?"), "exercise", "not done yet"))
    return reports, tests


def execute(path: Path, timeout: int):
    """Execute a copy of the notebook in a fresh kernel, in the notebook's folder."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as error:  # pragma: no cover - both come with Jupyter
        raise ValidateError("it needs Jupyter's nbclient: pip install nbclient") from error
    try:
        nb = nbformat.read(path, as_version=4)
    except (ValueError, nbformat.ValidationError) as error:  # NotJSONError is a ValueError
        raise ValidateError(f"{path}: not a notebook file ({error}).") from error
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def validate(path: Path, timeout: int = 300) -> bool:
    """Run one notebook and print its report; True when every test cell passes."""
    if not path.is_file():
        raise ValidateError(f"{path}: no such notebook. Give the path of an .ipynb file.")
    nb = execute(path, timeout)
    reports, tests = failures(nb)
    if not tests:
        print(f"{path.name}: no test cells found (is this a homework notebook?)")
        return True
    failed_tests = sum(report.kind == "test" for report in reports)
    print(f"{path.name}: {tests - failed_tests} of {tests} test cells pass")
    for report in reports:
        print(f"  FAILED  {report.grade_id} ({report.kind}): {report.error}")
    return failed_tests == 0
