"""Shared fixtures: a small one-class task and a tiny trained model."""

import numpy as np
import pytest
import torch

from hw8.datasets import load_bundled, one_class_task

# `@cuda` marks a test as CUDA-only (select them with `pytest -m cuda`); without a CUDA
# GPU the hook below skips them.
cuda = pytest.mark.cuda


def pytest_collection_modifyitems(items):
    """Skip the tests marked ``cuda`` on a machine without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bundled():
    """The bundled Fashion-MNIST subset."""
    return load_bundled()


@pytest.fixture(scope="session")
def small_task(bundled):
    """A small one-class task (class 1, trousers): 200 training and 80 test images."""
    task = one_class_task(bundled, (1,), seed=0)
    rng = np.random.default_rng(0)
    test = np.sort(rng.choice(len(task.test_images), 80, replace=False))
    return type(task)(
        "small", task.train_images[:200], task.test_images[test], task.test_labels[test]
    )
