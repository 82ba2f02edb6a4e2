"""The benchmark scripts: the sample pipeline copy, the speed JSON, the quality quick check.

The numbers themselves are measured by the scripts and recorded in benchmarks/RESULTS.md;
these tests check that the scripts run, write the documented JSON shapes, and (quick
quality mode) that the boss recipe ranks above the sample VAE and PCA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import plot_results  # noqa: E402
import sample_pipeline  # noqa: E402


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.pop("HW8_QUICK", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_sample_dataset_transforms_each_image_like_the_course_sample():
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    dataset = sample_pipeline.CustomTensorDataset(torch.from_numpy(images))
    item = dataset[2]
    expected = 2.0 * torch.from_numpy(images[2]).permute(2, 0, 1).float() / 255.0 - 1.0
    assert item.dtype == torch.float32 and item.shape == (3, 4, 6)
    torch.testing.assert_close(item, expected)
    batches = list(sample_pipeline.make_dataloader(images, batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]


def test_sample_vae_loss_is_mse_plus_kl_summed_over_the_batch():
    x = torch.zeros(2, 1, 2, 2)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    loss = sample_pipeline.loss_vae(x + 1, x, mu, logvar, torch.nn.MSELoss())
    # MSE 1, KL = 0.5 * sum(mu^2) = 0.5 * 6 = 3
    assert loss.item() == pytest.approx(4.0)


def test_speed_script_writes_the_documented_json(tmp_path):
    out = tmp_path / "speed.json"
    result = run_script(
        "benchmarks/speed.py", "--device", "cpu", "--n", "24", "--threads", "1",
        "--models", "fcn", "cnn", "vae", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["device"].startswith("cpu") and "torch" in data["versions"]
    assert set(data["models"]) == {"fcn", "cnn", "vae"}
    for entry in data["models"].values():
        assert entry["sample_s"] > 0 and entry["hw8_s"] > 0
        assert entry["ratio"] == pytest.approx(entry["sample_s"] / entry["hw8_s"], rel=0.02)
    figure = plot_results.plot_speed([data], tmp_path / "speed.png")
    assert (tmp_path / "speed.png").stat().st_size > 0 and figure.axes


@pytest.mark.slow
def test_quality_quick_mode_ranks_the_boss_recipe_first(tmp_path):
    out = tmp_path / "quality.json"
    result = run_script("benchmarks/quality.py", "--quick", "--threads", "1", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    methods = json.loads(out.read_text())["methods"]
    assert {"pca", "sample_vae", "boss"} <= set(methods)
    for entry in methods.values():
        assert entry["per_class"] and all(0.0 <= v <= 1.0 for v in entry["per_class"].values())
        assert entry["mean"] == pytest.approx(np.mean(list(entry["per_class"].values())))
    assert methods["boss"]["mean"] > max(methods["pca"]["mean"], methods["sample_vae"]["mean"])
    figure = plot_results.plot_quality({"methods": methods}, tmp_path / "quality.png")
    assert figure.axes
