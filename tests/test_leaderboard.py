"""The offline leaderboard: scores files of known AUC get the right points."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hw8 import leaderboard
from hw8.anomaly import roc_auc, write_submission
from hw8.leaderboard import (
    BUNDLED_THRESHOLDS,
    LEVELS,
    LeaderboardError,
    assert_level,
    grade_file,
    points_for_auc,
)

ROOT = Path(__file__).resolve().parents[1]
RECORD = leaderboard.THRESHOLDS_FILE


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return leaderboard.bundled_labels()


def write(tmp_path: Path, scores, name: str = "scores.csv") -> Path:
    return write_submission(np.asarray(scores, dtype=np.float64), tmp_path / name)


def test_bundled_labels_are_the_task_the_notebook_grades(labels):
    assert labels.ndim == 1 and set(np.unique(labels)) == {0, 1}
    assert 0.4 < labels.mean() < 0.6  # about half anomalies, as in HW8


def test_true_labels_as_scores_earn_every_point(tmp_path, labels):
    result = grade_file(write(tmp_path, labels), labels)
    assert result.auc == 1.0
    assert result.points == result.max_points == len(LEVELS)
    assert all(result.passed.values())


def test_reversed_scores_earn_nothing(tmp_path, labels, monkeypatch):
    monkeypatch.delenv("HW8_QUICK", raising=False)
    result = grade_file(write(tmp_path, 1 - labels), labels)
    assert result.auc == 0.0
    assert result.points == 0
    with pytest.raises(AssertionError, match="needs"):
        assert_level("simple", write(tmp_path, -labels.astype(float), "neg.csv"), labels)


def test_random_scores_earn_at_most_what_chance_earns(tmp_path, labels):
    scores = np.random.default_rng(0).random(len(labels))
    result = grade_file(write(tmp_path, scores), labels)
    assert abs(result.auc - 0.5) < 0.08
    expected = {level: result.auc >= BUNDLED_THRESHOLDS[level] for level in LEVELS}
    assert result.passed == expected
    # the calibrated thresholds sit above chance: random guessing passes no level
    assert BUNDLED_THRESHOLDS["simple"] > 0.5
    assert result.points == 0


def test_points_follow_the_thresholds_exactly():
    t = BUNDLED_THRESHOLDS
    assert points_for_auc(t["medium"]) == {"simple": 1, "medium": 1, "strong": 0, "boss": 0}
    just_below = np.nextafter(t["strong"], 0)
    assert sum(points_for_auc(just_below).values()) == 2
    assert sum(points_for_auc(t["boss"]).values()) == 4
    assert sum(points_for_auc(0.0).values()) == 0
    with pytest.raises(ValueError, match="increase"):
        points_for_auc(0.9, {"simple": 0.9, "medium": 0.8, "strong": 0.95, "boss": 0.99})


def test_a_score_file_of_known_auc_gets_the_levels_below_it(tmp_path, labels):
    # scores = labels plus noise; the AUC is whatever sklearn says, and the points follow it
    rng = np.random.default_rng(1)
    for noise in (0.3, 0.6, 1.0, 2.0):
        scores = labels + noise * rng.standard_normal(len(labels))
        result = grade_file(write(tmp_path, scores), labels)
        assert result.auc == pytest.approx(roc_auc(labels, scores))
        assert result.points == sum(result.auc >= BUNDLED_THRESHOLDS[level] for level in LEVELS)


def test_quick_mode_reports_but_does_not_hold_scores_to_the_thresholds(
    tmp_path, labels, monkeypatch, capsys
):
    weak = write(tmp_path, 1 - labels)
    monkeypatch.setenv("HW8_QUICK", "1")
    assert assert_level("boss", weak, labels).points == 0  # no AssertionError
    assert "not held against it" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not found"):  # the file itself still counts
        assert_level("boss", tmp_path / "missing.csv", labels)
    monkeypatch.setenv("HW8_QUICK", "0")
    with pytest.raises(AssertionError, match="boss baseline needs"):
        assert_level("boss", weak, labels)


def test_quick_switch_earns_nothing_while_autograding(tmp_path, labels, monkeypatch):
    weak = write(tmp_path, np.random.default_rng(1).random(len(labels)))
    monkeypatch.setenv("HW8_QUICK", "1")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="boss baseline needs"):
        assert_level("boss", weak, labels)


def test_wrong_length_says_what_was_expected(tmp_path, labels):
    path = write(tmp_path, np.zeros(len(labels) + 7))
    with pytest.raises(
        LeaderboardError, match=rf"expected {len(labels)} scores.*found {len(labels) + 7}"
    ):
        grade_file(path, labels)
    with pytest.raises(AssertionError, match="bundled test split"):
        assert_level("boss", path, labels)


def test_missing_and_malformed_files_have_clear_errors(tmp_path, labels):
    with pytest.raises(LeaderboardError, match="not found.*challenge cell"):
        grade_file(tmp_path / "nothing.csv", labels)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prediction\n0,1.0\n")
    with pytest.raises(LeaderboardError, match="header ID,score"):
        grade_file(bad, labels)
    nan = tmp_path / "nan.csv"
    nan.write_text("ID,score\n" + "".join(f"{i},nan\n" for i in range(len(labels))))
    with pytest.raises(LeaderboardError, match="finite"):
        grade_file(nan, labels)


def test_report_lists_every_level(tmp_path, labels):
    text = grade_file(write(tmp_path, labels), labels).report()
    for level in LEVELS:
        assert level in text
    assert "4 / 4" in text


def test_thresholds_follow_the_recorded_calibration_runs():
    record = json.loads(RECORD.read_text())
    assert record["thresholds"] == BUNDLED_THRESHOLDS
    task = record["task"]
    assert task["dataset"] == leaderboard.BUNDLED_TASK["dataset"]
    assert tuple(task["normal_classes"]) == leaderboard.BUNDLED_TASK["normal_classes"]
    assert task["seed"] == leaderboard.BUNDLED_TASK["seed"]
    for level in LEVELS:
        runs = record["levels"][level]["aucs"]
        assert BUNDLED_THRESHOLDS[level] == np.floor(min(runs) * 1e5) / 1e5


def test_readme_table_shows_the_recorded_thresholds():
    readme = (ROOT / "README.md").read_text()
    for level in LEVELS:
        row = re.search(rf"^\| {level} \|.*\| ([0-9.]+) \|$", readme, re.MULTILINE)
        assert row, f"README.md: no table row for the {level} threshold"
        assert float(row.group(1)) == BUNDLED_THRESHOLDS[level], (
            f"README.md shows {row.group(1)} for {level}; hw8/data/thresholds.json says "
            f"{BUNDLED_THRESHOLDS[level]:.5f}: update the README's leaderboard table."
        )
