"""hw8.stats: the paired bootstrap and the seed spread."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hw8 import stats
from hw8.stats import bootstrap_standard_error, paired_auc_difference, seed_spread


def scores_of(labels, shift, noise, rng):
    return labels * shift + rng.normal(0, 1, len(labels)) * noise


def test_paired_error_is_smaller_than_unpaired_for_correlated_scores():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(150), np.ones(150)].astype(int)
    shared = scores_of(labels, 1.0, 1.0, rng)
    first = shared + rng.normal(0, 0.1, len(labels))
    second = shared + rng.normal(0, 0.1, len(labels))
    paired = paired_auc_difference(labels, first, second, draws=300)
    unpaired = bootstrap_standard_error(labels, first, draws=300)
    assert paired.standard_error < unpaired / 3


def test_difference_is_the_difference_of_the_aucs_and_antisymmetric():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(60), np.ones(40)].astype(int)
    first, second = scores_of(labels, 2.0, 1.0, rng), scores_of(labels, 0.5, 1.0, rng)
    forward = paired_auc_difference(labels, first, second, draws=200, seed=3)
    backward = paired_auc_difference(labels, second, first, draws=200, seed=3)
    assert forward.value > 0.2
    assert forward.value == pytest.approx(-backward.value)
    assert forward.standard_error == pytest.approx(backward.standard_error)


@pytest.mark.parametrize("block_elements", [2**21, 7])
def test_bootstrap_matches_scikit_learn_on_every_draw(monkeypatch, block_elements):
    """The vectorised rank sums give, draw by draw, scikit-learn's AUCs on the same picks
    (ties included), also when the draws are ranked in blocks of a few rows."""
    monkeypatch.setattr(stats, "_BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(4)
    labels = rng.permutation(np.r_[np.zeros(30), np.ones(20)].astype(int))
    first = np.round(scores_of(labels, 1.0, 1.0, rng), 1)  # rounded: many ties
    second = scores_of(labels, 0.3, 1.0, rng)
    estimate = paired_auc_difference(labels, first, second, draws=40, seed=5)
    draw = np.random.default_rng(5)
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    differences = []
    for _ in range(40):
        pick = np.r_[draw.choice(normal, len(normal)), draw.choice(anomalous, len(anomalous))]
        differences.append(
            roc_auc_score(labels[pick], first[pick]) - roc_auc_score(labels[pick], second[pick])
        )
    assert estimate.standard_error == pytest.approx(np.std(differences, ddof=1), abs=1e-12)
    assert estimate.value == pytest.approx(
        roc_auc_score(labels, first) - roc_auc_score(labels, second), abs=1e-12
    )


def test_identical_scores_differ_by_exactly_zero():
    labels = np.r_[np.zeros(10), np.ones(10)].astype(int)
    scores = np.arange(20.0)
    assert paired_auc_difference(labels, scores, scores, draws=50) == (0.0, 0.0)


@pytest.mark.parametrize(
    "labels, first, second, message",
    [
        ([0, 1, 0], [0.1, 0.2], [0.1, 0.2, 0.3], "one score per label"),
        ([0, 1], [np.nan, 0.2], [0.1, 0.2], "NaN"),
        ([1, 1], [0.1, 0.2], [0.1, 0.2], "both 0"),
    ],
)
def test_bad_input_says_what_is_wrong(labels, first, second, message):
    with pytest.raises(ValueError, match=message):
        paired_auc_difference(np.array(labels), np.array(first), np.array(second))


def test_seed_spread_is_mean_and_sample_deviation():
    estimate = seed_spread([0.8, 0.9, 1.0])
    assert estimate.value == pytest.approx(0.9)
    assert estimate.standard_error == pytest.approx(0.1)
    assert str(estimate) == "+0.9000 +- 0.1000"
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_spread([0.8])
