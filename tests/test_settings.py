"""The course sample's settings: the facts of HW8, read by every part of the package."""

import inspect

from hw8 import settings, train
from hw8.cli import build_parser


def test_sample_settings_are_the_course_samples():
    assert settings.sample_settings() == {"epochs": 50, "batch_size": 2000, "lr": 1e-3}
    assert settings.SAMPLE_SEED == 48763


def test_training_loop_and_cli_default_to_them():
    defaults = inspect.signature(train.train).parameters
    assert defaults["epochs"].default == settings.SAMPLE_EPOCHS
    assert defaults["batch_size"].default == settings.SAMPLE_BATCH_SIZE
    assert defaults["lr"].default == settings.SAMPLE_LR
    assert defaults["seed"].default == settings.SAMPLE_SEED
    args = build_parser().parse_args(["train"])
    assert args.seed == settings.SAMPLE_SEED and args.lr == settings.SAMPLE_LR
