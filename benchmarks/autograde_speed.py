"""Grading speed: ``nbgrader autograde`` one by one vs ``hw8 course grade --workers N``.

Builds a course from this repository's notebooks in a temporary folder
(``nbgrader generate_assignment hw8``), hands in ``--copies`` copies of the correct
submission (the source notebooks, as tests/course/test_round_trip.py's ``correct`` student), then
grades them twice, each in its own copy of the course: sequentially with ``nbgrader
autograde hw8`` and in parallel with ``hw8 course grade hw8 --workers N`` (sandboxed, its
default). Training is cut short (``HW8_QUICK=1``) unless ``--full``. Prints seconds per
submission, the speed-up and each parallel job's own time (one submission with
``cores / workers`` threads), checks that both give the same grades, and writes
``results/autograde_speed.json`` with the machine's load before and after (a shared machine's load
distorts the figures: compare runs only at similar load).

    python benchmarks/autograde_speed.py --copies 4 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "hw8"


def environment(quick: bool) -> dict[str, str]:
    """This Python first on PATH (nbgrader runs alembic), CPU only, short training, and no
    thread limit of the caller's (sequential autograde gets torch's default, every core)."""
    env = dict(os.environ, HW8_DEVICE="cpu")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(name, None)
    if quick:
        env["HW8_QUICK"] = "1"
    else:
        env.pop("HW8_QUICK", None)
    return env


def run(command: list[str], course: Path, env: dict) -> float:
    """Run ``command`` in ``course``; its wall-clock seconds (it must succeed)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def grade_in_process(course: Path, workers: int, env: dict) -> float:
    """Grade ``course`` with the engine's API (``hw8 course grade`` without its command
    line) under ``env``; its wall-clock seconds (every submission must be graded)."""
    from hw8.course.autograde import GradeOptions, grade

    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)  # the jobs take the HW8_ settings and PATH from here
    started = time.perf_counter()
    if grade(course, ASSIGNMENT, GradeOptions(workers=workers)) != 0:
        sys.exit(f"hw8 course grade failed on {course} (its summary is above)")
    return time.perf_counter() - started


def make_course(folder: Path, copies: int, env: dict) -> Path:
    """A course with the hw8 assignment generated and ``copies`` correct submissions."""
    import nbformat

    from hw8.anomaly import write_submission
    from hw8.checks import leaderboard

    course = folder / "template"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(
        ROOT / "notebooks",
        course / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.csv", "*.pt"),
    )
    run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT], course, env)
    labels = leaderboard.bundled_labels().astype(float)
    for number in range(copies):
        handed_in = course / "submitted" / f"student{number:03d}" / ASSIGNMENT
        handed_in.mkdir(parents=True)
        for path in sorted((ROOT / "notebooks" / ASSIGNMENT).glob("*.ipynb")):
            nbformat.write(nbformat.read(path, as_version=4), handed_in / path.name)
        write_submission(labels, handed_in / leaderboard.DEFAULT_SCORES_FILE)
    return course


def grades(course: Path) -> dict[str, str]:
    """student -> raw score, from grades.csv."""
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: row["raw_score"] for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="submissions to grade (4)")
    parser.add_argument("--workers", type=int, default=2, help="hw8 course grade --workers (2)")
    parser.add_argument("--full", action="store_true", help="full training (no HW8_QUICK)")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/autograde_speed.json"
    )
    parser.add_argument("--keep", type=Path, help="build the courses here and keep them")
    args = parser.parse_args()
    env = environment(quick=not args.full)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hw8-grading-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        template = make_course(folder, args.copies, env)
        courses = {name: folder / name for name in ("sequential", "parallel")}
        for course in courses.values():
            shutil.copytree(template, course)
        nbgrader = [sys.executable, "-m", "nbgrader"]
        sequential = run([*nbgrader, "autograde", ASSIGNMENT], courses["sequential"], env)
        run([*nbgrader, "export"], courses["sequential"], env)
        parallel = grade_in_process(courses["parallel"], args.workers, env)
        scores = {name: grades(course) for name, course in courses.items()}
        report = courses["parallel"] / "grade_reports" / ASSIGNMENT / "report.json"
        jobs = [e["seconds"] for e in json.loads(report.read_text())["students"].values()]
    result = {
        "copies": args.copies,
        "workers": args.workers,
        "quick": not args.full,
        "sequential_s": round(sequential, 1),
        "parallel_s": round(parallel, 1),
        "sequential_s_per_submission": round(sequential / args.copies, 1),
        "parallel_s_per_submission": round(parallel / args.copies, 1),
        "speedup": round(sequential / parallel, 2),
        "job_s_mean": round(sum(jobs) / len(jobs), 1),
        "job_s_max": max(jobs),
        "same_grades": scores["sequential"] == scores["parallel"],
        "raw_scores": scores,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"{args.copies} submissions: sequential {result['sequential_s_per_submission']} s each, "
        f"--workers {args.workers} {result['parallel_s_per_submission']} s each: "
        f"{result['speedup']}x; same grades: {result['same_grades']}"
    )


if __name__ == "__main__":
    main()
