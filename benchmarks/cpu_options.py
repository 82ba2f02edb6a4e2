"""CPU training options: which of PyTorch's CPU switches make hw8's training loop faster.

For each model (the sample fcn, cnn and vae at batch 2000, the wide FCN at batch 128,
as in benchmarks/speed.py), the same model from the same seed is trained by speed.py's
hw8 pipeline (``hw8.train.train_epoch``) on the same random uint8 images in each of these
variants:

* ``fp32``: hw8 as it is (the batches are already channels-last, since the images are
  stored NHWC; the weights are not);
* ``channels_last``: the weights in channels-last memory format too (conv models only);
* ``bf16``: bfloat16 autocast on the CPU (where the CPU has native bfloat16, AVX512-BF16
  or AMX: ``hw8.device.native_bfloat16``; elsewhere autocast emulates it, skipped here);
* ``compile``: ``torch.compile`` of the model's loss (forward and backward, inductor);
* ``compile_bf16``: both.

Every variant is built and warmed up first on the first three batches (at the default
sizes that is one batch, the whole epoch: 2,000 images at batch 2,000, so every timed
epoch is one optimiser step; the wide FCN: two). The warm-up of a compiled variant is its
compile time, measured cold as a student's first run pays it: in a fresh Python process
with an empty Inductor cache (``--warm-cache``: in this process, as the cache is). Then
``--repeats`` epochs of every variant are timed, interleaved, the order rotating each
repeat, so a change of the machine's load hits all alike. Per variant: the median
seconds per epoch, the per-repeat ratios to ``fp32`` (median, min-max), the mean loss of
the last epoch next to fp32's (bfloat16 changes the numbers), and the ratio over a
student's run of ``--run-epochs`` epochs (the sample's 50 by default), one-time warm-up
included, at two sizes: these images (``run_ratio``) and the real HW8 training set,
100,000 images (``run_ratio_hw8``, epochs scaled by 100,000 / images),

    run ratio = (warm-up + E x epoch) of fp32 / (warm-up + E x epoch) of the variant.

A variant is worth keeping when its run ratio is at least 1.2 (the bar of issue 22).

    PYTHONPATH=. python3 benchmarks/cpu_options.py --json benchmarks/results/cpu_options.json

Run it on an idle machine: other work on the CPU skews the epochs it lands in.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from speed import (  # noqa: E402
    DEFAULT_N,
    DEFAULT_N_WIDE_CPU,
    HW8_TRAIN_SHAPE,
    MODEL_BATCH,
    Hw8Run,
    describe_device,
    load_average,
    spread,
    versions,
)

from hw8.device import native_bfloat16  # noqa: E402
from hw8.settings import SAMPLE_EPOCHS  # noqa: E402

CPU = torch.device("cpu")
CONV_MODELS = {"cnn", "vae"}
HW8_TRAIN_IMAGES = 100_000  # the real HW8 training set
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


def cpu_bfloat16_features() -> dict[str, bool]:
    """The CPU features behind ``native_bf16``, recorded with the results."""
    return {
        "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "amx_tile": bool(torch.cpu._is_amx_tile_supported()),
    }


def random_images(count: int) -> np.ndarray:
    """The benchmark's images: uniform random uint8 in the HW8 shape, seed 0."""
    shape = (count, *HW8_TRAIN_SHAPE)
    return np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)


def applicable(variant: Variant, model_name: str) -> bool:
    """channels-last only matters for convolutions; bfloat16 only where it is native."""
    if variant.channels_last and model_name not in CONV_MODELS:
        return False
    return not (variant.bf16 and not native_bfloat16(CPU))


def variant_run(name: str, variant: Variant, images: np.ndarray) -> Hw8Run:
    """speed.py's hw8 pipeline for one model in one variant, built and warmed up."""
    options = {"amp": variant.bf16, "compile": variant.compile}
    return Hw8Run(name, images, CPU, **options, channels_last=variant.channels_last)


