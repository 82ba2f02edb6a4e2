"""The ``hw8`` command: train, predict, the house recipe, and data export.

hw8 train --model cnn --data bundled --out runs/cnn
hw8 predict --checkpoint runs/cnn/checkpoint.pt --data bundled --out prediction.csv
hw8 recipe --out runs/recipe
hw8 data export-hw8 DIR
hw8 validate NOTEBOOK            (students: run a notebook's tests without nbgrader)
hw8 course check                 (instructors: lint the source notebooks)
hw8 course grade hw8             (instructors: autograde every submission, in parallel)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hw8.errors import UsageError, UserError
from hw8.files import write_json
from hw8.settings import (
    CELL_TIMEOUT_S,
    DATASET_NAMES,
    DISK_LIMIT_GIB,
    SAMPLE_LR,
    SAMPLE_SEED,
    SCORE_METRICS,
    SUBMISSION_TIMEOUT_S,
    training_preset,
)

if TYPE_CHECKING:
    import numpy as np

    from hw8.datasets import AnomalyTask

# Each command imports what it needs (torch, scikit-learn and matplotlib take seconds to
# import), so that `hw8 validate` and the instructor commands start at once.

# `hw8 course grade --memory-limit`: what a job's processes get without it (the README
# quotes this line; hw8.course.job.memory_share computes it)
MEMORY_LIMIT_DEFAULT = "the machine's memory times --threads over its number of cores"


# ----------------------------------------------------------------------------- helpers


def writable_folder(path: Path) -> Path:
    """Create ``path`` if needed and check that files can be written into it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UsageError(
            f"{path}: cannot write into this output folder ({error.strerror or error}). "
            "Choose another --out."
        ) from error
    return path


