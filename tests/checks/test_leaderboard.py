"""The offline leaderboard: scores files of known AUC get the right points."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hw8 import datasets, stats
from hw8.anomaly import roc_auc, write_submission
from hw8.checks import leaderboard
from hw8.checks.leaderboard import (
    BUNDLED_THRESHOLDS,
    LEVELS,
    LeaderboardError,
    assert_level,
    grade_file,
    points_for_auc,
)

ROOT = Path(__file__).resolve().parents[2]
RECORD = leaderboard.THRESHOLDS_FILE


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return leaderboard.bundled_labels()


def write(tmp_path: Path, scores, name: str = "scores.csv") -> Path:
    return write_submission(np.asarray(scores, dtype=np.float64), tmp_path / name)


def test_bundled_labels_are_the_task_the_notebook_grades(labels):
    assert labels.ndim == 1 and set(np.unique(labels)) == {0, 1}
    # every bundled test image (the normal class's 200, the other classes' 1,800) and 400
    # of the normal class's training images
    assert (labels == 0).sum() == 600 and labels.sum() == 1800


def test_the_validation_split_is_made_of_training_images():
    task, validation = datasets.bundled_task(), datasets.bundled_task(validation=True)
    seen = {image.tobytes() for image in task.test_images}
    assert not any(image.tobytes() in seen for image in validation.test_images)
    assert not any(image.tobytes() in seen for image in validation.train_images)
    assert len(task.train_images) == 600 and len(validation.train_images) == 480


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
    assert task["dataset"] == datasets.BUNDLED_TASK["dataset"]
    assert tuple(task["normal_classes"]) == datasets.BUNDLED_TASK["normal_classes"]
    assert task["seed"] == datasets.BUNDLED_TASK["seed"]
    assert task["anomaly_fraction"] == datasets.BUNDLED_TASK["anomaly_fraction"]
    assert task["extra_test_normals"] == datasets.BUNDLED_TASK["extra_test_normals"]
    labels = leaderboard.bundled_labels()
    assert record["test_images"] == len(labels) and record["test_anomalies"] == labels.sum()
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


def test_thresholds_are_apart_by_three_standard_errors_and_strong_beats_the_samples():
    record = json.loads(RECORD.read_text())
    se = record["standard_errors"]
    for level in LEVELS:  # the larger bootstrap standard error of the level's reference runs
        assert se[level] == max(record["levels"][level]["bootstrap_standard_errors"])
    for lower, upper in zip(LEVELS, LEVELS[1:], strict=False):
        gap = BUNDLED_THRESHOLDS[upper] - BUNDLED_THRESHOLDS[lower]
        assert gap >= 3 * max(se[lower], se[upper]), (lower, upper, gap, se)
        assert record["gaps_in_standard_errors"][f"{lower}-{upper}"] >= 3
    samples = [auc for entry in record["untuned sample models"].values() for auc in entry["aucs"]]
    assert set(record["untuned sample models"]) == {"fcn", "cnn", "vae"}
    assert BUNDLED_THRESHOLDS["strong"] >= max(samples) + se["strong"]
    # Hanley and McNeil's formula is recorded beside it, for comparison
    labels = leaderboard.bundled_labels()
    for level in LEVELS:
        expected = stats.auc_standard_error(
            BUNDLED_THRESHOLDS[level], int(labels.sum()), int((labels == 0).sum())
        )
        assert record["hanley_mcneil_standard_errors"][level] == pytest.approx(expected, abs=1e-5)


def test_standard_error_of_the_auc_follows_hanley_and_mcneil():
    # Hanley & McNeil (1982), table 1 style: A = 0.9 with 200 and 200 cases
    assert stats.auc_standard_error(0.9, 200, 200) == pytest.approx(0.0160, abs=2e-4)
    assert stats.auc_standard_error(0.9, 1800, 200) < 0.0085  # more anomalies help
    # a bootstrap of scores with AUC about 0.9 agrees with the formula
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(200), np.ones(1800)].astype(int)
    scores = rng.normal(size=2000) + 1.8 * labels
    auc = roc_auc(labels, scores)
    boot = stats.bootstrap_standard_error(labels, scores, draws=400, seed=1)
    assert 0.005 < boot < 0.02 and boot > stats.auc_standard_error(auc, 1800, 200)
    # the same scores, the standard error's own formula (DeLong's), by hand
    s1, s0 = scores[labels == 1], scores[labels == 0]
    wins = (s1[:, None] > s0[None, :]).astype(float)
    delong = np.sqrt(wins.mean(1).var(ddof=1) / len(s1) + wins.mean(0).var(ddof=1) / len(s0))
    assert boot == pytest.approx(delong, rel=0.15)


# ----------------------------------------------------------------------------- own method


def uses_the_recipe(task):
    from hw8 import house_recipe

    return house_recipe.recipe_scores(task)


def helper_with_the_recipe(task):
    import hw8.house_recipe

    return hw8.house_recipe.run_recipe(task)["recipe"]


def calls_a_helper(task):
    return helper_with_the_recipe(task) + 1


def own_method(task):
    """Scores from my own model (a docstring may say 'boss baseline')."""
    return np.zeros(len(task.test_images)) + own_helper(task)


def own_helper(task):
    return 0.0


def test_package_recipe_references_find_the_recipe_wherever_it_hides():
    assert leaderboard.package_recipe_references(own_method) == []
    assert "the name `house_recipe`" in leaderboard.package_recipe_references(uses_the_recipe)[0]
    found = leaderboard.package_recipe_references(calls_a_helper)
    assert found and "helper_with_the_recipe (used by calls_a_helper)" in found[0]
    from hw8.house_recipe import recipe_scores as scores_of  # an alias without the word in the call

    # functions whose source inspect cannot read (exec'd code): their compiled code counts
    namespace = {"scores_of": scores_of, "np": np}
    alias = eval("lambda task: scores_of(task)", namespace)  # noqa: S307
    assert (
        "`scores_of`, which comes from hw8.house_recipe"
        in leaderboard.package_recipe_references(alias)[0]
    )
    exec("def hidden(task):\n    import hw8.house_recipe\n    return 1", namespace)  # noqa: S102
    assert (
        "the name `house_recipe`" in leaderboard.package_recipe_references(namespace["hidden"])[0]
    )
    exec("def clean(task):\n    return np.zeros(3)", namespace)  # noqa: S102
    assert leaderboard.package_recipe_references(namespace["clean"]) == []


def test_assert_level_gives_nothing_to_the_package_recipe(tmp_path, labels):
    perfect = write(tmp_path, labels)
    assert assert_level("boss", perfect, labels, method=own_method).points == 4
    with pytest.raises(
        AssertionError, match="No leaderboard points.*hw8.house_recipe is the package"
    ):
        assert_level("simple", perfect, labels, method=calls_a_helper)
    with pytest.raises(AssertionError, match="should be a function"):
        leaderboard.assert_own_method(None)


def test_without_package_recipe_blocks_the_house_recipe_and_restores_it():
    import sys

    import hw8
    import hw8.house_recipe
    from hw8.house_recipe import recipe_scores

    module = sys.modules["hw8.house_recipe"]
    namespace = {"recipe_scores": recipe_scores, "recipe": hw8.house_recipe, "np": np}
    with leaderboard.without_package_recipe(namespace):
        for statement in (
            "import hw8.house_recipe",
            "from hw8 import house_recipe",
            "from hw8.house_recipe import fit",
        ):
            with pytest.raises(ImportError, match="blocked in the challenge"):
                exec(statement, {})  # noqa: S102
        with pytest.raises(AssertionError, match="recipe_scores is blocked"):
            namespace["recipe_scores"](None)
        with pytest.raises(AssertionError, match="run_recipe is blocked"):
            namespace["recipe"].run_recipe(None)
        with pytest.raises(AssertionError, match="is blocked"):
            module.run_recipe(None)  # held elsewhere: its functions are stubs
        assert namespace["np"] is np
    assert sys.modules["hw8.house_recipe"] is module and hw8.house_recipe is module
    assert namespace["recipe_scores"] is recipe_scores is module.recipe_scores
    assert namespace["recipe"] is module
    assert module.recipe_scores.__module__ == "hw8.house_recipe"
