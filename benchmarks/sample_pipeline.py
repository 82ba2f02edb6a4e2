"""A faithful reimplementation of the course sample's training pipeline (ML 2023 Spring HW8).

The speed benchmark compares the package's training loop with this. It copies what the
sample does, step by step, because that is where the sample spends its time:

* a ``Dataset`` that keeps the uint8 images as one tensor permuted NHWC -> NCHW (a view),
  and applies two ``Lambda`` transforms to every image on every access: to float32, then
  ``2 * x / 255 - 1``;
* a ``DataLoader`` with ``batch_size=2000`` and a ``RandomSampler`` (no workers), so each
  batch is assembled image by image in Python and stacked by the default collate;
* in the loop: ``img = data.float().to(device)``, the sample's loss, ``loss.item()`` on
  every step (a device sync), ``optimizer.zero_grad(); loss.backward(); optimizer.step()``,
  with Adam at lr 1e-3.

torchvision is not a dependency of this project, so ``Lambda`` and ``Compose`` below are
plain callables with the same per-image behaviour as ``torchvision.transforms``. The
sample also saves the whole model twice per epoch (``torch.save``); that is left out here
so the comparison is about the data path and the loop, not the disk.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from hw8.settings import SAMPLE_BATCH_SIZE, SAMPLE_EPOCHS, SAMPLE_LR, SAMPLE_SEED


class Lambda:
    """A per-image transform made from a function (as ``torchvision.transforms.Lambda``)."""

    def __init__(self, function):
        self.function = function

    def __call__(self, image):
        return self.function(image)


class Compose:
    """Apply transforms one after another (as ``torchvision.transforms.Compose``)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image


class CustomTensorDataset(Dataset):
    """The sample's dataset: NHWC uint8 tensor permuted to NCHW, transforms per image."""

    def __init__(self, tensors: torch.Tensor):
        self.tensors = tensors
        # The sample permutes when the last axis holds 3 channels; 1 is allowed here too.
        if tensors.shape[-1] in (1, 3):
            self.tensors = tensors.permute(0, 3, 1, 2)
        self.transform = Compose(
            [
                Lambda(lambda x: x.to(torch.float32)),
                Lambda(lambda x: 2.0 * x / 255.0 - 1.0),
            ]
        )

    def __getitem__(self, index):
        x = self.tensors[index]
        if self.transform:
            x = self.transform(x)
        return x

    def __len__(self):
        return len(self.tensors)


def make_dataloader(
    images: np.ndarray,
    batch_size: int = SAMPLE_BATCH_SIZE,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """The sample's loader over uint8 NHWC ``images``: RandomSampler, no workers."""
    dataset = CustomTensorDataset(torch.from_numpy(images))
    sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, sampler=sampler, batch_size=batch_size)


def loss_vae(recon_x, x, mu, logvar, criterion):
    """The sample's VAE loss: criterion (MSE, mean) plus the KL summed over the batch."""
    mse = criterion(recon_x, x)
    kld_element = mu.pow(2).add_(logvar.exp()).mul_(-1).add_(1).add_(logvar)
    kld = torch.sum(kld_element).mul_(-0.5)
    return mse + kld


def sample_loss(model: nn.Module, img: torch.Tensor, criterion) -> torch.Tensor:
    """The sample's loss for one batch: VAE models return (x_hat, mu, logvar)."""
    output = model(img)
    if isinstance(output, tuple):
        return loss_vae(output[0], img, output[1], output[2], criterion)
    return criterion(output, img)


def train_epoch(model, dataloader, optimizer, device, criterion=None) -> float:
    """One epoch exactly as the sample's loop runs it; returns the mean batch loss."""
    criterion = criterion or nn.MSELoss()
    model.train()
    tot_loss = []
    for data in dataloader:
        img = data.float().to(device)
        loss = sample_loss(model, img, criterion)
        tot_loss.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(np.mean(tot_loss))


def train_sample(
    model: nn.Module,
    images: np.ndarray,
    *,
    epochs: int = SAMPLE_EPOCHS,
    batch_size: int = SAMPLE_BATCH_SIZE,
    lr: float = SAMPLE_LR,
    device: torch.device | str = "cpu",
    seed: int = SAMPLE_SEED,
) -> list[float]:
    """Train ``model`` the sample's way; return the mean loss of every epoch."""
    torch.manual_seed(seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = make_dataloader(images, batch_size)
    return [train_epoch(model, loader, optimizer, device) for _ in range(epochs)]
