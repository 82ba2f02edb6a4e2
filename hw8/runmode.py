"""How the notebooks are being run: by a student, by the course's tests, or by nbgrader.

- ``$HW8_QUICK=1`` is the course's test switch: training is cut to one epoch on a few
  hundred images so that the test suite stays fast.
- ``$NBGRADER_EXECUTION=autograde`` is set by ``nbgrader autograde`` while it runs a
  submission. No test cell needs a long training run, so grading shortens training the
  same way: a grade never waits on the notebooks' demonstrations.

The module imports nothing heavy, so that the leaderboard and the notebooks' test cells
can ask without loading the training code.
"""

from __future__ import annotations

import os

QUICK_ENV = "HW8_QUICK"


def quick_mode() -> bool:
    """True when ``$HW8_QUICK`` is set to 1: tests shorten training with it."""
    return os.environ.get(QUICK_ENV, "") == "1"


def autograding() -> bool:
    """True while ``nbgrader autograde`` runs the notebook."""
    return os.environ.get("NBGRADER_EXECUTION") == "autograde"


def short_training() -> bool:
    """True under ``$HW8_QUICK=1`` or while nbgrader autogrades: train briefly."""
    return quick_mode() or autograding()


def scaled_epochs(epochs: int) -> int:
    """``epochs``, or 1 when training is short (:func:`short_training`)."""
    return 1 if short_training() else epochs


def quick_slice(count: int, quick_count: int = 256) -> int:
    """``count``, or at most ``quick_count`` when training is short."""
    return min(count, quick_count) if short_training() else count


def platform() -> str:
    """Where the notebook runs: ``"colab"``, ``"kaggle"`` or ``"local"`` (anything else:
    a laptop, a course JupyterHub)."""
    if "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or os.path.isdir("/kaggle/input"):
        return "kaggle"
    return "local"


def describe_runtime() -> str:
    """One line for a notebook's first cell: hw8's version, the platform, Python, torch."""
    import platform as python_platform

    import torch

    import hw8

    where = {"colab": "Google Colab", "kaggle": "Kaggle", "local": "a local Jupyter"}[platform()]
    return (
        f"hw8 {hw8.__version__} on {where} (Python {python_platform.python_version()}, "
        f"PyTorch {torch.__version__})"
    )
