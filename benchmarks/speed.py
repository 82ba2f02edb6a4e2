"""Speed: the package's training loop against the course sample's pipeline.

Both train the same models on the same random uint8 images of the HW8 training-set
shape (N x 64 x 64 x 3): 100,000 images on a GPU (the real HW8 size), fewer on a CPU.
For each model, both pipelines are built and warmed up on a few batches, then each times
``--repeats`` epochs (default 5 on a CPU, 3 elsewhere), interleaved: sample then hw8 on
even repeats, hw8 then sample on odd ones, so a change of the machine's load during the
run hits both. The script prints, per model, the median seconds per epoch of each
pipeline with its min-max, the ratio of the medians (sample / hw8), the min-max of the
per-repeat ratios and the load average before and after; the JSON keeps every run.
``sample_s``, ``hw8_s`` and ``ratio`` keep their old meaning for one-run records (the
median of one value is that value), so older JSON files read the same way.

* sample: benchmarks/sample_pipeline.py (per-image transforms in a Dataset, DataLoader
  with RandomSampler, ``.float().to(device)`` per batch, ``loss.item()`` every step).
* hw8: ``hw8.train``'s epoch function on images moved to the device once (the one-time
  move is timed separately as ``hw8_setup_s``; ``hw8.train.train`` does it once per run).

Models: the sample fcn, cnn and vae at batch 2000, and a wide FCN
(12288-4096-2048-1024-256-128, mirrored; BatchNorm + PReLU) at batch 128.

    PYTHONPATH=. python3 benchmarks/speed.py --device cuda --json speed_cuda.json
    PYTHONPATH=. python3 benchmarks/speed.py --device cpu --json benchmarks/results/speed_cpu.json
    PYTHONPATH=. python3 benchmarks/speed.py --device cpu --main-job --notebooks  # + end to end
    PYTHONPATH=. python3 benchmarks/speed.py --device cpu --amp --compile \
        --json benchmarks/results/speed_cpu_amp_compile.json  # hw8 with both CPU switches

Only torch, numpy and tqdm are needed for the model timings; ``--main-job`` runs the
README's main-job command (``hw8 recipe``) and ``--notebooks`` executes every source
notebook with nbclient (imported only then), both on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import sample_pipeline  # noqa: E402

import hw8  # noqa: E402
from hw8.datasets import iterate_batches, to_device  # noqa: E402
from hw8.device import native_bfloat16  # noqa: E402
from hw8.models import Autoencoder, WideFCN, build_model  # noqa: E402
from hw8.settings import SAMPLE_BATCH_SIZE, SAMPLE_LR, SAMPLE_SEED  # noqa: E402
from hw8.train import make_optimizer, train_epoch  # noqa: E402

HW8_TRAIN_SHAPE = (64, 64, 3)
MODEL_BATCH = {
    "fcn": SAMPLE_BATCH_SIZE,
    "cnn": SAMPLE_BATCH_SIZE,
    "vae": SAMPLE_BATCH_SIZE,
    "wide_fcn": 128,
}
DEFAULT_N = {"cuda": 100_000, "mps": 20_000, "cpu": 2_000}
DEFAULT_N_WIDE_CPU = 256  # the wide FCN is ~120M parameters: a few steps say enough on a CPU
DEFAULT_REPEATS = {"cpu": 5}  # timed epochs per pipeline and model; 3 elsewhere
WARMUP_BATCHES = 3
WIDE_FCN_WIDTHS = (4096, 2048, 1024, 256, 128)


def make_model(name: str) -> Autoencoder:
    """A fresh model by benchmark name, seeded so both pipelines start equal."""
    torch.manual_seed(SAMPLE_SEED)
    if name == "wide_fcn":  # the wide FCN students used: 12288-4096-2048-1024-256-128, mirrored
        return WideFCN((3, 64, 64), widths=WIDE_FCN_WIDTHS[:-1], latent=WIDE_FCN_WIDTHS[-1])
    return build_model(name, (3, 64, 64))


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so the clock measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def sample_settings() -> None:
    """PyTorch's defaults, as the course sample runs: no TF32, no cuDNN autotuning.

    ``hw8.train.make_optimizer`` turns both on for CUDA, globally; reset them so the
    sample is timed as it runs on its own, whatever was timed before.
    """
    torch.backends.cudnn.benchmark = False
    torch.set_float32_matmul_precision("highest")


def hw8_settings(device: torch.device) -> None:
    """The global switches ``hw8.train.make_optimizer`` sets on ``device`` (CUDA: TF32,
    cuDNN autotuning), set again before each hw8 epoch since sample epochs reset them."""
    make_optimizer(torch.nn.Linear(1, 1).to(device), SAMPLE_LR, device)


class SampleRun:
    """The sample pipeline for one model: model, Adam and DataLoader, warmed up once."""

    def __init__(self, name: str, images: np.ndarray, device: torch.device):
        sample_settings()
        batch = MODEL_BATCH[name]
        self.device = device
        self.model = make_model(name).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=sample_pipeline.SAMPLE_LR)
        warm = sample_pipeline.make_dataloader(images[: WARMUP_BATCHES * batch], batch)
        sample_pipeline.train_epoch(self.model, warm, self.optimizer, device)
        self.loader = sample_pipeline.make_dataloader(images, batch)

    def epoch(self) -> tuple[float, float]:
        """Seconds and mean loss of one timed epoch."""
        sample_settings()
        synchronize(self.device)
        start = time.perf_counter()
        loss = sample_pipeline.train_epoch(self.model, self.loader, self.optimizer, self.device)
        synchronize(self.device)
        return time.perf_counter() - start, loss


class Hw8Run:
    """hw8.train's epoch for one model: the images moved to the device once (timed apart
    as ``setup_s``), then warmed up on a few batches (timed as ``warmup_s``: with
    ``compile`` it holds the compile time). ``amp`` and ``compile`` are hw8.train's
    switches; ``channels_last`` stores the weights channels-last (benchmarks/cpu_options.py).
    """

    def __init__(
        self,
        name: str,
        images: np.ndarray,
        device: torch.device,
        amp=False,
        compile=False,
        channels_last=False,
    ):
        self.batch = MODEL_BATCH[name]
        self.device = device
        self.model = make_model(name).to(device).train()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, SAMPLE_LR, device)
        self.use_amp = amp and native_bfloat16(device)
        self.loss_fn = torch.compile(self.model.loss) if compile else None
        self.generator = torch.Generator().manual_seed(SAMPLE_SEED)
        synchronize(device)
        start = time.perf_counter()
        self.data = to_device(images, device)
        synchronize(device)
        self.setup_s = time.perf_counter() - start
        warm = self.data[: WARMUP_BATCHES * self.batch]
        start = time.perf_counter()
        self.epoch_on(warm)
        synchronize(device)
        self.warmup_s = time.perf_counter() - start

    def epoch_on(self, data: torch.Tensor) -> float:
        """One pass of hw8's epoch over ``data``; returns the mean loss."""
        return train_epoch(
            self.model,
            self.optimizer,
            data,
            self.batch,
            self.generator,
            self.use_amp,
            loss_fn=self.loss_fn,
        )

    def epoch(self) -> tuple[float, float]:
        """Seconds and mean loss of one timed epoch."""
        hw8_settings(self.device)
        synchronize(self.device)
        start = time.perf_counter()
        loss = self.epoch_on(self.data)
        synchronize(self.device)
        return time.perf_counter() - start, loss


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and interquartile range of repeated timings."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {
        "median": float(median),
        "min": float(min(values)),
        "max": float(max(values)),
        "iqr": float(q3 - q1),
    }


