"""Measure the offline leaderboard's stand-in thresholds on the bundled task.

    python benchmarks/calibrate_thresholds.py            # about 10 minutes on a 2-core CPU
    python benchmarks/calibrate_thresholds.py --device cuda

HW8's four baselines are the scores of reference solutions of rising strength. The
bundled task gets its own thresholds the same way: every level has a reference recipe,
run with three training seeds on the bundled task exactly as notebook 05 runs it
(``hw8.datasets.load_task("bundled")``, train on its normal images, score its test
split); the threshold is the lowest test ROC AUC of the three, rounded down to five
decimals, so that running the reference recipe passes its level.

- simple: the faithful sample VAE (the sample's settings: Adam 1e-3, batch 2000, 50 epochs);
- medium: the sample cnn, same settings;
- strong: a tuned model (the wide FCN with BatchNorm and PReLU, batch 100);
- boss:   the package's boss recipe (``hw8.boss.boss_scores``).

The sample fcn and random scores are measured too, for the record. Everything goes to
``hw8/data/thresholds.json``, the package data that ``hw8.leaderboard`` reads: there is
no copy to update by hand. Notebook 05 and the README quote the thresholds in their text;
tests/test_leaderboard.py fails until both show the new numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from hw8 import leaderboard
from hw8.anomaly import reconstruction_scores, roc_auc
from hw8.device import resolve_device, seed_everything
from hw8.files import write_json
from hw8.models import build_model
from hw8.settings import SAMPLE_SEED, sample_settings
from hw8.train import train

RESULTS = leaderboard.THRESHOLDS_FILE
SEEDS = (SAMPLE_SEED, 1, 2)
SAMPLE = sample_settings()
TUNED = {"epochs": 30, "batch_size": 100, "lr": 1e-3}


def trained_recipe(name: str, settings: dict):
    """Seed (initial weights included, as the sample's same_seeds), build, train, score."""

    def run(task, seed, device):
        seed_everything(seed)
        model = build_model(name, task.image_shape)
        train(model, task.train_images, seed=seed, device=device, progress=False, **settings)
        return reconstruction_scores(model, task.test_images, device=device)

    return run


def boss_recipe(task, seed, device):
    from hw8 import boss

    return boss.boss_scores(task, device=device, seed=seed, progress=False)


LEVELS = {
    "simple": (
        "the faithful sample vae (Adam 1e-3, batch 2000, 50 epochs)",
        trained_recipe("vae", SAMPLE),
    ),
    "medium": (
        "the sample cnn (Adam 1e-3, batch 2000, 50 epochs)",
        trained_recipe("cnn", SAMPLE),
    ),
    "strong": (
        "a tuned model: wide_fcn (BatchNorm + PReLU), Adam 1e-3, batch 100, 30 epochs",
        trained_recipe("wide_fcn", TUNED),
    ),
    "boss": ("the package's boss recipe (hw8.boss.boss_scores)", boss_recipe),
}
EXTRA = {
    "sample fcn": (
        "the sample fcn (Adam 1e-3, batch 2000, 50 epochs)",
        trained_recipe("fcn", SAMPLE),
    ),
    "tuned fcn": (
        "the sample fcn, tuned: Adam 1e-3, batch 100, 100 epochs",
        trained_recipe("fcn", {"epochs": 100, "batch_size": 100, "lr": 1e-3}),
    ),
}


def measure(recipe, task, device) -> tuple[list[float], list[float]]:
    aucs, seconds = [], []
    for seed in SEEDS:
        start = time.perf_counter()
        scores = recipe(task, seed, device)
        seconds.append(round(time.perf_counter() - start, 1))
        aucs.append(round(roc_auc(task.test_labels, scores), 6))
    return aucs, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*LEVELS, *EXTRA],
        help="re-measure only these entries and keep the others recorded in --out",
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    spec = leaderboard.BUNDLED_TASK
    task = leaderboard.bundled_task()
    record = {
        "task": {**spec, "normal_classes": list(spec["normal_classes"])},
        "train_images": len(task.train_images),
        "test_images": len(task.test_images),
        "test_anomalies": int(task.test_labels.sum()),
        "seeds": list(SEEDS),
        "rule": "threshold = lowest test AUC of the reference recipe over the seeds, "
        "rounded down to 5 decimals",
        "hw8_thresholds": leaderboard.HW8_THRESHOLDS,
        "levels": {},
        "extra": {},
    }
    if args.only:
        kept = json.loads(args.out.read_text())
        if kept["task"] != record["task"]:
            raise SystemExit(f"{args.out} was measured on another task: {kept['task']}")
        record["levels"], record["extra"] = kept["levels"], kept["extra"]
    for group, recipes in (("levels", LEVELS), ("extra", EXTRA)):
        for name, (description, recipe) in recipes.items():
            if args.only and name not in args.only:
                continue
            aucs, seconds = measure(recipe, task, device)
            record[group][name] = {"recipe": description, "aucs": aucs, "seconds": seconds}
            print(f"{name:10s} AUC {aucs}  ({sum(seconds):.0f} s)  {description}", flush=True)
    rng = np.random.default_rng(0)
    random_aucs = [roc_auc(task.test_labels, rng.random(len(task.test_labels))) for _ in range(200)]
    record["extra"]["random scores"] = {
        "recipe": "uniform random scores, 200 draws",
        "auc_mean": round(float(np.mean(random_aucs)), 4),
        "auc_sd": round(float(np.std(random_aucs)), 4),
        "auc_max": round(float(np.max(random_aucs)), 4),
    }
    record["thresholds"] = {
        level: math.floor(min(entry["aucs"]) * 1e5) / 1e5
        for level, entry in record["levels"].items()
    }
    values = list(record["thresholds"].values())
    if values != sorted(values):
        print(f"warning: the thresholds do not increase with the level: {record['thresholds']}")
    record["environment"] = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    write_json(record, args.out)
    print(json.dumps(record["thresholds"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
