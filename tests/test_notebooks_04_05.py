"""Notebooks 04 (ELBO) and 05 (the HW8 task): graded as designed.

Running them top to bottom is tests/test_notebooks.py (with every notebook); the nbgrader
round trip, with their planted mistakes, is tests/test_nbgrader.py; the real-HW8 file path
of 05 is tests/test_notebook_05_hw8_files.py.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest

from hw8.anomaly import write_submission
from hw8.checks import leaderboard
from hw8.checks.leaderboard import BUNDLED_THRESHOLDS, LEVELS, package_recipe_references

ROOT = Path(__file__).resolve().parents[1]
NB04 = ROOT / "notebooks" / "hw8" / "04_elbo.ipynb"
NB05 = ROOT / "notebooks" / "hw8" / "05_anomaly_detection.ipynb"


def calibration():
    """benchmarks/calibrate_thresholds.py as a module (it reads the instructor solution)."""
    path = ROOT / "benchmarks" / "calibrate_thresholds.py"
    spec = importlib.util.spec_from_file_location("calibrate_thresholds", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells_by_id(nb) -> dict:
    return {cell.id: cell for cell in nb.cells}


def graded(nb) -> dict[str, tuple]:
    return {
        m["grade_id"]: (cell.cell_type, m["points"], cell.source)
        for cell in nb.cells
        if (m := cell.metadata.get("nbgrader", {})).get("grade")
    }


def test_every_autograded_cell_has_visible_and_hidden_tests():
    for path in (NB04, NB05):
        for grade_id, (kind, _points, source) in graded(nbformat.read(path, 4)).items():
            if kind == "code":
                visible = source.split("### BEGIN HIDDEN TESTS")[0]
                assert "### BEGIN HIDDEN TESTS" in source, grade_id
                assert visible.strip(), f"{grade_id}: no visible test"


def test_05_awards_one_point_per_leaderboard_level_to_the_students_own_method():
    cells = graded(nbformat.read(NB05, 4))
    for level in LEVELS:
        kind, points, source = cells[f"ae05-test-leaderboard-{level}"]
        assert (kind, points) == ("code", 1)
        visible, hidden = source.split("### BEGIN HIDDEN TESTS")
        assert "leaderboard.assert_own_method(improved_scores)" in visible
        call = f'leaderboard.assert_level("{level}", LEADERBOARD_FILE, method=improved_scores)'
        assert call in hidden


def test_05_instructor_solution_is_not_the_package_recipe():
    """The model answer of the challenge reaches the boss level with its own code."""
    namespace = calibration().notebook_solution("cpu")
    assert package_recipe_references(namespace["improved_scores"]) == []
    source = cells_by_id(nbformat.read(NB05, 4))["ae05-solution-improved-scores"].source
    assert "house_recipe" not in source.split("### BEGIN SOLUTION")[1]


def test_05_challenge_cell_blocks_the_recipe_and_never_retrains_while_grading():
    source = cells_by_id(nbformat.read(NB05, 4))["ae05-code-challenge-scores"].source
    tree = ast.parse(source)
    branch = next(node for node in tree.body if isinstance(node, ast.If))
    assert ast.unparse(branch.test) == "autograding()"
    assert "improved_scores" not in ast.unparse(branch.body)  # graded as handed in
    calls = [node for node in ast.walk(ast.Module(branch.orelse, [])) if isinstance(node, ast.With)]
    assert calls and all("without_package_recipe(globals())" in ast.unparse(w) for w in calls)
    assert ast.unparse(ast.Module(branch.orelse, [])).count("improved_scores(") == len(calls)


def test_05_skip_recheck_tags_only_locked_code_cells_no_test_needs():
    nb = nbformat.read(NB05, 4)
    tagged = [cell for cell in nb.cells if "skip-recheck" in cell.metadata.get("tags", [])]
    assert {cell.id for cell in tagged} >= {"ae05-code-show-images", "ae05-code-challenge-scores"}
    for cell in tagged:
        meta = cell.metadata.get("nbgrader", {})
        assert cell.cell_type == "code" and meta.get("locked") and not meta.get("grade"), cell.id


def test_05_shows_the_calibrated_thresholds_and_one_data_switch():
    nb = nbformat.read(NB05, 4)
    text = "\n".join(cell.source for cell in nb.cells)
    for level in LEVELS:
        assert f"**{BUNDLED_THRESHOLDS[level]:.5f}**" in text, level
    for hw8 in ("0.53458", "0.71931", "0.78950", "0.82221"):
        assert hw8 in text
    switches = [cell for cell in nb.cells if cell.source.startswith("DATA_DIR = None")]
    assert len(switches) == 1 and "nbgrader" not in switches[0].metadata  # students edit it


def test_04_and_05_written_answers_are_graded_by_hand():
    for path, expected in ((NB04, 3), (NB05, 1)):
        written = [v for v in graded(nbformat.read(path, 4)).values() if v[0] == "markdown"]
        assert len(written) == expected and all(points > 0 for _, points, _ in written)


# ----------------------------------------------------------------------------- autograde


def run_05_as_autograded(tmp_path, monkeypatch, *, hand_in: bool, recheck: bool):
    """Run notebook 05 as ``nbgrader autograde`` does (no HW8_QUICK), cell by cell.

    ``recheck``: leave out the locked code cells tagged ``skip-recheck``, as the
    independent re-check does. Returns (notebook, seconds per cell id, total seconds).
    """
    from nbclient import NotebookClient

    nb = nbformat.read(NB05, 4)
    if recheck:
        nb.cells = [c for c in nb.cells if "skip-recheck" not in c.metadata.get("tags", [])]
    if hand_in:
        write_submission(
            leaderboard.bundled_labels().astype(float), tmp_path / leaderboard.DEFAULT_SCORES_FILE
        )
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.delenv("HW8_QUICK", raising=False)
    monkeypatch.setenv("HW8_DEVICE", "cpu")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    seconds = {}
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            begin = time.perf_counter()
            client.execute_cell(cell, index)
            seconds[cell.id] = time.perf_counter() - begin
    return nb, seconds, time.perf_counter() - start


def errors_by_cell(nb) -> dict[str, str]:
    return {
        cell.id: f"{out.ename}: {out.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    }


@pytest.mark.slow
def test_05_autograde_is_cheap_and_the_recheck_cells_pass(tmp_path, monkeypatch, request):
    nb, seconds, total = run_05_as_autograded(tmp_path, monkeypatch, hand_in=True, recheck=True)
    assert errors_by_cell(nb) == {}
    slowest = max(seconds, key=seconds.get)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"\n05 autograded (recheck cells): {total:.1f} s; slowest cell {slowest} "
            f"{seconds[slowest]:.1f} s"
        )
    # well under the 300 s cell timeout: no cell takes a tenth of it, even on a busy machine
    assert seconds[slowest] < 30, seconds


@pytest.mark.slow
def test_05_autograde_without_scores_file_gives_no_leaderboard_points(tmp_path, monkeypatch):
    nb, _seconds, _total = run_05_as_autograded(tmp_path, monkeypatch, hand_in=False, recheck=False)
    errors = errors_by_cell(nb)
    assert set(errors) == {f"ae05-test-leaderboard-{level}" for level in LEVELS}, errors
    assert all("scores file not found" in error for error in errors.values())
    text = "".join(
        out.get("text", "") for c in nb.cells if c.cell_type == "code" for out in c.outputs
    )
    assert "does not retrain the challenge" in text
    assert not (tmp_path / leaderboard.DEFAULT_SCORES_FILE).exists()