def time_model(
    name: str, images: np.ndarray, device: torch.device, repeats: int, options: dict
) -> dict:
    """Time ``repeats`` epochs of each pipeline, interleaved, and summarise them.

    Both pipelines are built and warmed up once; then each repeat times one epoch of
    each, alternating which goes first, so a change in the machine's load during the
    run hits both alike. Each pipeline's model keeps training from epoch to epoch.
    """
    load_before = load_average()
    sample, ours = SampleRun(name, images, device), Hw8Run(name, images, device, **options)
    setup_s, warmup_s = ours.setup_s, ours.warmup_s
    sample_runs, hw8_runs = [], []
    sample_loss = hw8_loss = float("nan")
    for repeat in range(repeats):
        order = ("sample", "hw8") if repeat % 2 == 0 else ("hw8", "sample")
        for which in order:
            if which == "sample":
                seconds, sample_loss = sample.epoch()
                sample_runs.append(seconds)
            else:
                seconds, hw8_loss = ours.epoch()
                hw8_runs.append(seconds)
    del sample, ours  # free the models (and hw8's device copy) before the next model
    paired = [s / h for s, h in zip(sample_runs, hw8_runs, strict=True)]
    sample_stats, hw8_stats, ratio_stats = spread(sample_runs), spread(hw8_runs), spread(paired)
    count = len(images)
    return {
        "sample_s": round(sample_stats["median"], 6),
        "hw8_s": round(hw8_stats["median"], 6),
        "ratio": round(sample_stats["median"] / hw8_stats["median"], 2),
        "repeats": repeats,
        "sample_s_min": round(sample_stats["min"], 6),
        "sample_s_max": round(sample_stats["max"], 6),
        "sample_s_iqr": round(sample_stats["iqr"], 6),
        "hw8_s_min": round(hw8_stats["min"], 6),
        "hw8_s_max": round(hw8_stats["max"], 6),
        "hw8_s_iqr": round(hw8_stats["iqr"], 6),
        "ratio_paired_median": round(ratio_stats["median"], 2),
        "ratio_paired_min": round(ratio_stats["min"], 2),
        "ratio_paired_max": round(ratio_stats["max"], 2),
        "sample_s_runs": [round(s, 6) for s in sample_runs],
        "hw8_s_runs": [round(s, 6) for s in hw8_runs],
        "batch_size": MODEL_BATCH[name],
        "n_images": count,
        "sample_images_per_s": round(count / sample_stats["median"], 1),
        "hw8_images_per_s": round(count / hw8_stats["median"], 1),
        "hw8_setup_s": round(setup_s, 4),
        "hw8_warmup_s": round(warmup_s, 2),
        "sample_loss": round(sample_loss, 5),
        "hw8_loss": round(hw8_loss, 5),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def time_data_paths(images: np.ndarray, device: torch.device, batch: int) -> tuple[float, float]:
    """One pass of each pipeline's data path alone (no model): sample, then hw8.

    sample: the DataLoader with per-image transforms, then ``.float().to(device)``;
    hw8: shuffled batches cut and normalised on the device from the uint8 copy there.
    """
    loader = sample_pipeline.make_dataloader(images, batch)
    synchronize(device)
    start = time.perf_counter()
    for data in loader:
        data.float().to(device)
    synchronize(device)
    sample_s = time.perf_counter() - start
    resident = to_device(images, device)
    generator = torch.Generator().manual_seed(0)
    synchronize(device)
    start = time.perf_counter()
    for _batch in iterate_batches(resident, batch, shuffle=True, generator=generator):
        pass
    synchronize(device)
    return sample_s, time.perf_counter() - start


def time_command(command: list[str], env: dict | None = None) -> float:
    """Wall time of a command run to completion (raises if it fails)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def time_main_job() -> float:
    """The README's main job, ``hw8 recipe``, on the CPU, end to end (a fresh process)."""
    with tempfile.TemporaryDirectory() as out:
        code = "import sys; from hw8.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", code, "recipe", "--quiet", "--device", "cpu", "--out", out]
        return time_command(command, {"PYTHONPATH": str(ROOT), "HW8_DEVICE": "cpu"})


