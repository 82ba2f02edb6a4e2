"""The presets: every training setting, time limit and shape that more than one place
needs, defined here once (a test finds no second literal of them).

- The course sample (ML 2023 Spring HW8's sample code): Adam at learning rate 1e-3,
  batches of 2000 images, 50 epochs, after seeding everything with 48763. The training
  loop's defaults, the command line, the benchmarks and notebook 05 read it from here.
- The stand-in data sets (bundled, Fashion-MNIST, digits) are much smaller than HW8's
  100,000 faces: a batch of 100 gives a comparable number of optimiser steps.
- The package's recipe (``hw8.house_recipe``) trains a fixed number of steps whatever the data.
- Grading: the time limit of one notebook cell (nbgrader's ``Execute.timeout`` in
  ``nbgrader_config.py``, ``hw8 validate``, ``hw8 course grade``) and of one submission.

The names the command line offers as choices live here too, so that building its parser
imports no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainingPreset:
    """How :func:`hw8.train.train` trains: its keyword arguments ``epochs``,
    ``batch_size`` and ``lr``."""

    epochs: int
    batch_size: int
    lr: float

    def as_kwargs(self) -> dict:
        """The preset as keyword arguments of :func:`hw8.train.train`."""
        return asdict(self)


@dataclass(frozen=True)
class RecipePreset:
    """How the package's recipe trains each of its models: ``steps`` optimiser steps
    (``quick_steps`` under ``$HW8_QUICK``) of ``batch_size`` images, Adam on a one-cycle
    schedule that peaks at ``peak_lr``."""

    steps: int
    quick_steps: int
    batch_size: int
    peak_lr: float


SAMPLE_SEED = 48763
SAMPLE = TrainingPreset(epochs=50, batch_size=2000, lr=1e-3)
STAND_IN = TrainingPreset(epochs=30, batch_size=100, lr=SAMPLE.lr)
RECIPE_TRAINING = RecipePreset(steps=1000, quick_steps=100, batch_size=64, peak_lr=3e-3)

# The sample's settings by name (notebooks and benchmarks import these)
SAMPLE_LR = SAMPLE.lr
SAMPLE_BATCH_SIZE = SAMPLE.batch_size
SAMPLE_EPOCHS = SAMPLE.epochs

HW8_IMAGE_SHAPE = (64, 64, 3)  # one HW8 image: height, width, RGB channels (uint8)
QUICK_TRAIN_IMAGES = 256  # training images kept when training is short (autograde, quick)
CELL_TIMEOUT_S = 300  # seconds one notebook cell may run while it is graded or validated
SUBMISSION_TIMEOUT_S = 1800  # seconds one submission may take in `hw8 course grade`
DISK_LIMIT_GIB = 1.0  # what each sandboxed process of a grading job may write

DATASET_NAMES = ("bundled", "fashion-mnist", "digits", "hw8")  # hw8.datasets.load_task
SCORE_METRICS = ("l2", "mse", "l1")  # hw8.anomaly.reconstruction_scores


def sample_settings() -> dict:
    """The sample's settings as keyword arguments of :func:`hw8.train.train`."""
    return SAMPLE.as_kwargs()


def training_preset(data: str) -> TrainingPreset:
    """The preset for the data set named ``data``: the sample's on HW8's own files, the
    stand-in preset on every smaller set."""
    return SAMPLE if data == "hw8" else STAND_IN
