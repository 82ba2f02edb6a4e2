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
    """One line for a notebook's first cell: hw8's version, the platform, Python, torch.
    Raises a clear error first when a requirement is unmet (:func:`check_requirements`)."""
    import platform as python_platform

    check_requirements()

    import torch

    import hw8

    where = {"colab": "Google Colab", "kaggle": "Kaggle", "local": "a local Jupyter"}[platform()]
    return (
        f"hw8 {hw8.__version__} on {where} (Python {python_platform.python_version()}, "
        f"PyTorch {torch.__version__})"
    )


def unmet_requirements() -> list[str]:
    """hw8's runtime requirements this Python does not meet, e.g. ``"torch>=2.11 (this
    runtime has 2.10.0)"``; empty when all are met or hw8 runs from a checkout (no
    installed metadata to read)."""
    from importlib import metadata

    from packaging.requirements import Requirement  # installed with matplotlib

    try:
        declared = metadata.requires("hw8") or []
    except metadata.PackageNotFoundError:
        return []
    unmet = []
    for requirement in map(Requirement, declared):
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra (course, dev): not needed to run the notebooks
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} (this runtime has {version})")
    return unmet


def check_requirements() -> None:
    """Raise a clear error, with the one-line fix, when a requirement of hw8 is unmet."""
    unmet = unmet_requirements()
    if unmet:
        needed = " ".join(f"'{item.split(' (')[0]}'" for item in unmet)
        raise RuntimeError(
            f"hw8 needs {'; '.join(unmet)}. Fix: run `%pip install {needed}` in a cell, "
            "then restart the kernel (Runtime > Restart session on Colab)."
        )
