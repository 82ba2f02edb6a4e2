"""The course sample's training settings, in one place.

ML 2023 Spring HW8's sample code trains every model with Adam at learning rate 1e-3,
batches of 2000 images, for 50 epochs, after seeding everything with 48763. The training
loop's defaults, the command line, the benchmarks and notebook 05 all read them from here.
The names the command line offers as choices live here too, so that building its parser
imports no torch.
"""

from __future__ import annotations

SAMPLE_SEED = 48763
SAMPLE_LR = 1e-3
SAMPLE_BATCH_SIZE = 2000
SAMPLE_EPOCHS = 50

DATASET_NAMES = ("bundled", "fashion-mnist", "digits", "hw8")  # hw8.datasets.load_task
SCORE_METRICS = ("l2", "mse", "l1")  # hw8.anomaly.reconstruction_scores


def sample_settings() -> dict:
    """The sample's settings as keyword arguments of :func:`hw8.train.train`."""
    return {"epochs": SAMPLE_EPOCHS, "batch_size": SAMPLE_BATCH_SIZE, "lr": SAMPLE_LR}
