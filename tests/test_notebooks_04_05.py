"""Notebooks 04 (ELBO) and 05 (the HW8 task): graded as designed.

Running them top to bottom is tests/test_notebooks.py (with every notebook); the nbgrader
round trip, with their planted mistakes, is tests/test_nbgrader.py; the real-HW8 file path
of 05 is tests/test_notebook_05_hw8_files.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from hw8.leaderboard import BUNDLED_THRESHOLDS, LEVELS

ROOT = Path(__file__).resolve().parents[1]
NB04 = ROOT / "notebooks" / "hw8" / "04_elbo.ipynb"
NB05 = ROOT / "notebooks" / "hw8" / "05_anomaly_detection.ipynb"


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


def test_05_awards_one_point_per_leaderboard_level():
    cells = graded(nbformat.read(NB05, 4))
    for level in LEVELS:
        kind, points, source = cells[f"ae05-test-leaderboard-{level}"]
        assert (kind, points) == ("code", 1)
        hidden = source.split("### BEGIN HIDDEN TESTS")[1]
        assert f'leaderboard.assert_level("{level}", LEADERBOARD_FILE)' in hidden


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
