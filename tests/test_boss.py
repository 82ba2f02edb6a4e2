"""The boss recipe: its models, its scores, and that it runs end to end, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hw8 import boss


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64)])
@pytest.mark.parametrize("model_class", [boss.DenseAE, boss.ConvAE])
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
    got = boss.knn_distance(reference, queries, k=5, chunk=3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_an_unseen_kind_of_image_scores_higher_than_a_training_image(small_task, monkeypatch):
    monkeypatch.setenv("HW8_QUICK", "1")
    scores = boss.run_boss(small_task, device="cpu", progress=False)
    assert set(scores) == {"dense32 residual", "conv32 latent", "conv32 angle", "boss"}
    final = scores["boss"]
    assert final.shape == (len(small_task.test_images),) and np.isfinite(final).all()
    assert 0 < final.min() and final.max() <= 1
    labels = small_task.test_labels
    assert final[labels == 1].mean() > final[labels == 0].mean()


def test_same_seed_same_scores(small_task, monkeypatch):
    monkeypatch.setenv("HW8_QUICK", "1")
    a = boss.boss_scores(small_task, device="cpu", seed=5, progress=False)
    b = boss.boss_scores(small_task, device="cpu", seed=5, progress=False)
    np.testing.assert_array_equal(a, b)