def positive(kind):
    """An argparse type: a number of ``kind`` (int or float) greater than 0."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__} > 0, found {text!r}")
        return value

    return parse


def load_task_from_args(args) -> AnomalyTask:
    """The task named by ``--data``, ``--data-dir`` and ``--normal-class``."""
    from hw8 import datasets

    return datasets.load_task(args.data, args.data_dir, tuple(args.normal_class))


def score_summary(task, scores: np.ndarray) -> dict:
    """AUC (when the labels are known) and the number of scored images."""
    from hw8 import anomaly

    summary = {"images": len(scores)}
    if task.test_labels is not None:
        summary["auc"] = anomaly.roc_auc(task.test_labels, scores)
    return summary


# ----------------------------------------------------------------------------- commands


def command_train(args) -> int:
    """Train one model, then write checkpoint, scores, metrics and figures to ``--out``."""
    from hw8 import anomaly, train
    from hw8.device import native_bfloat16, resolve_device, seed_everything
    from hw8.models import MODEL_NAMES, build_model

    if args.model not in MODEL_NAMES:
        raise UsageError(f"unknown model {args.model!r}; choose one of {', '.join(MODEL_NAMES)}.")
    out = writable_folder(args.out)
    task = load_task_from_args(args)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    model = build_model(args.model, task.image_shape)
    preset = training_preset(args.data)
    epochs = args.epochs or preset.epochs
    started = time.perf_counter()
    losses = train.train(
        model,
        task.train_images,
        epochs=epochs,
        batch_size=args.batch_size or preset.batch_size,
        lr=args.lr,
        device=device,
        seed=args.seed,
        checkpoint=out / "checkpoint.pt",
        resume=args.resume,
        amp=args.amp,
        compile_loss=args.compile,
    )
    scores = anomaly.reconstruction_scores(
        model, task.test_images, metric=args.metric, device=device
    )
    anomaly.write_submission(scores, out / "prediction.csv", expected_rows=len(task.test_images))
    metrics = {
        "model": args.model,
        "data": task.name,
        "device": str(device),
        "epochs": epochs,
        "amp": args.amp and native_bfloat16(device),
        "compile": args.compile,
        "final_loss": losses[-1],
        "seconds": round(time.perf_counter() - started, 2),
        **score_summary(task, scores),
    }
    write_json(metrics, out / "metrics.json")
    write_figures(out, task, model, losses, scores, device)
    print(json.dumps(metrics, indent=2))
    return 0


def write_figures(out: Path, task, model, losses, scores, device) -> None:
    """Loss curve, reconstructions and, with labels, ROC curve and score histograms."""
    from hw8 import datasets, plots

    plots.plot_loss_curve(losses, out / "loss.png")
    sample = task.test_images[:8]
    batch = datasets.normalize(datasets.to_device(sample, device))
    plots.plot_reconstructions(sample, model.reconstruct(batch), out / "reconstructions.png")
    if task.test_labels is not None:
        plots.plot_roc(task.test_labels, {model.name: scores}, out / "roc.png")
        plots.plot_score_histograms(task.test_labels, scores, out / "histogram.png")
    plots.plt.close("all")


def command_predict(args) -> int:
    """Score a test set with a saved checkpoint and write the submission CSV."""
    from hw8 import anomaly, train

    model = train.load_model(args.checkpoint, args.device)
    task = load_task_from_args(args)
    if tuple(model.image_shape) != task.image_shape:
        raise train.CheckpointError(
            f"{args.checkpoint}: the model was trained on images {tuple(model.image_shape)}, "
            f"but --data {args.data} has images {task.image_shape}. Use matching data."
        )
    if args.out.parent != Path(""):
        writable_folder(args.out.parent)
    scores = anomaly.reconstruction_scores(
        model, task.test_images, metric=args.metric, device=args.device
    )
    anomaly.write_submission(scores, args.out, expected_rows=len(task.test_images))
    print(json.dumps({"written": str(args.out), **score_summary(task, scores)}, indent=2))
    return 0


def command_recipe(args) -> int:
    """Train the sample models and the house recipe; print one table of their AUCs."""
    import torch

    from hw8 import anomaly, house_recipe, train
    from hw8.device import resolve_device, seed_everything
    from hw8.models import SAMPLE_MODEL_NAMES, build_model
    from hw8.runmode import scaled_epochs

    out = writable_folder(args.out)
    task = load_task_from_args(args)
    if task.test_labels is None:
        raise UsageError(f"{args.data}: the recipe's table needs test labels; this set has none.")
    device = resolve_device(args.device)
    started = time.perf_counter()
    results = {}
    preset = training_preset(args.data)
    for name in SAMPLE_MODEL_NAMES:
        seed_everything(args.seed)
        model = build_model(name, task.image_shape)
        train.train(
            model,
            task.train_images,
            epochs=scaled_epochs(preset.epochs),
            batch_size=preset.batch_size,
            device=device,
            seed=args.seed,
            progress=not args.quiet,
        )
        scores = anomaly.reconstruction_scores(model, task.test_images, device=device)
        results[f"sample {name}"] = anomaly.roc_auc(task.test_labels, scores)
    recipe_scores = house_recipe.recipe_scores(
        task, device=device, seed=args.seed, progress=not args.quiet
    )
    results["house recipe"] = anomaly.roc_auc(task.test_labels, recipe_scores)
    anomaly.write_submission(recipe_scores, out / "prediction.csv", len(task.test_images))
    seconds = time.perf_counter() - started
    best = max(v for k, v in results.items() if k.startswith("sample"))
    summary = {"data": task.name, "device": str(device), "seconds": round(seconds, 1)}
    if device.type == "cpu":
        summary["cpu_threads"] = torch.get_num_threads()
    write_json(
        {**summary, "auc": results, "margin": results["house recipe"] - best}, out / "metrics.json"
    )
    print(format_table(results, best, task, seconds, out, summary))
    return 0


def format_table(
    results: dict, best_sample: float, task, seconds: float, out: Path, summary: dict
) -> str:
    """The recipe command's table (one row per method, then the margin) and one paragraph
    that says what the numbers mean, what the house recipe does, where the files are and
    how long it took."""
    lines = [f"{'method':<16}{'ROC AUC':>9}", "-" * 25]
    lines += [f"{name:<16}{auc:>9.4f}" for name, auc in results.items()]
    lines += [
        "-" * 25,
        f"{'margin':<16}{results['house recipe'] - best_sample:>+9.4f}  (recipe - best sample)",
        "",
    ]
    anomalies = (
        "" if task.test_labels is None else f", {int(task.test_labels.sum())} of them anomalies"
    )
    where = summary["device"]
    if "cpu_threads" in summary:
        threads = summary["cpu_threads"]
        where += f" with {threads} thread{'s' if threads > 1 else ''}"
    paragraph = (
        "ROC AUC is the chance that a random anomaly scores higher than a random normal "
        "image: 1.0 ranks every anomaly above every normal image, 0.5 is guessing. Every "
        "method trains on normal images only. The sample models are the course's fcn, cnn "
        "and vae, which score an image by how badly they rebuild it; the house recipe "
        "(hw8/house_recipe.py) trains a dense and a "
        "convolutional autoencoder and averages the ranks of three scores: a "
        "reconstruction error scaled by each pixel's spread on the training images, and "
        "two distances from an image's code to its nearest training codes. "
        f"Task: {task.name}, {len(task.train_images)} normal training images, "
        f"{len(task.test_images)} test images{anomalies}. Files in {out}/: prediction.csv "
        "(the house recipe's score per test image, the Kaggle format ID,score) and "
        f"metrics.json (these numbers). {seconds:.0f} s in all on {where}."
    )
    wrapped = textwrap.wrap(paragraph, width=88, break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines + wrapped)


def command_export(args) -> int:
    """Write a task in the HW8 file format (with a labels file)."""
    import numpy as np

    from hw8 import datasets

    task = load_task_from_args(args)
    paths = datasets.export_hw8(task, args.dir)
    for path in paths:
        print(f"wrote {path} {np.load(path, mmap_mode='r').shape}")
    return 0


def command_validate(args) -> int:
    """Run each notebook's visible tests; exit 1 when any test cell fails."""
    from hw8.checks import validate

    passed = [validate.validate(path, args.timeout) for path in args.notebooks]
    return 0 if all(passed) else 1


