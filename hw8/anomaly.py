"""Anomaly scores from reconstruction error, ROC AUC, rank ensembles, the Kaggle CSV.

Notebook 05 asks students for the first two themselves (exercise 1, ``anomaly_scores``;
exercise 4, ``roc_auc``), so its test cells block :func:`reconstruction_scores` and
:func:`roc_auc` (and ``sklearn.metrics``) while they run the student's functions
(:mod:`hw8.checks.forbidden`). The package computes its own AUC with scikit-learn, a route the
exercise forbids.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from hw8.datasets import iterate_batches, to_device
from hw8.device import resolve_device
from hw8.errors import SubmissionError
from hw8.files import write_atomically
from hw8.settings import SCORE_METRICS

SUBMISSION_HEADER = ("ID", "score")


def _per_image(error: torch.Tensor, metric: str) -> torch.Tensor:
    flat = error.flatten(1)
    if metric == "l2":
        return flat.pow(2).sum(1).sqrt()
    if metric == "mse":
        return flat.pow(2).mean(1)
    return flat.abs().mean(1)


@torch.no_grad()
def reconstruction_scores(
    model: torch.nn.Module,
    images: np.ndarray,
    *,
    metric: str = "l2",
    batch_size: int = 500,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """One anomaly score per image: how badly ``model`` reconstructs it (higher = worse).

    ``metric``: ``"l2"`` is the course sample's sqrt of the summed squared error,
    ``"mse"`` the mean squared error, ``"l1"`` the mean absolute error (all on the
    [-1, 1] scale). Runs batched, without gradients, on the device.
    """
    if metric not in SCORE_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(SCORE_METRICS)}.")
    device = resolve_device(device)
    was_training = model.training
    model.to(device).eval()
    scores = []
    for batch in iterate_batches(to_device(images, device), batch_size):
        scores.append(_per_image(model.reconstruct(batch) - batch, metric).float().cpu())
    model.train(was_training)
    return torch.cat(scores).numpy().astype(np.float64)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; labels 1 = anomaly, higher score = more anomalous."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise SubmissionError(
            f"expected one score per label, found {scores.shape} scores and {labels.shape} labels."
        )
    if not np.isfinite(scores).all():
        raise SubmissionError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite.")
    if len(np.unique(labels)) != 2:
        raise SubmissionError("ROC AUC needs both normal (0) and anomalous (1) labels.")
    return float(roc_auc_score(labels, scores))


def rank_average(score_sets: Sequence[np.ndarray]) -> np.ndarray:
    """Average the ranks of several detectors' scores, scaled to (0, 1].

    Ranks make scores of different scales comparable, so no detector dominates the mean.
    """
    if len(score_sets) == 0:
        raise ValueError("rank_average needs at least one array of scores.")
    lengths = {len(s) for s in score_sets}
    if len(lengths) != 1:
        raise ValueError(f"all score arrays must have the same length, found {sorted(lengths)}.")
    ranks = [rankdata(np.asarray(s, dtype=np.float64)) for s in score_sets]
    return np.mean(ranks, axis=0) / lengths.pop()


def write_submission(
    scores: np.ndarray, path: Path | str, expected_rows: int | None = None
) -> Path:
    """Write the Kaggle CSV ``ID,score`` (ID 0..N-1 in test order), atomically."""
    path = Path(path)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise SubmissionError(f"expected a 1-D array of scores, found shape {scores.shape}.")
    if expected_rows is not None and len(scores) != expected_rows:
        raise SubmissionError(
            f"expected {expected_rows} scores (one per test image), found {len(scores)}."
        )
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))[:5].tolist()
        raise SubmissionError(f"scores must be finite; NaN or infinite at IDs {bad}.")
    if not path.parent.is_dir():
        raise SubmissionError(f"{path.parent}: output folder does not exist; create it first.")

    def write_rows(stream) -> None:
        writer = csv.writer(stream)
        writer.writerow(SUBMISSION_HEADER)
        writer.writerows((i, repr(float(s))) for i, s in enumerate(scores))

    return write_atomically(path, write_rows, text=True)


def read_submission(path: Path | str, expected_rows: int | None = None) -> np.ndarray:
    """Read and validate an ``ID,score`` CSV; return the scores in ID order."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: submission file not found.")
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    if not rows or tuple(rows[0]) != SUBMISSION_HEADER:
        found = rows[0] if rows else "an empty file"
        raise SubmissionError(f"{path}: expected the header ID,score, found {found}.")
    try:
        ids = np.array([int(r[0]) for r in rows[1:]])
        scores = np.array([float(r[1]) for r in rows[1:]])
    except (ValueError, IndexError) as error:
        raise SubmissionError(f"{path}: every row must be 'integer,number' ({error}).") from error
    if not np.array_equal(ids, np.arange(len(ids))):
        raise SubmissionError(f"{path}: IDs must run 0, 1, ..., {len(ids) - 1} in order.")
    if expected_rows is not None and len(ids) != expected_rows:
        raise SubmissionError(f"{path}: expected {expected_rows} rows, found {len(ids)}.")
    if not np.isfinite(scores).all():
        raise SubmissionError(f"{path}: scores must be finite numbers.")
    return scores
