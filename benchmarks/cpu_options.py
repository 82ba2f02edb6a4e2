"""CPU training options: which of PyTorch's CPU switches make hw8's training loop faster.

For each model (the sample fcn, cnn and vae at batch 2000, the wide FCN at batch 128,
as in benchmarks/speed.py), the same model from the same seed is trained by
``hw8.train.train_epoch`` on the same random uint8 images in each of these variants:

* ``fp32``: hw8 as it is (the batches are already channels-last, since the images are
  stored NHWC; the weights are not);
* ``channels_last``: the weights in channels-last memory format too (conv models only);
* ``bf16``: bfloat16 autocast on the CPU (where the CPU has native bfloat16: AMX or
  AVX512-BF16; elsewhere autocast emulates it and is skipped here);
* ``compile``: ``torch.compile`` of the model's loss (forward and backward, inductor);
* ``compile_bf16``: both.

Every variant is built and warmed up on a few batches first; the warm-up's seconds are
kept (for ``compile`` they are the compile time, cold: the script points Inductor's cache
at a fresh folder, as on a student's first run, unless ``--warm-cache``). Then
``--repeats`` epochs of every variant are timed, interleaved, the order rotating each
repeat, so a change of the machine's load hits all alike. Per variant: the median
seconds per epoch, the per-repeat ratios to ``fp32`` (median, min-max), the mean loss of
the last epoch next to fp32's (bfloat16 changes the numbers), and the ratio over a
student's run: ``--run-epochs`` epochs of these images (the sample's 50 by default),
one-time warm-up included,

    run ratio = (warm-up + E x epoch) of fp32 / (warm-up + E x epoch) of the variant.

A variant is worth keeping when its run ratio is at least 1.2 (the bar of issue 22).

    PYTHONPATH=. python3 benchmarks/cpu_options.py --json benchmarks/results/cpu_options.json

Run it on an idle machine: other work on the CPU skews the epochs it lands in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if "--warm-cache" not in sys.argv:  # before torch reads it: compile from scratch
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="hw8-inductor-")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from speed import (  # noqa: E402
    DEFAULT_N,
    DEFAULT_N_WIDE_CPU,
    HW8_TRAIN_SHAPE,
    MODEL_BATCH,
    WARMUP_BATCHES,
    describe_device,
    load_average,
    make_model,
    spread,
    versions,
)

from hw8.datasets import to_device  # noqa: E402
from hw8.settings import SAMPLE_EPOCHS, SAMPLE_LR, SAMPLE_SEED  # noqa: E402
from hw8.train import make_optimizer, train_epoch  # noqa: E402

CONV_MODELS = {"cnn", "vae"}
KEEP_AT = 1.2  # the run ratio a switch must reach to be worth its complexity (issue 22)


@dataclass(frozen=True)
class Variant:
    name: str
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False


VARIANTS = (
    Variant("fp32"),
    Variant("channels_last", channels_last=True),
    Variant("bf16", bf16=True),
    Variant("compile", compile=True),
    Variant("compile_bf16", bf16=True, compile=True),
)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's check: AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def applicable(variant: Variant, model_name: str) -> bool:
    """channels-last only matters for convolutions; bfloat16 only where it is native."""
    if variant.channels_last and model_name not in CONV_MODELS:
        return False
    return not (variant.bf16 and not native_bf16())


class VariantRun:
    """One model in one variant: built from the sample seed, warmed up, ready to time."""

    def __init__(self, name: str, variant: Variant, data: torch.Tensor):
        self.variant, self.batch, self.data = variant, MODEL_BATCH[name], data
        self.model = make_model(name).train()
        if variant.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, SAMPLE_LR, torch.device("cpu"))
        self.loss_fn = torch.compile(self.model.loss) if variant.compile else None
        self.generator = torch.Generator().manual_seed(SAMPLE_SEED)
        start = time.perf_counter()
        self.epoch_on(data[: WARMUP_BATCHES * self.batch])
        self.warmup_s = time.perf_counter() - start

    def epoch_on(self, data: torch.Tensor) -> float:
        """One pass of hw8's epoch over ``data``; returns the mean loss."""
        return train_epoch(
            self.model,
            self.optimizer,
            data,
            self.batch,
            self.generator,
            self.variant.bf16,
            loss_fn=self.loss_fn,
        )

    def epoch(self) -> tuple[float, float]:
        """Seconds and mean loss of one timed epoch."""
        start = time.perf_counter()
        loss = self.epoch_on(self.data)
        return time.perf_counter() - start, loss


