"""Shared fixtures: a small one-class task and a tiny trained model."""

import numpy as np
import pytest
import torch

from hw8.datasets import load_bundled, one_class_task

# `@cuda` marks a test as CUDA-only (select them with `pytest -m cuda`); without a CUDA
# GPU the hook below skips them.
cuda = pytest.mark.cuda


# The fixtures that run a notebook: a test that uses one must be marked `slow` (so that
# `make test-fast`, `pytest -m "not slow"`, leaves it out).
NOTEBOOK_FIXTURES = {"out01", "out02", "out03", "out04", "out05", "psnr"}


def pytest_collection_modifyitems(items):
    """Refuse a notebook-running test without the ``slow`` mark; skip the tests marked
    ``cuda`` on a machine without a CUDA GPU."""
    unmarked = [
        item.nodeid
        for item in items
        if NOTEBOOK_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not item.get_closest_marker("slow")
    ]
    if unmarked:
        raise pytest.UsageError(f"these tests run a notebook; mark them slow: {unmarked}")
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
