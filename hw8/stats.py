"""Standard errors for comparing detectors: one rule for every notebook.

- Two scores of the **same** test images are compared with a *paired* bootstrap
  (:func:`paired_auc_difference`): each draw resamples the images once and scores both
  detectors on that draw, so the noise the two AUCs share cancels out of the difference.
- Where training is involved, the spread over training seeds (:func:`seed_spread`) is
  reported beside it: it is often larger than the test-set error.
- One AUC on its own: :func:`auc_standard_error` (Hanley and McNeil's formula) and
  :func:`bootstrap_standard_error` (a stratified bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

# Scores ranked at once in the bootstrap (rows x images), to bound its memory
_BLOCK_ELEMENTS = 2**21


class Estimate(NamedTuple):
    """A number and its standard error."""

    value: float
    standard_error: float

    def __str__(self) -> str:
        return f"{self.value:+.4f} +- {self.standard_error:.4f}"


def _check_pair(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
    if labels.ndim != 1 or first.shape != labels.shape or second.shape != labels.shape:
        raise ValueError(
            "expected one score per label from each detector, found labels "
            f"{labels.shape} and scores {first.shape} and {second.shape}."
        )
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        raise ValueError("the scores hold NaN or infinite values; score every image first.")
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError("labels must hold both 0 (normal) and 1 (anomaly), and nothing else.")


def paired_auc_difference(
    labels: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    draws: int = 1000,
    seed: int = 0,
) -> Estimate:
    """``AUC(first) - AUC(second)`` on the same images, with a paired bootstrap error.

    Normal and anomalous images are resampled separately (each draw keeps the split's
    counts); both AUCs are computed on the same draw, and the standard error is the
    standard deviation of the ``draws`` differences.
    """
    labels = np.asarray(labels)
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    _check_pair(labels, first, second)
    if draws < 2:
        raise ValueError(f"draws must be at least 2, found {draws}.")
    rng = np.random.default_rng(seed)
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    picks = np.array(
        [
            np.r_[rng.choice(normal, len(normal)), rng.choice(anomalous, len(anomalous))]
            for _ in range(draws)
        ]
    )
    differences = _resampled_aucs(first, picks, len(anomalous)) - _resampled_aucs(
        second, picks, len(anomalous)
    )
    value = roc_auc_score(labels, first) - roc_auc_score(labels, second)
    return Estimate(float(value), float(np.std(differences, ddof=1)))


def _resampled_aucs(scores: np.ndarray, picks: np.ndarray, anomalies: int) -> np.ndarray:
    """The AUC on each row of ``picks`` (image indices, the last ``anomalies`` of each row
    anomalous), from the Mann-Whitney rank sum: one vectorised ranking per block of rows."""
    normals = picks.shape[1] - anomalies
    rows_per_block = max(1, _BLOCK_ELEMENTS // picks.shape[1])
    aucs = []
    for start in range(0, len(picks), rows_per_block):
        ranks = rankdata(scores[picks[start : start + rows_per_block]], axis=1)
        rank_sums = ranks[:, normals:].sum(axis=1)
        aucs.append((rank_sums - anomalies * (anomalies + 1) / 2) / (anomalies * normals))
    return np.concatenate(aucs)


def auc_standard_error(auc: float, anomalies: int, normals: int) -> float:
    """The standard error of an AUC measured on ``anomalies`` + ``normals`` test images.

    Hanley & McNeil (1982), equation 2, with their exponential approximations
    ``Q1 = A / (2 - A)`` and ``Q2 = 2 A^2 / (1 + A)``.
    """
    a = float(auc)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (anomalies - 1) * (q1 - a * a) + (normals - 1) * (q2 - a * a)) / (
        anomalies * normals
    )
    return float(np.sqrt(max(variance, 0.0)))


def bootstrap_standard_error(
    labels: np.ndarray, scores: np.ndarray, draws: int = 1000, seed: int = 0
) -> float:
    """The standard error of ``roc_auc(labels, scores)`` by a stratified bootstrap.

    Normal and anomalous images are resampled separately (so every draw keeps the split's
    counts) ``draws`` times; the result is the standard deviation of the AUCs.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    aucs = []
    for _ in range(draws):
        pick = np.r_[rng.choice(normal, len(normal)), rng.choice(anomalous, len(anomalous))]
        aucs.append(roc_auc_score(labels[pick], scores[pick]))
    return float(np.std(aucs, ddof=1))


def seed_spread(values: Sequence[float]) -> Estimate:
    """The mean of a result over training seeds, and its spread (standard deviation)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"need one value per seed and at least 2 seeds, found {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError("a seed's result is NaN or infinite.")
    return Estimate(float(values.mean()), float(values.std(ddof=1)))
