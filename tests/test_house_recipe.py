"""The house recipe: its models, its scores, and that it runs end to end, seeded."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from hw8 import house_recipe


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64)])
@pytest.mark.parametrize("model_class", [house_recipe.DenseAE, house_recipe.ConvAE])
def test_models_reconstruct_images_of_their_shape(model_class, shape):
    model = model_class(shape).eval()
    x = torch.rand(3, *shape) * 2 - 1
    assert model.reconstruct(x).shape == x.shape
    assert model.encode(x).shape == (3, 32)


def test_knn_distance_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    reference, queries = (
        torch.randn(50, 4, generator=generator),
        torch.randn(7, 4, generator=generator),
    )
    expected = [
        np.sort(np.linalg.norm(reference.numpy() - q.numpy(), axis=1))[:5].mean() for q in queries
    ]
    got = house_recipe.knn_distance(reference, queries, k=5, chunk=3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


@pytest.fixture(scope="module")
def quick_run(small_task):
    """One short run of the recipe (``HW8_QUICK=1``), on one CPU thread.

    One thread: on a busy 2-core machine, two torch threads can wait on each other for
    minutes; one is as fast for models this small.
    """
    threads, quick = torch.get_num_threads(), os.environ.get("HW8_QUICK")
    os.environ["HW8_QUICK"] = "1"
    torch.set_num_threads(1)
    try:
        yield house_recipe.run_recipe(small_task, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
        if quick is None:
            os.environ.pop("HW8_QUICK")
        else:
            os.environ["HW8_QUICK"] = quick


def test_anomalies_score_higher_than_normal_images(small_task, quick_run):
    assert set(quick_run) == {"dense32 residual", "conv32 latent", "conv32 angle", "recipe"}
    final = quick_run["recipe"]
    assert final.shape == (len(small_task.test_images),) and np.isfinite(final).all()
    assert 0 < final.min() and final.max() <= 1
    labels = small_task.test_labels
    assert final[labels == 1].mean() > final[labels == 0].mean()


def test_same_seed_same_scores(small_task, quick_run, monkeypatch):
    monkeypatch.setenv("HW8_QUICK", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = house_recipe.recipe_scores(small_task, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(again, quick_run["recipe"])
