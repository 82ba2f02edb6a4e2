"""Does bfloat16 training (``amp``) cost detection quality? fp32 and bf16, same seeds.

benchmarks/cpu_options.py shows ``amp`` speeds up the conv models on a CPU with native
bfloat16; this script checks what it does to the result. For each model (the sample cnn
and vae) and each seed, the model is trained twice on the same one-class task, once in
float32 and once with ``amp=True``, from the same initial weights and batch order, and
scored by reconstruction error on the task's test set. The task: Fashion-MNIST (the
Debian package's files) with one normal class, put into the HW8 format (64 x 64 x 3, as
``hw8 data export-hw8`` writes it), the sample's training settings for that format.

Per model: the test AUC of every run, the mean over seeds of each precision, and the
mean paired difference (bf16 - fp32) with the spread over seeds; the training-seed
spread of fp32 itself is printed beside it for scale.

    PYTHONPATH=. python3 benchmarks/amp_quality.py --json benchmarks/results/amp_quality_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hw8 import anomaly, datasets, train  # noqa: E402
from hw8.datasets import AnomalyTask, to_hw8_format  # noqa: E402
from hw8.device import native_bfloat16, seed_everything  # noqa: E402
from hw8.models import build_model  # noqa: E402
from hw8.settings import HW8_IMAGE_SHAPE, SAMPLE  # noqa: E402


def hw8_format_task(normal_class: int) -> AnomalyTask:
    """Fashion-MNIST with one normal class, images upscaled to the HW8 format."""
    task = datasets.load_task("fashion-mnist", normal_classes=(normal_class,))
    return AnomalyTask(
        name=f"fashion-mnist class {normal_class}, HW8 format",
        train_images=to_hw8_format(task.train_images),
        test_images=to_hw8_format(task.test_images),
        test_labels=task.test_labels,
    )


def one_run(task: AnomalyTask, model_name: str, seed: int, amp: bool) -> dict:
    """Train from ``seed`` in one precision; the test AUC and the seconds it took."""
    seed_everything(seed)
    model = build_model(model_name, (HW8_IMAGE_SHAPE[2], *HW8_IMAGE_SHAPE[:2]))
    start = time.perf_counter()
    losses = train.train(model, task.train_images, device="cpu", seed=seed, amp=amp, progress=False)
    seconds = time.perf_counter() - start
    scores = anomaly.reconstruction_scores(model, task.test_images, device="cpu")
    return {
        "auc": round(anomaly.roc_auc(task.test_labels, scores), 4),
        "final_loss": round(losses[-1], 5),
        "train_s": round(seconds, 1),
    }


def compare(task: AnomalyTask, model_name: str, seeds: list[int]) -> dict:
    """Both precisions for every seed, and their paired difference."""
    runs = {
        precision: [one_run(task, model_name, seed, precision == "bf16") for seed in seeds]
        for precision in ("fp32", "bf16")
    }
    fp32 = np.array([r["auc"] for r in runs["fp32"]])
    bf16 = np.array([r["auc"] for r in runs["bf16"]])
    return {
        "runs": runs,
        "fp32_mean_auc": round(float(fp32.mean()), 4),
        "bf16_mean_auc": round(float(bf16.mean()), 4),
        "fp32_seed_sd": round(float(fp32.std(ddof=1)), 4),
        "paired_difference_mean": round(float((bf16 - fp32).mean()), 4),
        "paired_difference_sd": round(float((bf16 - fp32).std(ddof=1)), 4),
        "fp32_train_s_mean": round(float(np.mean([r["train_s"] for r in runs["fp32"]])), 1),
        "bf16_train_s_mean": round(float(np.mean([r["train_s"] for r in runs["bf16"]])), 1),
    }


def main(argv=None) -> int:
    """Run the comparison and write the JSON file if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "vae"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--normal-class", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error("give at least two --seeds: the spread over seeds is the yardstick")
    if not native_bfloat16(torch.device("cpu")):
        raise SystemExit(
            "this CPU has no native bfloat16: amp would be ignored, nothing to compare"
        )
    task = hw8_format_task(args.normal_class)
    results = {
        "task": task.name,
        "training": f"the sample's: {SAMPLE.epochs} epochs, batch {SAMPLE.batch_size}",
        "seeds": args.seeds,
        "models": {},
    }
    for name in args.models:
        entry = compare(task, name, args.seeds)
        results["models"][name] = entry
        print(
            f"{name}: AUC fp32 {entry['fp32_mean_auc']:.4f} (seed sd {entry['fp32_seed_sd']:.4f}),"
            f" bf16 {entry['bf16_mean_auc']:.4f};"
            f" bf16 - fp32 {entry['paired_difference_mean']:+.4f}"
            f" (sd {entry['paired_difference_sd']:.4f}); train {entry['fp32_train_s_mean']} s"
            f" vs {entry['bf16_train_s_mean']} s",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
