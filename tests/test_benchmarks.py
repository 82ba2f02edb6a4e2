"""The benchmark scripts: the sample pipeline copy, the speed JSON, the quality quick checks.

The numbers themselves are measured by the scripts and recorded in benchmarks/RESULTS.md;
these tests check that the scripts run, write the documented JSON shapes, (quick quality
mode) that the house recipe ranks above the sample VAE and PCA, and (quick validation
protocol) that every class's chosen setting is recorded and does not depend on the test
labels.
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

from hw8.device import native_bfloat16  # noqa: E402


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
        "--models", "fcn", "cnn", "vae", "--repeats", "3", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["device"].startswith("cpu") and "torch" in data["versions"]
    assert data["repeats"] == 3 and len(data["load_average_before"]) == 3
    assert set(data["models"]) == {"fcn", "cnn", "vae"}
    for entry in data["models"].values():
        assert entry["sample_s"] > 0 and entry["hw8_s"] > 0
        assert entry["ratio"] == pytest.approx(entry["sample_s"] / entry["hw8_s"], rel=0.02)
        for side in ("sample", "hw8"):  # the median of the runs, and their spread
            runs = entry[f"{side}_s_runs"]
            assert len(runs) == 3
            assert entry[f"{side}_s"] == pytest.approx(float(np.median(runs)), abs=1e-4)
            assert entry[f"{side}_s_min"] <= entry[f"{side}_s"] <= entry[f"{side}_s_max"]
        paired = [s / h for s, h in zip(entry["sample_s_runs"], entry["hw8_s_runs"], strict=True)]
        assert entry["ratio_paired_median"] == pytest.approx(np.median(paired), abs=0.01)
    figure = plot_results.plot_speed([data], tmp_path / "speed.png")
    assert (tmp_path / "speed.png").stat().st_size > 0 and figure.axes


def test_speed_script_records_hw8s_cpu_switches(tmp_path):
    out = tmp_path / "speed.json"
    result = run_script(
        "benchmarks/speed.py", "--device", "cpu", "--n", "24", "--threads", "1",
        "--models", "cnn", "--repeats", "1", "--amp", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    native = native_bfloat16(torch.device("cpu"))
    assert data["hw8_options"] == {
        "amp": True,
        "compile": False,
        "bfloat16_used": native,
        "compile_cache": None,
    }
    assert data["models"]["cnn"]["hw8_warmup_s"] > 0


def check_cpu_options_record(data: dict) -> None:
    """A cpu_options.py record: fp32 is the yardstick, every run ratio recomputes."""
    assert data["run_epochs"] > 0 and data["keep_at_run_ratio"] == 1.2
    for model in data["models"].values():
        variants = model["variants"]
        base = variants["fp32"]
        assert base["run_ratio"] == base["run_ratio_hw8"] == base["ratio_paired_median"] == 1.0
        hw8_epochs = data["run_epochs"] * data["hw8_train_images"] / model["n_images"]
        for entry in variants.values():
            assert len(entry["epoch_s_runs"]) == data["repeats"]
            assert entry["epoch_s"] == pytest.approx(np.median(entry["epoch_s_runs"]), abs=1e-3)
            for key, epochs in (("run_ratio", data["run_epochs"]), ("run_ratio_hw8", hw8_epochs)):
                base_run = base["warmup_s"] + epochs * base["epoch_s"]
                run = entry["warmup_s"] + epochs * entry["epoch_s"]
                assert entry[key] == pytest.approx(base_run / run, abs=0.02), key
            paired = [
                b / t for b, t in zip(base["epoch_s_runs"], entry["epoch_s_runs"], strict=True)
            ]
            assert entry["ratio_paired_median"] == pytest.approx(np.median(paired), abs=0.02)


def test_cpu_options_script_writes_the_documented_json(tmp_path):
    out = tmp_path / "cpu_options.json"
    result = run_script(
        "benchmarks/cpu_options.py", "--n", "16", "--models", "fcn", "cnn",
        "--variants", "channels_last", "bf16", "--repeats", "2", "--run-epochs", "3",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    check_cpu_options_record(data)
    expected = {"fp32", "bf16"} if data["native_bf16"] else {"fp32"}
    assert set(data["models"]["fcn"]["variants"]) == expected  # channels-last: convs only
    assert set(data["models"]["cnn"]["variants"]) == expected | {"channels_last"}
    assert data["native_bf16"] == any(data["cpu_bfloat16_features"].values())


@pytest.mark.slow  # compiles twice: in the timing process and cold in a fresh one
def test_cpu_options_takes_compile_times_cold_in_a_fresh_process(tmp_path):
    out = tmp_path / "cpu_options.json"
    result = run_script(
        "benchmarks/cpu_options.py", "--n", "8", "--models", "fcn", "--variants", "compile",
        "--repeats", "1", "--run-epochs", "1", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    check_cpu_options_record(data)
    compiled = data["models"]["fcn"]["variants"]["compile"]
    assert compiled["warmup_s"] != compiled["warmup_in_process_s"]  # measured apart
    assert compiled["warmup_s"] > data["models"]["fcn"]["variants"]["fp32"]["warmup_s"]


def test_the_recorded_cpu_options_agree_with_themselves():
    data = json.loads((ROOT / "benchmarks" / "results" / "cpu_options.json").read_text())
    check_cpu_options_record(data)
    assert data["compile_cache"].startswith("cold")
    assert set(data["models"]) == {"fcn", "cnn", "vae", "wide_fcn"}


@pytest.mark.slow
def test_quality_quick_mode_ranks_the_house_recipe_first(tmp_path):
    out = tmp_path / "quality.json"
    result = run_script("benchmarks/quality.py", "--quick", "--threads", "1", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    methods = json.loads(out.read_text())["methods"]
    assert {"pca", "sample_vae", "recipe"} <= set(methods)
    for entry in methods.values():
        assert entry["per_class"] and all(0.0 <= v <= 1.0 for v in entry["per_class"].values())
        assert entry["mean"] == pytest.approx(np.mean(list(entry["per_class"].values())))
    assert methods["recipe"]["mean"] > max(methods["pca"]["mean"], methods["sample_vae"]["mean"])
    figure = plot_results.plot_quality({"methods": methods}, tmp_path / "quality.png")
    assert figure.axes


@pytest.mark.slow
def test_quality_validation_protocol_records_each_class_choice(tmp_path):
    """``--protocol validation --quick``: a chosen setting and its validation AUC per
    class, from the declared grid, and test AUCs reported once per class."""
    out = tmp_path / "validation.json"
    result = run_script(
        "benchmarks/quality.py", "--protocol", "validation", "--quick", "--threads", "1",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["protocol_name"] == "validation" and set(data["methods"]) == {"recipe"}
    selection = data["selection"]
    classes = {str(c) for c in (0, 2, 8)}
    assert set(selection["per_class"]) == classes == set(data["methods"]["recipe"]["per_class"])
    grid = selection["grid"]
    for picked in selection["per_class"].values():
        assert picked["chosen"]["train"] in grid["train"]
        assert picked["chosen"]["score"] in grid["score"]
        assert len(picked["grid_aucs"]) == grid["size"]
        assert picked["validation_auc"] == max(picked["grid_aucs"])
    assert data["methods"]["recipe"]["mean"] > 0.85
    errors = data["methods"]["recipe"]["standard_error_per_class"]
    assert set(errors) == classes and all(0 < se < 0.1 for se in errors.values())
    expected = (sum(se**2 for se in errors.values()) ** 0.5) / len(errors)
    assert data["methods"]["recipe"]["standard_error_of_mean"] == pytest.approx(expected)
