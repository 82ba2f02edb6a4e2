"""Forbidden routes: a test cell blocks the library calls that would solve an exercise."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics
from sklearn.metrics import roc_auc_score

import hw8.anomaly
from hw8.checks.forbidden import forbidden_calls

TARGETS = ["hw8.anomaly.roc_auc", "sklearn.metrics.roc_auc_score"]
LABELS, SCORES = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])


def test_blocked_calls_raise_a_clear_message_and_everything_is_restored():
    namespace = {"roc_auc_score": roc_auc_score, "auc": hw8.anomaly.roc_auc}
    originals = (hw8.anomaly.roc_auc, sklearn.metrics.roc_auc_score)
    for name in namespace:  # a name the notebook imported at the top of a cell is caught too
        with pytest.raises(AssertionError, match="do not call .* in this exercise; do it"):
            with forbidden_calls(TARGETS, message="do it yourself", namespace=namespace):
                namespace[name](LABELS, SCORES)
    with pytest.raises(AssertionError, match="sklearn.metrics.roc_auc_score"):
        with forbidden_calls(TARGETS, message="do it yourself"):
            from sklearn.metrics import roc_auc_score as imported_inside

            imported_inside(LABELS, SCORES)
    assert (hw8.anomaly.roc_auc, sklearn.metrics.roc_auc_score) == originals
    assert sklearn.metrics._ranking.roc_auc_score is roc_auc_score
    assert namespace == {"roc_auc_score": roc_auc_score, "auc": hw8.anomaly.roc_auc}
    assert hw8.anomaly.roc_auc(LABELS, SCORES) == 0.75  # the package's own route still works


def test_a_swallowed_call_still_fails_and_allowed_code_passes():
    def sneaky(labels, scores):
        try:
            return sklearn.metrics.roc_auc_score(labels, scores)
        except Exception:
            return 0.75

    with pytest.raises(AssertionError, match="your code called sklearn.metrics.roc_auc_score"):
        with forbidden_calls(TARGETS, message="do it yourself"):
            sneaky(LABELS, SCORES)
    with forbidden_calls(TARGETS, message="do it yourself") as record:
        s1, s0 = SCORES[LABELS == 1], SCORES[LABELS == 0]
        assert (s1[:, None] > s0[None, :]).mean() == 0.75
    assert record.calls == []


def test_a_bad_target_is_refused():
    with pytest.raises(ValueError, match="dotted path"):
        with forbidden_calls(["roc_auc"], message="x"):
            pass
