"""The house recipe: two autoencoders, three scores, one rank average.

This is the package's own recipe, behind ``hw8 recipe`` and the quality benchmark. It is
not a student's method: notebook 05's challenge runs ``improved_scores`` with this module
blocked, and its leaderboard gives no points to a method that uses it
(:func:`hw8.checks.leaderboard.assert_own_method`). The leaderboard's boss level is measured on
notebook 05's own model answer instead.

The course sample scores an image by how badly one autoencoder reconstructs it. The
recipe keeps that idea and adds what students who passed the boss baseline found:

1. **Stronger, different models.** A dense autoencoder with BatchNorm and PReLU
   (D-512-256-32) and a small convolutional one (16-32-64 channels, a code of 32
   numbers). Each is trained with Adam on a one-cycle learning-rate schedule.
2. **Standardised reconstruction error** (dense model). Some pixels are hard to
   reconstruct even on normal images (edges, textures). Each pixel's error is divided
   by that pixel's error spread on the training images before squaring and summing, so
   an error counts by how unusual it is, not by how big it is.
3. **Distance in the latent space** (conv model). An anomaly can be reconstructed well
   and still get a code unlike any normal image's: the mean distance from a test code
   to its 5 nearest training codes, and the same for codes scaled to unit length (the
   angle between codes, 10 neighbours).
4. **Rank averaging** (:func:`hw8.anomaly.rank_average`) of the three scores, so no
   score's scale dominates.

Training runs a fixed number of steps whatever the number of images
(``hw8.settings.RECIPE_TRAINING``), with the images moved to the device once, as in
:mod:`hw8.train`; ``$HW8_QUICK=1`` shortens it. How well and how fast it does, against
PCA and the course sample, is measured in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hw8.anomaly import rank_average
from hw8.datasets import AnomalyTask, iterate_batches, to_device
from hw8.device import resolve_device, seed_everything
from hw8.models import Autoencoder, WideFCN, crop, pad_to_multiple
from hw8.runmode import progress_bar, quick_mode
from hw8.settings import RECIPE_TRAINING, SAMPLE_SEED
from hw8.train import TrainingError, train_steps

KNN = 5
KNN_ANGLE = 10
ERROR_FLOOR = 0.05  # added to every pixel's error spread, so no pixel divides by ~0
MAX_REFERENCE_CODES = 20_000  # training codes the latent distance compares against


# ----------------------------------------------------------------------------- models


class DenseAE(WideFCN):
    """The recipe's dense member: :class:`hw8.models.WideFCN` at D-512-256-``latent``."""

    name = "recipe_dense"

    def __init__(self, image_shape, widths=(512, 256), latent: int = 32):
        super().__init__(image_shape, widths, latent)


class ConvAE(Autoencoder):
    """A small convolutional autoencoder with a dense bottleneck of ``latent`` numbers.

    Two stride-2 convolutions and one 3x3 (``channels`` wide), BatchNorm and LeakyReLU,
    mirrored by two transposed convolutions. Images are padded with background (-1) to
    a multiple of 4 and the output is cropped back.
    """

    name = "recipe_conv"

    def __init__(self, image_shape, channels=(16, 32, 64), latent: int = 32):
        super().__init__(image_shape)
        c_img, height, width = self.image_shape
        a, b, c = channels
        self.grid = (math.ceil(height / 4), math.ceil(width / 4))
        flat = c * self.grid[0] * self.grid[1]
        act = nn.LeakyReLU(0.2)
        self.encoder = nn.Sequential(
            nn.Conv2d(c_img, a, 4, 2, 1), nn.BatchNorm2d(a), act,
            nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), act,
            nn.Conv2d(b, c, 3, 1, 1), nn.BatchNorm2d(c), act,
            nn.Flatten(), nn.Linear(flat, latent),
        )  # fmt: skip
        self.channels = c
        self.from_latent = nn.Linear(latent, flat)
        self.decoder = nn.Sequential(
            nn.BatchNorm2d(c), act,
            nn.ConvTranspose2d(c, b, 4, 2, 1), nn.BatchNorm2d(b), act,
            nn.ConvTranspose2d(b, c_img, 4, 2, 1), nn.Tanh(),
        )  # fmt: skip

    def encode(self, x):
        """Pad to a multiple of 4 and encode to the latent code."""
        return self.encoder(pad_to_multiple(x, 4))

    def decode(self, z):
        """Decode a code and crop to ``image_shape``."""
        hidden = self.from_latent(z).view(-1, self.channels, *self.grid)
        return crop(self.decoder(hidden), self.image_shape)


