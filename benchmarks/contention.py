"""``hw8 recipe`` on an idle machine and with busy background processes, in one run.

Runs ``hw8 recipe`` (the main job, CPU, the bundled task) three ways, each in a fresh
process with no thread setting of the caller's (hw8 chooses its own CPU threads:
``hw8.device``):

1. idle: nothing else of this script's runs;
2. loaded: ``--busy`` processes (default 2) spin ``while True: pass`` on the CPUs
   ``hw8 recipe`` may use, for the whole run;
3. with ``--baseline``, loaded again but with torch's thread count forced to every CPU
   (``OMP_NUM_THREADS``): what hw8 did before it fitted its threads to the free CPUs.

It records the seconds of each run, the thread count hw8 chose (``metrics.json``), the
ratio loaded / idle (target: at most ``--target``, 3x) and the load average before each
run, to ``results/contention.json``. A machine other jobs are using distorts every figure:
record it on an otherwise idle machine. Exit status 1 when the ratio is above the target.

    python benchmarks/contention.py                       # about 2 minutes idle, 2 cores
    python benchmarks/contention.py --baseline --note "idle 2-core VM"
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
BUSY = "while True: pass"


def environment(threads: int | None = None) -> dict[str, str]:
    """The caller's environment without thread settings (or with ``threads`` forced), on
    the CPU, full length (no HW8_QUICK)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.pop("HW8_QUICK", None)
    env["HW8_DEVICE"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    return env


def run_recipe(out: Path, env: dict[str, str]) -> dict:
    """One ``hw8 recipe`` run: seconds (wall clock), its metrics, the load before it."""
    load = os.getloadavg()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hw8.cli", "recipe", "--quiet", "--out", str(out)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "seconds": round(seconds, 1),
        "cpu_threads": metrics.get("cpu_threads"),
        "recipe_auc": round(metrics["auc"]["house recipe"], 4),
        "load_average_before": [round(x, 2) for x in load],
    }


def loaded(busy: int, out: Path, env: dict[str, str]) -> dict:
    """``run_recipe`` while ``busy`` processes keep CPUs busy (stopped afterwards)."""
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        time.sleep(2.0)  # let them take the cores before hw8 looks
        return run_recipe(out, env)
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=2, help="busy background processes (2)")
    parser.add_argument("--target", type=float, default=3.0, help="loaded / idle at most (3)")
    parser.add_argument("--baseline", action="store_true", help="also torch's every-CPU threads")
    parser.add_argument("--note", default="", help="a word on the machine, kept in the record")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/contention.json")
    args = parser.parse_args(argv)

    cpus = len(os.sched_getaffinity(0))
    record: dict = {
        "what": "hw8 recipe (bundled task, CPU) idle and with busy background processes",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": args.note,
        "cpus": cpus,
        "busy_processes": args.busy,
        "python": platform.python_version(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }
    with tempfile.TemporaryDirectory(prefix="hw8-contention-") as folder:
        folder = Path(folder)
        record["idle"] = run_recipe(folder / "idle", environment())
        print(f"idle: {record['idle']}", flush=True)
        record["loaded"] = loaded(args.busy, folder / "loaded", environment())
        print(f"loaded: {record['loaded']}", flush=True)
        if args.baseline:
            record["loaded_every_cpu"] = loaded(args.busy, folder / "base", environment(cpus))
            print(f"loaded, {cpus} threads forced: {record['loaded_every_cpu']}", flush=True)
    ratio = record["loaded"]["seconds"] / record["idle"]["seconds"]
    record["ratio_loaded_to_idle"] = round(ratio, 2)
    record["target"] = args.target
    record["within_target"] = ratio <= args.target
    if args.baseline:
        base = record["loaded_every_cpu"]["seconds"] / record["idle"]["seconds"]
        record["ratio_every_cpu_to_idle"] = round(base, 2)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"loaded / idle = {ratio:.2f} (target at most {args.target:g}); written {args.json}",
        flush=True,
    )
    return 0 if record["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