def command_course_check(args) -> int:
    """Lint the source notebooks; with --record-release, add their ids to the released list."""
    from hw8.course import lint

    problems = lint.check_course(args.source, args.released)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {args.source}.", file=sys.stderr)
        return 1
    print(f"{args.source}: every notebook passes the lint.")
    if args.record_release:
        added = lint.record_release(args.source, args.released)
        print(f"{args.released}: {added} new id(s) recorded as released.")
    return 0


def command_course_grade(args) -> int:
    """Autograde every submission of an assignment in parallel, each in a sandbox."""
    from hw8.course import autograde

    options = autograde.GradeOptions(
        workers=args.workers,
        scheduler=args.scheduler,
        threads=args.threads,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        memory_limit=args.memory_limit,
        disk_limit=args.disk_limit,
        sandbox="none" if args.no_sandbox else args.sandbox,
        image=args.image or "",
        force=args.force,
    )
    return autograde.grade(args.course, args.assignment, options)


# ----------------------------------------------------------------------------- parser


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data, --data-dir, --normal-class, --seed."""
    parser.add_argument("--data", choices=DATASET_NAMES, default="bundled")
    parser.add_argument("--data-dir", type=Path, help="folder of the data files")
    parser.add_argument(
        "--normal-class",
        type=int,
        nargs="+",
        default=[0],
        help="Fashion-MNIST class number(s) 0-9 treated as normal (default 0)",
    )
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hw8`` command."""
    parser = argparse.ArgumentParser(prog="hw8", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train one model and score the test set")
    p.add_argument("--model", default="cnn", help="a model of hw8.models (a wrong name lists them)")
    add_data_options(p)
    p.add_argument("--epochs", type=positive(int))
    p.add_argument("--batch-size", type=positive(int))
    p.add_argument("--lr", type=positive(float), default=SAMPLE_LR)
    p.add_argument("--device", help="cpu, cuda or mps (default: best available, or $HW8_DEVICE)")
    p.add_argument("--metric", choices=SCORE_METRICS, default="l2")
    p.add_argument(
        "--amp",
        action="store_true",
        help="bfloat16 autocast where the device has it in hardware (NVIDIA GPUs from Ampere "
        "on; CPUs with AVX512-BF16 or AMX); which models gain: benchmarks/RESULTS.md",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile the model's loss with torch.compile (needs a C++ compiler; "
        "costs seconds at the start, pays off over long runs)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/train"))
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.set_defaults(run=command_train)

    p = commands.add_parser("predict", help="score a test set with a checkpoint")
    p.add_argument("--checkpoint", type=Path, required=True)
    add_data_options(p)
    p.add_argument("--device")
    p.add_argument("--metric", choices=SCORE_METRICS, default="l2")
    p.add_argument("--out", type=Path, default=Path("prediction.csv"))
    p.set_defaults(run=command_predict)

    p = commands.add_parser("recipe", help="sample models vs the house recipe, one table")
    add_data_options(p)
    p.add_argument("--device")
    p.add_argument("--out", type=Path, default=Path("runs/recipe"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=command_recipe)

    p = commands.add_parser("data", help="data utilities")
    data_commands = p.add_subparsers(dest="data_command", required=True)
    e = data_commands.add_parser("export-hw8", help="write a task in the HW8 .npy format")
    e.add_argument("dir", type=Path)
    add_data_options(e)
    e.set_defaults(run=command_export)

    p = commands.add_parser("validate", help="run a homework notebook's tests (no nbgrader)")
    p.add_argument("notebooks", type=Path, nargs="+", metavar="NOTEBOOK")
    p.add_argument(
        "--timeout",
        type=positive(int),
        default=CELL_TIMEOUT_S,
        help=f"seconds per cell ({CELL_TIMEOUT_S})",
    )
    p.set_defaults(run=command_validate)

    p = commands.add_parser("course", help="instructor tools (install hw8[course])")
    course_commands = p.add_subparsers(dest="course_command", required=True)
    c = course_commands.add_parser("check", help="lint the source notebooks before a release")
    c.add_argument("--source", type=Path, default=Path("notebooks/hw8"))
    c.add_argument("--released", type=Path, default=Path("notebooks/released_ids.json"))
    c.add_argument(
        "--record-release",
        action="store_true",
        help="after a clean check, add the notebooks' ids to the released list",
    )
    c.set_defaults(run=command_course_check)
    g = course_commands.add_parser(
        "grade", help="autograde every submission of an assignment in parallel, sandboxed"
    )
    g.add_argument("assignment", help="the nbgrader assignment, e.g. hw8")
    g.add_argument("--course", type=Path, default=Path("."), help="folder of nbgrader_config.py")
    g.add_argument("--workers", type=positive(int), help="local worker processes (default: cores)")
    g.add_argument("--scheduler", help="grade on a Dask cluster instead, e.g. tcp://HOST:8786")
    g.add_argument(
        "--threads", type=positive(int), help="CPU threads per kernel (default: cores/workers)"
    )
    g.add_argument(
        "--timeout",
        type=positive(float),
        default=SUBMISSION_TIMEOUT_S,
        help=f"seconds per submission ({SUBMISSION_TIMEOUT_S})",
    )
    g.add_argument("--cell-timeout", type=positive(int), help="seconds per cell (nbgrader's)")
    g.add_argument(
        "--memory-limit",
        type=positive(float),
        help=f"GiB per process (default: {MEMORY_LIMIT_DEFAULT})",
    )
    g.add_argument(
        "--disk-limit",
        type=positive(float),
        default=DISK_LIMIT_GIB,
        help=f"GiB a job's sandboxed processes may each write (default: {DISK_LIMIT_GIB:g})",
    )
    g.add_argument("--sandbox", choices=("bwrap", "docker"), default="bwrap")
    g.add_argument("--image", help="the container image for --sandbox docker")
    g.add_argument("--no-sandbox", action="store_true", help="grade unconfined (not advised)")
    g.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    g.set_defaults(run=command_course_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, and turn known errors into one clear line."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as error:  # the input is wrong: one line; anything else is a bug
        print(f"hw8 {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hw8 {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
