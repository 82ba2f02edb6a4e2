"""The offline leaderboard of notebook 05: ROC AUC of saved scores, points per baseline.

HW8 is judged on Kaggle: a submission earns a point for each baseline whose AUC it
reaches (simple, medium, strong, boss). Offline there is no Kaggle and the real test
labels are not public, so the leaderboard grades scores for the labelled bundled task
instead, against stand-in thresholds measured on that task with the same kinds of
models as the HW8 baselines (``benchmarks/calibrate_thresholds.py`` measures them and
records every run, and the thresholds, in the package data file ``hw8/data/thresholds.json``).

The scores file is the Kaggle CSV (``ID,score``, higher = more anomalous) written by
:func:`hw8.anomaly.write_submission`, one row per test image of the bundled task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw8.anomaly import SubmissionError, read_submission, roc_auc
from hw8.runmode import autograding, quick_mode

LEVELS = ("simple", "medium", "strong", "boss")

# The public HW8 thresholds (Kaggle, ML 2023 Spring), for reference: they belong to the
# real face data and mean nothing on the bundled task.
HW8_THRESHOLDS = {"simple": 0.53458, "medium": 0.71931, "strong": 0.78950, "boss": 0.82221}

# The bundled task the stand-in thresholds were measured on (hw8.datasets.load_task).
BUNDLED_TASK = {"dataset": "bundled", "normal_classes": (0,), "seed": 0}

# Stand-in thresholds on the bundled task: for each level, the lowest test AUC its
# reference recipe reached over three training seeds, rounded down to 5 decimals (so
# running the reference recipe passes its level). benchmarks/calibrate_thresholds.py
# measures them and writes this file; nothing else holds a copy.
THRESHOLDS_FILE = Path(__file__).resolve().parent / "data" / "thresholds.json"


def recorded_thresholds(path: Path | str = THRESHOLDS_FILE) -> dict[str, float]:
    """The thresholds recorded by the calibration, one per level."""
    record = json.loads(Path(path).read_text())
    return {level: float(record["thresholds"][level]) for level in LEVELS}


BUNDLED_THRESHOLDS = recorded_thresholds()

POINTS_PER_LEVEL = 1
DEFAULT_SCORES_FILE = "leaderboard_scores.csv"


class LeaderboardError(ValueError):
    """A scores file is missing, malformed or does not belong to the bundled test set."""


@dataclass(frozen=True)
class Standing:
    """Where a set of scores stands: its AUC, the levels passed and the points earned."""

    auc: float
    passed: dict[str, bool]
    points: int
    max_points: int
    thresholds: dict[str, float]

    def report(self) -> str:
        """A small table in the style of the Kaggle baselines."""
        lines = [f"ROC AUC on the bundled test split: {self.auc:.5f}"]
        for level in LEVELS:
            mark = "passed" if self.passed[level] else "not yet"
            lines.append(f"  {level:7s} baseline {self.thresholds[level]:.5f}  {mark}")
        lines.append(f"points: {self.points} / {self.max_points}")
        return "\n".join(lines)


def _check_thresholds(thresholds: dict[str, float]) -> dict[str, float]:
    missing = [level for level in LEVELS if level not in thresholds]
    if missing:
        raise ValueError(f"thresholds must name every level {LEVELS}; missing {missing}.")
    values = [float(thresholds[level]) for level in LEVELS]
    if any(not 0.0 <= v <= 1.0 for v in values) or values != sorted(values):
        raise ValueError(
            f"thresholds must lie in [0, 1] and increase from simple to boss: {values}"
        )
    return {level: float(thresholds[level]) for level in LEVELS}


def points_for_auc(
    auc: float,
    thresholds: dict[str, float] | None = None,
    points_per_level: int = POINTS_PER_LEVEL,
) -> dict[str, int]:
    """Points per level for an AUC: a level is passed when ``auc >= threshold``."""
    thresholds = _check_thresholds(thresholds or BUNDLED_THRESHOLDS)
    if not np.isfinite(auc):
        raise ValueError(f"AUC must be a finite number, found {auc}.")
    return {level: points_per_level if auc >= thresholds[level] else 0 for level in LEVELS}


def bundled_task():
    """The task the leaderboard grades (``BUNDLED_TASK``), as an ``AnomalyTask``."""
    from hw8.datasets import load_task  # late: keeps `import hw8.leaderboard` light

    return load_task(
        BUNDLED_TASK["dataset"],
        normal_classes=BUNDLED_TASK["normal_classes"],
        seed=BUNDLED_TASK["seed"],
    )


def bundled_labels() -> np.ndarray:
    """The labels (1 = anomaly) of the bundled task's test split, in test-set order."""
    return bundled_task().test_labels