def cold_warmup_seconds(name: str, variant: Variant, count: int) -> float:
    """The warm-up (compile) seconds of one variant in a fresh Python process with an
    empty Inductor cache, as on a student's first run."""
    with tempfile.TemporaryDirectory(prefix="hw8-inductor-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        command = [sys.executable, __file__, "--cold-warmup", name, variant.name, str(count)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["warmup_s"]


def time_model(
    name: str, images: np.ndarray, repeats: int, run_epochs: int, chosen: list[str], cold: bool
) -> dict:
    """Every applicable variant of one model, timed interleaved; summaries per variant."""
    variants = [v for v in VARIANTS if applicable(v, name) and v.name in chosen]
    runs = {v.name: variant_run(name, v, images) for v in variants}
    warmups = {v.name: runs[v.name].warmup_s for v in variants}
    if cold:
        for variant in (v for v in variants if v.compile):
            warmups[variant.name] = cold_warmup_seconds(name, variant, len(images))
    seconds = {v.name: [] for v in variants}
    losses = {}
    for repeat in range(repeats):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            spent, losses[variant.name] = runs[variant.name].epoch()
            seconds[variant.name].append(spent)
    base = seconds["fp32"]
    hw8_epochs = run_epochs * HW8_TRAIN_IMAGES / len(images)
    entry = {}
    for variant in variants:
        times = seconds[variant.name]
        paired = spread([b / t for b, t in zip(base, times, strict=True)])
        entry[variant.name] = {
            "epoch_s": round(float(np.median(times)), 4),
            "epoch_s_runs": [round(t, 4) for t in times],
            "warmup_s": round(warmups[variant.name], 2),
            "warmup_in_process_s": round(runs[variant.name].warmup_s, 2),
            "ratio_paired_median": round(paired["median"], 2),
            "ratio_paired_min": round(paired["min"], 2),
            "ratio_paired_max": round(paired["max"], 2),
            "last_loss": round(losses[variant.name], 5),
        }
    for variant in variants:
        for key, epochs in (("run_ratio", run_epochs), ("run_ratio_hw8", hw8_epochs)):
            entry[variant.name][key] = round(
                run_seconds(entry["fp32"], epochs) / run_seconds(entry[variant.name], epochs), 2
            )
    return entry


def run_seconds(entry: dict, epochs: float) -> float:
    """A run's seconds: the one-time warm-up and ``epochs`` median epochs."""
    return entry["warmup_s"] + epochs * entry["epoch_s"]


def run(args) -> dict:
    """Time every requested model in every variant; return the JSON-ready results."""
    torch.manual_seed(0)
    count = args.n or DEFAULT_N["cpu"]
    images = random_images(count)
    results = {
        "device": describe_device(torch.device("cpu")),
        "native_bf16": native_bfloat16(CPU),
        "cpu_bfloat16_features": cpu_bfloat16_features(),
        "versions": versions(),
        "n_images": count,
        "repeats": args.repeats,
        "run_epochs": args.run_epochs,
        "keep_at_run_ratio": KEEP_AT,
        "compile_cache": "warm (this process)"
        if args.warm_cache
        else "cold (a fresh process, an empty Inductor cache)",
        "hw8_train_images": HW8_TRAIN_IMAGES,
        "load_average_before": load_average(),
        "models": {},
    }
    print(f"{results['device']}; native bfloat16: {results['native_bf16']}", flush=True)
    for name in args.models:
        used = images[: min(count, DEFAULT_N_WIDE_CPU)] if name == "wide_fcn" else images
        chosen = ["fp32", *args.variants]
        entry = time_model(name, used, args.repeats, args.run_epochs, chosen, not args.warm_cache)
        results["models"][name] = {"batch_size": MODEL_BATCH[name], "n_images": len(used)}
        results["models"][name]["variants"] = entry
        for variant, e in entry.items():
            print(
                f"{name:<9}{variant:<14}{e['epoch_s']:>8.3f} s/epoch"
                f"  warm-up {e['warmup_s']:>6.1f} s"
                f"  paired {e['ratio_paired_median']:.2f}x ({e['ratio_paired_min']:.2f}-"
                f"{e['ratio_paired_max']:.2f})  run {e['run_ratio']:.2f}x"
                f"  HW8-size run {e['run_ratio_hw8']:.2f}x  loss {e['last_loss']}",
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
        "--warm-cache",
        action="store_true",
        help="take compile times in this process, with Inductor's cache as it is",
    )
    parser.add_argument(
        "--cold-warmup",
        nargs=3,
        metavar=("MODEL", "VARIANT", "IMAGES"),
        help=argparse.SUPPRESS,  # internal: one variant's warm-up in a fresh process
    )
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the benchmark and write the JSON file if asked."""
    args = parse_args(argv)
    if args.cold_warmup:
        name, variant_name, count = args.cold_warmup
        variant = next(v for v in VARIANTS if v.name == variant_name)
        built = variant_run(name, variant, random_images(int(count)))
        print(json.dumps({"warmup_s": built.warmup_s}))
        return 0
    results = run(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
