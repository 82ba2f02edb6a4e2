"""Draw the benchmark figures for the README from the recorded JSON results.

    PYTHONPATH=. python3 benchmarks/plot_results.py speed benchmarks/results/speed_*.json
    PYTHONPATH=. python3 benchmarks/plot_results.py quality benchmarks/results/quality_full.json

``speed`` draws one group of bars per model (seconds per epoch, sample vs hw8, log scale)
for every device file given, with the ratio written above each pair, to
assets/speed.png. ``quality`` draws the mean AUC of every method beside the published
means to assets/quality_fashion_mnist.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEED_FIGURE = ROOT / "assets" / "speed.png"
QUALITY_FIGURE = ROOT / "assets" / "quality_fashion_mnist.png"
MODEL_LABELS = {"fcn": "fcn", "cnn": "cnn", "vae": "vae", "wide_fcn": "wide FCN\n(batch 128)"}


def plot_speed(runs: list[dict], path: Path = SPEED_FIGURE):
    """Seconds per epoch, sample pipeline vs hw8, one panel per device; returns the Figure."""
    figure, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.8), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        names = list(run["models"])
        sample = [run["models"][n]["sample_s"] for n in names]
        ours = [run["models"][n]["hw8_s"] for n in names]
        xs = range(len(names))
        axis.bar([x - 0.2 for x in xs], sample, 0.4, label="course sample pipeline", color="#bbb")
        axis.bar([x + 0.2 for x in xs], ours, 0.4, label="hw8.train", color="#2a6fb0")
        for x, name in zip(xs, names, strict=True):
            top = max(sample[x], ours[x])
            axis.text(x, top * 1.15, f"{run['models'][name]['ratio']:.1f}x", ha="center")
        axis.set_yscale("log")
        axis.set_ylim(min(ours) / 2, max(sample) * 8)
        labels = [MODEL_LABELS.get(n, n) for n in names]
        for i, name in enumerate(names):
            count = run["models"][name].get("n_images", run["n_images"])
            if count != run["n_images"]:
                labels[i] += f"\n{count:,} images"
        axis.set_xticks(list(xs), labels, fontsize=8)
        axis.set_ylabel("seconds per epoch (log)")
        device = run["device"].split(",")[0]
        axis.set_title(f"{device}\n{run['n_images']:,} images 64x64x3", fontsize=9)
        axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return _save(figure, path)


def plot_quality(results: dict, path: Path = QUALITY_FIGURE):
    """Mean AUC per method, ours and published, on the one-class protocol; returns the Figure."""
    ours = {name: v["mean"] for name, v in results["methods"].items()}
    published = results.get("published_means", {})
    names = list(ours) + list(published)
    values = list(ours.values()) + list(published.values())
    colours = ["#2a6fb0" if n == "recipe" else "#7aa6d0" for n in ours] + ["#ccc"] * len(published)
    figure, axis = plt.subplots(figsize=(8, 3.8))
    bars = axis.bar(range(len(names)), values, color=colours)
    for bar, value in zip(bars, values, strict=True):
        axis.text(bar.get_x() + bar.get_width() / 2, value + 0.003, f"{value:.3f}", ha="center")
    axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
    low = min(values)
    axis.set_ylim(max(0.0, low - 0.05), 1.0)
    axis.set_ylabel("mean ROC AUC over classes")
    classes = len(next(iter(results["methods"].values()))["per_class"])
    axis.set_title(
        f"Fashion-MNIST one-class, {classes} classes (grey: published means)", fontsize=10
    )
    figure.tight_layout()
    return _save(figure, path)


def _save(figure, path):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    return figure


def main(argv=None) -> int:
    """Plot the figure named by the first argument from the JSON files that follow."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("speed", "quality"))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="PNG path (default: under assets/)")
    args = parser.parse_args(argv)
    loaded = [json.loads(f.read_text()) for f in args.files]
    if args.kind == "speed":
        plot_speed(loaded, args.out or SPEED_FIGURE)
    else:
        plot_quality(loaded[0], args.out or QUALITY_FIGURE)
    print(f"wrote {args.out or (SPEED_FIGURE if args.kind == 'speed' else QUALITY_FIGURE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
