"""Device choice and seeding: the same code runs on CPU, CUDA and Apple MPS."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "HW8_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


class DeviceError(ValueError):
    """A device name that is not one, or a device this machine does not have."""


def default_device(name: str | None = None) -> torch.device:
    """The device to use: ``name``, else ``$HW8_DEVICE``, else CUDA > MPS > CPU.

    An explicit name that this machine cannot use raises a ``DeviceError`` saying
    which devices are available.
    """
    name = name or os.environ.get(DEVICE_ENV) or None
    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"device {name!r} is not a device name ({error}).") from error
    usable = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if not usable.get(device.type, False):
        names = ", ".join(str(d) for d in available_devices())
        raise DeviceError(
            f"device {name!r} is not available on this machine; available: {names}. "
            f"Pass one of those with --device or unset ${DEVICE_ENV}."
        )
    return device


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """Accept a ``torch.device``, a name such as ``"cuda"``, or None (the default)."""
    return device if isinstance(device, torch.device) else default_device(device)


def available_devices() -> list[torch.device]:
    """Every device kind this machine can run on: CPU, plus CUDA and MPS when present."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if _mps_available():
        devices.append(torch.device("mps"))
    return devices


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a CPU ``torch.Generator`` seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