SCORE_KINDS = ("residual", "latent", "angle")


@dataclass(frozen=True)
class Member:
    """One model of the ensemble: its kind, code size, seed offset and the scores it gives.

    ``widths``: the dense model's hidden widths or the conv model's three channel counts
    (``None``: the class defaults, D-512-256 and 16-32-64).
    """

    kind: str
    scores: tuple[str, ...] = SCORE_KINDS
    latent: int = 32
    seed_offset: int = 0
    widths: tuple[int, ...] | None = None

    @property
    def label(self) -> str:
        """A short name for tables: kind and code size."""
        return f"{self.kind}{self.latent}"

    def build(self, image_shape) -> Autoencoder:
        """A fresh, untrained model of this member's kind."""
        if self.widths is None:
            return {"dense": DenseAE, "conv": ConvAE}[self.kind](image_shape, latent=self.latent)
        if self.kind == "dense":
            return DenseAE(image_shape, widths=self.widths, latent=self.latent)
        return ConvAE(image_shape, channels=self.widths, latent=self.latent)


# Each model gives the scores it is good at: the dense model's codes are poor neighbours
# and the conv model's residual adds little beside the dense one's (benchmarks/RESULTS.md).
RECIPE = (Member("dense", ("residual",)), Member("conv", ("latent", "angle"), seed_offset=1))


# ----------------------------------------------------------------------------- training


