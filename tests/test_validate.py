"""``hw8 validate``: a student's check of a notebook without nbgrader."""

import shutil
from pathlib import Path

import nbformat
import pytest

from hw8.cli import main

NB04 = Path(__file__).resolve().parents[1] / "notebooks/hw8/04_elbo.ipynb"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("HW8_QUICK", "1")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def blank(nb, keep: set[str] = frozenset()):
    """The release's exercises: every solution cell not in ``keep`` left as the stub."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and meta["grade_id"] not in keep:
            cell.source = STUB
    return nb


def solution_ids(nb) -> list[str]:
    return [
        c.metadata["nbgrader"]["grade_id"]
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    ]


def test_a_solved_notebook_passes(tmp_path, capsys, quick):
    path = tmp_path / NB04.name
    shutil.copy(NB04, path)
    before = path.read_bytes()
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    tests = sum(
        1
        for c in nbformat.read(NB04, 4).cells
        if c.metadata.get("nbgrader", {}).get("grade")
        and not c.metadata["nbgrader"].get("solution")
        and c.cell_type == "code"
    )
    assert f"{tests} of {tests} test cells pass" in out
    assert "FAILED" not in out
    assert path.read_bytes() == before  # the student's file is never changed


def test_an_unfinished_notebook_names_what_fails(tmp_path, capsys, quick):
    nb = nbformat.read(NB04, 4)
    solutions = solution_ids(nb)
    done, *left = solutions
    path = tmp_path / NB04.name
    nbformat.write(blank(nb, keep={done}), path)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    for grade_id in left:
        assert f"FAILED  {grade_id} (exercise): not done yet" in out
    assert f"FAILED  {done} " not in out
    assert "(test): " in out


def test_bad_paths_get_a_clear_error(tmp_path, capsys):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    assert main(["validate", str(broken)]) == 2
    assert "not a notebook file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