def read_scores(path: Path | str, expected_rows: int) -> np.ndarray:
    """Read a leaderboard scores file, with errors that say what to do about them."""
    path = Path(path)
    if not path.is_file():
        raise LeaderboardError(
            f"{path}: scores file not found. Run the challenge cell of notebook 05, which "
            f"writes it with hw8.anomaly.write_submission(scores, {str(path)!r}), and hand it "
            "in next to the notebook."
        )
    try:
        scores = read_submission(path)
    except SubmissionError as error:
        raise LeaderboardError(
            f"{error} Write the file with hw8.anomaly.write_submission(scores, path)."
        ) from error
    if len(scores) != expected_rows:
        raise LeaderboardError(
            f"{path}: expected {expected_rows} scores, one per image of the bundled test split, "
            f"found {len(scores)}. The leaderboard grades the bundled task: score "
            "load_task('bundled').test_images, not the real HW8 test set or a slice."
        )
    return scores


def standing(
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> Standing:
    """The standing of an array of scores (one per bundled test image)."""
    thresholds = _check_thresholds(thresholds or BUNDLED_THRESHOLDS)
    labels = bundled_labels() if labels is None else np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != labels.shape:
        raise LeaderboardError(
            f"expected {labels.shape[0]} scores, one per image of the bundled test split, "
            f"found shape {scores.shape}."
        )
    try:
        auc = roc_auc(labels, scores)
    except SubmissionError as error:
        raise LeaderboardError(str(error)) from error
    points = points_for_auc(auc, thresholds)
    return Standing(
        auc=auc,
        passed={level: points[level] > 0 for level in LEVELS},
        points=sum(points.values()),
        max_points=POINTS_PER_LEVEL * len(LEVELS),
        thresholds=thresholds,
    )


def grade_file(
    path: Path | str = DEFAULT_SCORES_FILE,
    labels: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> Standing:
    """Read a scores file and return its standing on the bundled test split."""
    labels = bundled_labels() if labels is None else np.asarray(labels)
    return standing(read_scores(path, len(labels)), labels, thresholds)


def assert_level(
    level: str,
    path: Path | str = DEFAULT_SCORES_FILE,
    labels: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> Standing:
    """For a graded test cell: fail, in plain words, unless the file reaches ``level``.

    The file must always exist and be well formed. With ``$HW8_QUICK=1`` (the switch the
    course's tests set to cut training short) an AUC below the threshold is reported but
    not failed, since the thresholds were measured on full training; never while nbgrader
    autogrades (``$NBGRADER_EXECUTION=autograde``), so the switch earns a student nothing.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}.")
    try:
        result = grade_file(path, labels, thresholds)
    except LeaderboardError as error:
        raise AssertionError(str(error)) from error
    if not result.passed[level] and quick_mode() and not autograding():
        print(
            f"HW8_QUICK=1 (the course's test switch: training cut short): AUC "
            f"{result.auc:.5f} is below the {level} baseline {result.thresholds[level]:.5f}, "
            "which was measured on full training; not held against it in quick mode."
        )
        return result
    if not result.passed[level]:
        raise AssertionError(
            f"Your saved scores reach ROC AUC {result.auc:.5f} on the bundled test split; the "
            f"{level} baseline needs {result.thresholds[level]:.5f}. Improve the model (see the "
            "ideas in the challenge section), run the challenge cell again and save the scores."
        )
    print(f"OK  {level} baseline passed: AUC {result.auc:.5f} >= {result.thresholds[level]:.5f}")
    return result
