"""benchmarks/memory.py: the GPU memory of a training step, counted without a GPU."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import memory  # noqa: E402


def test_saved_activations_grow_with_the_batch():
    small = memory.measure("cnn", 8, images=10)["parts_gib"]["saved activations"]
    large = memory.measure("cnn", 32, images=10)["parts_gib"]["saved activations"]
    assert small > 0
    assert large == pytest.approx(4 * small, rel=0.1)


def test_the_training_images_are_counted_as_uint8():
    row = memory.measure("fcn", 4, images=2**20)
    assert row["parts_gib"]["training images (uint8)"] == pytest.approx(12, rel=1e-3)


def test_a_run_over_the_t4s_memory_fails(tmp_path):
    assert memory.main(["--models", "fcn", "--images", "2000000"]) == 1  # 22.9 GiB of images
    assert memory.main(["--models", "fcn", "--json", str(tmp_path / "m.json")]) == 0
    assert (tmp_path / "m.json").is_file()