def time_notebooks() -> dict[str, float]:
    """Execute every source notebook top to bottom on the CPU; seconds per notebook."""
    import nbformat
    from nbclient import NotebookClient

    seconds = {}
    os.environ["HW8_DEVICE"] = "cpu"
    paths = [str(ROOT), os.environ.get("PYTHONPATH")]
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    for path in sorted((ROOT / "notebooks" / "hw8").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as workdir:
            resources = {"metadata": {"path": workdir}}
            client = NotebookClient(
                notebook, timeout=1800, kernel_name="python3", resources=resources
            )
            start = time.perf_counter()
            client.execute()
            seconds[path.name] = round(time.perf_counter() - start, 1)
        print(f"notebook {path.name}: {seconds[path.name]:.1f} s", flush=True)
    return seconds


def describe_device(device: torch.device) -> str:
    """A human name for the device: the GPU model, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def versions() -> dict[str, str]:
    """Versions that matter for the timings."""
    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "hw8": hw8.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        found["cuda"] = str(torch.version.cuda)
        found["cudnn"] = str(torch.backends.cudnn.version())
    return found


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on the machine skews CPU times)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


TIMING_NOTE = (
    "per model: both pipelines built and warmed up once, then `repeats` timed epochs of "
    "each, interleaved (the order alternates every repeat); sample_s and hw8_s are the "
    "medians, *_min/_max/_iqr their spread, ratio = median sample_s / median hw8_s, "
    "ratio_paired_* = statistics of the per-repeat ratios; load averages are 1/5/15 min"
)
TABLE_HEAD = (
    f"{'model':<10}{'batch':>6}{'sample s (min-max)':>22}{'hw8 s (min-max)':>22}"
    f"{'ratio':>8}{'paired ratios':>15}{'load 1 min':>12}"
)


def table_row(name: str, entry: dict) -> str:
    """One printed row: medians with their min-max, the ratio of the medians, load."""
    sample = f"{entry['sample_s']:.3f} ({entry['sample_s_min']:.3f}-{entry['sample_s_max']:.3f})"
    ours = f"{entry['hw8_s']:.3f} ({entry['hw8_s_min']:.3f}-{entry['hw8_s_max']:.3f})"
    paired = f"{entry['ratio_paired_min']:.2f}-{entry['ratio_paired_max']:.2f}"
    loads = [entry["load_average_before"], entry["load_average_after"]]
    load = "-".join(f"{x[0]:.1f}" for x in loads if x) or "?"
    return (
        f"{name:<10}{entry['batch_size']:>6}{sample:>22}{ours:>22}"
        f"{entry['ratio']:>7.2f}x{paired:>15}{load:>12}"
    )


def markdown_table(results: dict) -> str:
    """The RESULTS.md table of a recorded JSON file: medians, spread, ratios, load."""
    lines = [
        "| model | batch | images | sample s/epoch, median (min-max) "
        "| hw8 s/epoch, median (min-max) | ratio of medians | per-repeat ratios (median; min-max) "
        "| load 1 min before-after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, e in results["models"].items():
        if "sample_s_min" not in e:  # a one-run record (before --repeats)
            lines.append(
                f"| {name} | {e['batch_size']} | {e['n_images']} | {e['sample_s']:.3f} "
                f"| {e['hw8_s']:.3f} | {e['ratio']:.2f}x | one run | |"
            )
            continue
        loads = [e.get("load_average_before"), e.get("load_average_after")]
        lines.append(
            f"| {name} | {e['batch_size']} | {e['n_images']} "
            f"| {e['sample_s']:.3f} ({e['sample_s_min']:.3f}-{e['sample_s_max']:.3f}) "
            f"| {e['hw8_s']:.3f} ({e['hw8_s_min']:.3f}-{e['hw8_s_max']:.3f}) "
            f"| **{e['ratio']:.2f}x** | {e['ratio_paired_median']:.2f}x; "
            f"{e['ratio_paired_min']:.2f}-{e['ratio_paired_max']:.2f} "
            f"| {'-'.join(f'{x[0]:.1f}' for x in loads if x)} |"
        )
    return "\n".join(lines)


def run(args) -> dict:
    """Time every requested model on both pipelines; return the JSON-ready results."""
    device = torch.device(args.device)
    count = args.n or DEFAULT_N.get(device.type, 4000)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, *HW8_TRAIN_SHAPE), dtype=np.uint8)
    repeats = args.repeats or DEFAULT_REPEATS.get(device.type, 3)
    options = {"amp": args.amp, "compile": args.compile}
    results = {
        "device": describe_device(device),
        "versions": versions(),
        "n_images": count,
        "repeats": repeats,
        "timing": TIMING_NOTE,
        "hw8_options": options
        | {
            "bfloat16_used": args.amp and native_bfloat16(device),
            "compile_cache": "Inductor's cache as found" if args.compile else None,
        },
        "load_average_before": load_average(),
        "models": {},
    }
    print(
        f"{results['device']}; {count} images of shape {HW8_TRAIN_SHAPE}; "
        f"{repeats} timed epochs per pipeline, interleaved; load average "
        f"{results['load_average_before']}",
        flush=True,
    )
    print(TABLE_HEAD, flush=True)
    wide_count = args.n_wide or (count if device.type != "cpu" else min(count, DEFAULT_N_WIDE_CPU))
    for name in args.models:
        if name not in MODEL_BATCH:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODEL_BATCH)}")
        used = images[:wide_count] if name == "wide_fcn" else images
        entry = time_model(name, used, device, repeats, options)
        if name == "wide_fcn":
            entry["layers"] = "12288-" + "-".join(map(str, WIDE_FCN_WIDTHS)) + " mirrored"
        results["models"][name] = entry
        print(table_row(name, entry), flush=True)
    data_sample_s, data_hw8_s = time_data_paths(images, device, MODEL_BATCH["cnn"])
    results["data_path_only"] = {
        "batch_size": MODEL_BATCH["cnn"],
        "sample_s": round(data_sample_s, 4),
        "hw8_s": round(data_hw8_s, 4),
        "note": "one pass over the images without a model: the cost of the input pipeline",
    }
    print(f"data path alone, one pass: sample {data_sample_s:.3f} s, hw8 {data_hw8_s:.4f} s")
    del images
    if args.main_job:
        results["main_job_s"] = round(time_main_job(), 1)
        print(f"main job (hw8 recipe, cpu): {results['main_job_s']:.1f} s", flush=True)
    if args.notebooks:
        per_notebook = time_notebooks()
        results["notebooks_s"] = per_notebook
        results["notebooks_total_s"] = round(sum(per_notebook.values()), 1)
        print(f"all notebooks (cpu): {results['notebooks_total_s']:.1f} s", flush=True)
    results["load_average_after"] = load_average()
    return results


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--n", type=int, help="number of images (default: 100000 on cuda, 2000 on cpu)"
    )
    parser.add_argument(
        "--n-wide", type=int, help="images for the wide FCN (default: --n; 256 on cpu)"
    )
    parser.add_argument(
        "--models", nargs="*", default=list(MODEL_BATCH), help="which models (none: skip)"
    )
    parser.add_argument(
        "--repeats", type=int, help="timed epochs per pipeline and model (default: cpu 5, else 3)"
    )
    parser.add_argument("--amp", action="store_true", help="hw8 trains with amp (bfloat16)")
    parser.add_argument("--compile", action="store_true", help="hw8 trains with torch.compile")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--main-job", action="store_true", help="also time `hw8 recipe` on cpu")
    parser.add_argument("--notebooks", action="store_true", help="also run all notebooks on cpu")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument(
        "--table", type=Path, help="print the Markdown table of this recorded JSON and exit"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the benchmark and write the JSON file if asked."""
    args = parse_args(argv)
    if args.table:
        results = json.loads(args.table.read_text())
        for key in ("device", "repeats", "load_average_before", "load_average_after"):
            print(f"{key}: {results.get(key)}")
        print(markdown_table(results))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for `hw8 recipe` and notebooks
    results = run(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