def time_model(
    name: str, images: np.ndarray, repeats: int, run_epochs: int, chosen: list[str]
) -> dict:
    """Every applicable variant of one model, timed interleaved; summaries per variant."""
    data = to_device(images, "cpu")
    variants = [v for v in VARIANTS if applicable(v, name) and v.name in chosen]
    runs = {v.name: VariantRun(name, v, data) for v in variants}
    seconds = {v.name: [] for v in variants}
    losses = {}
    for repeat in range(repeats):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            spent, losses[variant.name] = runs[variant.name].epoch()
            seconds[variant.name].append(spent)
    base = seconds["fp32"]
    base_run = runs["fp32"].warmup_s + run_epochs * float(np.median(base))
    entry = {}
    for variant in variants:
        times, run = seconds[variant.name], runs[variant.name]
        paired = spread([b / t for b, t in zip(base, times, strict=True)])
        median = float(np.median(times))
        entry[variant.name] = {
            "epoch_s": round(median, 4),
            "epoch_s_runs": [round(t, 4) for t in times],
            "warmup_s": round(run.warmup_s, 2),
            "ratio_paired_median": round(paired["median"], 2),
            "ratio_paired_min": round(paired["min"], 2),
            "ratio_paired_max": round(paired["max"], 2),
            "run_ratio": round(base_run / (run.warmup_s + run_epochs * median), 2),
            "last_loss": round(losses[variant.name], 5),
        }
    return entry


def run(args) -> dict:
    """Time every requested model in every variant; return the JSON-ready results."""
    torch.manual_seed(0)
    count = args.n or DEFAULT_N["cpu"]
    images = np.random.default_rng(0).integers(
        0, 256, size=(count, *HW8_TRAIN_SHAPE), dtype=np.uint8
    )
    results = {
        "device": describe_device(torch.device("cpu")),
        "native_bf16": native_bf16(),
        "versions": versions(),
        "n_images": count,
        "repeats": args.repeats,
        "run_epochs": args.run_epochs,
        "keep_at_run_ratio": KEEP_AT,
        "compile_cache": "warm" if args.warm_cache else "cold (a fresh Inductor cache)",
        "load_average_before": load_average(),
        "models": {},
    }
    print(f"{results['device']}; native bfloat16: {results['native_bf16']}", flush=True)
    for name in args.models:
        used = images[: min(count, DEFAULT_N_WIDE_CPU)] if name == "wide_fcn" else images
        entry = time_model(name, used, args.repeats, args.run_epochs, ["fp32", *args.variants])
        results["models"][name] = {"batch_size": MODEL_BATCH[name], "n_images": len(used)}
        results["models"][name]["variants"] = entry
        for variant, e in entry.items():
            print(
                f"{name:<9}{variant:<14}{e['epoch_s']:>8.3f} s/epoch"
                f"  warm-up {e['warmup_s']:>6.1f} s"
                f"  paired {e['ratio_paired_median']:.2f}x ({e['ratio_paired_min']:.2f}-"
                f"{e['ratio_paired_max']:.2f})  run {e['run_ratio']:.2f}x  loss {e['last_loss']}",
                flush=True,
            )
    results["load_average_after"] = load_average()
    return results


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help=f"images (default {DEFAULT_N['cpu']})")
    parser.add_argument("--models", nargs="+", default=list(MODEL_BATCH), choices=MODEL_BATCH)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[v.name for v in VARIANTS[1:]],
        choices=[v.name for v in VARIANTS[1:]],
        help="variants to time beside fp32 (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per variant")
    parser.add_argument(
        "--run-epochs",
        type=int,
        default=SAMPLE_EPOCHS,
        help="epochs of a student's run, for the run ratio (default: the sample's)",
    )
    parser.add_argument(
        "--warm-cache", action="store_true", help="keep Inductor's cache (compile is warm)"
    )
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the benchmark and write the JSON file if asked."""
    args = parse_args(argv)
    results = run(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
