import random

import numpy as np
import pytest
import torch
from conftest import cuda

from hw8 import device


def test_default_device_follows_name_then_environment(monkeypatch):
    monkeypatch.setenv(device.DEVICE_ENV, "cpu")
    assert device.default_device() == torch.device("cpu")
    assert device.default_device("cpu") == torch.device("cpu")
    monkeypatch.delenv(device.DEVICE_ENV)
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert device.default_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal on a CPU machine")
def test_unavailable_device_is_refused_with_the_available_list(monkeypatch):
    with pytest.raises(ValueError, match="'cuda' is not available.*available: cpu"):
        device.default_device("cuda")
    monkeypatch.setenv(device.DEVICE_ENV, "cuda")
    with pytest.raises(ValueError, match="HW8_DEVICE"):
        device.default_device()


def test_nonsense_device_name_is_refused():
    with pytest.raises(ValueError, match="'gpu0' is not a device name"):
        device.default_device("gpu0")


def test_available_devices_starts_with_cpu():
    devices = device.available_devices()
    assert devices[0] == torch.device("cpu")
    assert (torch.device("cuda") in devices) == torch.cuda.is_available()


def test_seed_everything_repeats_every_generator():
    draws = []
    for _ in range(2):
        generator = device.seed_everything(7)
        draws.append(
            (
                random.random(),
                np.random.rand(),
                torch.rand(1).item(),
                torch.rand(1, generator=generator).item(),
            )
        )
    assert draws[0] == draws[1]


@cuda
def test_cuda_is_the_default_when_present(monkeypatch):
    monkeypatch.delenv(device.DEVICE_ENV, raising=False)
    assert device.default_device().type == "cuda"
    assert device.resolve_device("cuda").type == "cuda"
