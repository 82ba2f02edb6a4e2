"""quality.py --protocol validation: settings are chosen on training data only.

The selection helper (benchmarks/recipe_selection.py) is run on the bundled subset with a
tiny grid and 10-step training, so these tests take seconds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hw8 import anomaly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality  # noqa: E402
import recipe_selection  # noqa: E402

TINY_GRID = recipe_selection.Grid(
    train=(
        recipe_selection.TrainSetting(epochs_scale=0.01),
        recipe_selection.TrainSetting(epochs_scale=0.02, latent=8),
    ),
    score=tuple(
        recipe_selection.ScoreSetting(k, 10, w)
        for k in (1, 5)
        for w in ((1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 1.0))
    ),
)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_selection_split_holds_training_images_only(bundled):
    task = recipe_selection.selection_split(bundled.train_images, bundled.train_labels, 3)
    normal = np.flatnonzero(bundled.train_labels == 3)
    held = round(len(normal) * recipe_selection.HELD_OUT)
    assert len(task.train_images) == len(normal) - held
    assert (task.test_labels == 0).sum() == held
    assert task.test_labels.sum() >= held * recipe_selection.ANOMALIES_PER_NORMAL
    # every image of the split is a training image; none is in both of its halves
    rows = {img.tobytes() for img in bundled.train_images}
    assert all(
        img.tobytes() in rows for img in np.concatenate([task.train_images, task.test_images])
    )
    fit = {img.tobytes() for img in task.train_images}
    assert not fit & {img.tobytes() for img in task.test_images}


def test_weighted_rank_average_with_equal_weights_is_the_recipes_rank_average():
    rng = np.random.default_rng(0)
    parts = {name: rng.normal(size=50) for name in recipe_selection.PARTS}
    got = recipe_selection.weighted_rank_average(parts, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(got, anomaly.rank_average(list(parts.values())))
    only_first = recipe_selection.weighted_rank_average(parts, (2.0, 0.0, 0.0))
    np.testing.assert_allclose(only_first, anomaly.rank_average([parts["dense residual"]]))


def test_members_drop_scores_that_weigh_nothing():
    train = recipe_selection.TrainSetting(latent=16, dense_widths=(64,), conv_channels=(4, 8, 8))
    assert [m.kind for m in recipe_selection.members(train, (0.0, 1.0, 0.0))] == ["conv"]
    dense, conv = recipe_selection.members(train)
    assert dense.scores == ("residual",) and conv.scores == ("latent", "angle")
    assert dense.build((1, 28, 28)).encode(torch.zeros(2, 1, 28, 28)).shape == (2, 16)
    assert conv.build((1, 28, 28)).encoder[0].out_channels == 4


def test_selection_never_reads_the_test_split(bundled, one_thread):
    """select() is given the training split alone; a class's choice is the same whatever
    the test split holds, and whichever data set object the training arrays came from."""
    picked = recipe_selection.select(
        bundled.train_images, bundled.train_labels, 5, TINY_GRID, device="cpu", seed=1
    )
    assert len(picked["grid_aucs"]) == len(TINY_GRID.train) * len(TINY_GRID.score)
    assert picked["validation_auc"] == max(picked["grid_aucs"])
    again = recipe_selection.select(
        bundled.train_images.copy(), bundled.train_labels.copy(), 5, TINY_GRID, device="cpu", seed=1
    )
    assert again == picked


def test_validation_protocol_choice_ignores_shuffled_test_labels(
    bundled, one_thread, monkeypatch, tmp_path
):
    """The whole protocol, twice: once with the true test labels, once with them shuffled.
    The chosen settings and validation AUCs are identical; only the test AUC moves."""
    monkeypatch.setattr(recipe_selection, "QUICK_GRID", TINY_GRID)
    garbage = replace(
        bundled, test_labels=np.random.default_rng(0).permutation(bundled.test_labels)
    )
    runs = {}
    for name, data in (("true", bundled), ("shuffled", garbage)):
        monkeypatch.setattr(quality, "load_data", lambda quick, data_dir, d=data: (d, "bundled"))
        out = tmp_path / f"{name}.json"
        argv = ["--protocol", "validation", "--quick", "--classes", "1", "--json", str(out)]
        assert quality.main(argv) == 0
        runs[name] = json.loads(out.read_text())
    true, shuffled = (runs[k]["selection"]["per_class"]["1"] for k in ("true", "shuffled"))
    assert true == shuffled
    assert runs["true"]["methods"]["recipe"]["mean"] > 0.8
    assert (
        runs["true"]["methods"]["recipe"]["mean"] != runs["shuffled"]["methods"]["recipe"]["mean"]
    )


def test_merge_keeps_every_class_choice(tmp_path):
    parts = []
    for c in ("0", "1"):
        result = {
            "seconds": 1.0,
            "methods": {
                "recipe": {
                    "per_class": {c: 0.9},
                    "mean": 0.9,
                    "seconds": 1.0,
                    "standard_error_per_class": {c: 0.03},
                }
            },
            "selection": {"grid": {}, "per_class": {c: {"chosen": {"c": c}}}},
        }
        path = tmp_path / f"{c}.json"
        path.write_text(json.dumps(result))
        parts.append(path)
    merged = quality.merge(parts)
    assert set(merged["selection"]["per_class"]) == {"0", "1"}
    assert merged["methods"]["recipe"]["per_class"] == {"0": 0.9, "1": 0.9}
    recipe = merged["methods"]["recipe"]
    assert recipe["standard_error_per_class"] == {"0": 0.03, "1": 0.03}
    assert recipe["standard_error_of_mean"] == pytest.approx((2 * 0.03**2) ** 0.5 / 2)


def test_full_grid_is_declared_and_small():
    grid = recipe_selection.FULL_GRID.describe()
    assert grid["size"] == len(grid["train"]) * len(grid["score"]) <= 400
    assert recipe_selection.TrainSetting() in recipe_selection.FULL_GRID.train  # the recipe
    assert recipe_selection.ScoreSetting() in recipe_selection.FULL_GRID.score