def fit(
    model: Autoencoder,
    data: torch.Tensor,
    *,
    steps: int,
    batch_size: int = RECIPE_TRAINING.batch_size,
    peak_lr: float = RECIPE_TRAINING.peak_lr,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Autoencoder:
    """Train on a uint8 NCHW tensor already on the device: Adam, one-cycle schedule."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=peak_lr / 3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, peak_lr, total_steps=steps)
    batch_size = min(batch_size, len(data))
    bar = progress_bar(total=steps, disable=not progress, desc=f"recipe {model.name}", unit="step")
    with bar:
        loss = train_steps(
            model, optimizer, data, batch_size, generator, steps, schedule=schedule, bar=bar
        )
    if not math.isfinite(loss):
        raise TrainingError(f"house recipe: the {model.name} loss became {loss}.")
    return model.eval()


# ----------------------------------------------------------------------------- scoring


@torch.no_grad()
def codes_and_errors(model: Autoencoder, data: torch.Tensor, batch_size: int = 500):
    """Latent codes and per-pixel reconstruction errors (flattened), on the device."""
    codes, errors = [], []
    for batch in iterate_batches(data, batch_size):
        code = model.encode(batch)
        codes.append(code.float())
        errors.append((model.decode(code) - batch).flatten(1).float())
    return torch.cat(codes), torch.cat(errors)


@torch.no_grad()
def knn_distance(reference: torch.Tensor, queries: torch.Tensor, k: int = KNN, chunk=1024):
    """Mean Euclidean distance from each query row to its ``k`` nearest reference rows."""
    k = min(k, len(reference))
    out = [
        torch.cdist(part, reference).topk(k, largest=False).values.mean(1)
        for part in queries.split(chunk)
    ]
    return torch.cat(out)


def _unit(codes: torch.Tensor) -> torch.Tensor:
    return codes / codes.norm(dim=1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def member_scores(
    model, train_data, test_data, kinds=SCORE_KINDS, generator=None, *, knn=KNN, knn_angle=KNN_ANGLE
) -> dict[str, np.ndarray]:
    """Scores of one trained model, each higher = more anomalous.

    ``residual``: squared reconstruction error, each pixel divided by its error spread on
    the training images; ``latent``: mean distance from the code to its ``knn`` (5)
    nearest training codes; ``angle``: the same for codes scaled to unit length
    (``knn_angle``, 10 neighbours).
    """
    train_codes, train_errors = codes_and_errors(model, train_data)
    test_codes, test_errors = codes_and_errors(model, test_data)
    scores = {}
    if "residual" in kinds:
        spread = train_errors.std(0) + ERROR_FLOOR
        scores["residual"] = (test_errors / spread).pow(2).sum(1)
    if len(train_codes) > MAX_REFERENCE_CODES:
        keep = torch.randperm(len(train_codes), generator=generator)[:MAX_REFERENCE_CODES]
        train_codes = train_codes[keep.to(train_codes.device)]
    if "latent" in kinds:
        scores["latent"] = knn_distance(train_codes, test_codes, knn)
    if "angle" in kinds:
        scores["angle"] = knn_distance(_unit(train_codes), _unit(test_codes), knn_angle)
    return {kind: values.cpu().numpy().astype(np.float64) for kind, values in scores.items()}


def training_steps(epochs_scale: float = 1.0) -> int:
    """Optimiser steps per member: 1,000 (100 with ``$HW8_QUICK``) times ``epochs_scale``."""
    steps = RECIPE_TRAINING.quick_steps if quick_mode() else RECIPE_TRAINING.steps
    return max(10, round(steps * epochs_scale))


def train_member(
    member: Member,
    train_data: torch.Tensor,
    image_shape,
    *,
    steps: int,
    seed: int = SAMPLE_SEED,
    progress: bool = True,
) -> tuple[Autoencoder, torch.Generator]:
    """Build and train one member on uint8 NCHW ``train_data`` already on its device,
    seeded with ``seed + member.seed_offset``; returns the model and its generator."""
    generator = seed_everything(seed + member.seed_offset)
    model = member.build(image_shape).to(train_data.device)
    fit(model, train_data, steps=steps, generator=generator, progress=progress)
    return model, generator


def run_recipe(
    task: AnomalyTask,
    *,
    device: torch.device | str | None = None,
    seed: int = SAMPLE_SEED,
    epochs_scale: float = 1.0,
    progress: bool = True,
    recipe: tuple[Member, ...] = RECIPE,
    knn: int = KNN,
    knn_angle: int = KNN_ANGLE,
) -> dict[str, np.ndarray]:
    """Train every member and return every score, plus ``"recipe"``: their rank average.

    Keys: ``"<member> residual"``, ``"<member> latent"`` for each member, and ``"recipe"``.
    ``epochs_scale`` multiplies the number of training steps; ``knn`` and ``knn_angle``
    are the neighbours of the latent and angle scores.
    """
    device = resolve_device(device)
    steps = training_steps(epochs_scale)
    train_data = to_device(task.train_images, device)
    test_data = to_device(task.test_images, device)
    scores = {}
    for member in recipe:
        model, generator = train_member(
            member, train_data, task.image_shape, steps=steps, seed=seed, progress=progress
        )
        parts = member_scores(
            model, train_data, test_data, member.scores, generator, knn=knn, knn_angle=knn_angle
        )
        for part, values in parts.items():
            scores[f"{member.label} {part}"] = values
    scores["recipe"] = rank_average(list(scores.values()))
    return scores


def recipe_scores(
    task: AnomalyTask,
    *,
    device: torch.device | str | None = None,
    seed: int = SAMPLE_SEED,
    epochs_scale: float = 1.0,
    progress: bool = True,
) -> np.ndarray:
    """The house recipe's anomaly score for every test image (higher = more anomalous)."""
    return run_recipe(task, device=device, seed=seed, epochs_scale=epochs_scale, progress=progress)[
        "recipe"
    ]
