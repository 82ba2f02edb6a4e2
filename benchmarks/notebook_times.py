"""How long each notebook takes, as a student runs it and as the grader runs it.

Runs every source notebook (the instructor version, with the solutions) top to bottom
with nbclient in a scratch copy of notebooks/hw8, on the CPU, twice:

* ``student``: no switch set, full training, as a student on a laptop runs it. Budget:
  each notebook at most 2 minutes, all five at most 8 minutes on a 2-core CPU;
* ``autograde``: ``NBGRADER_EXECUTION=autograde``, as nbgrader grades it (short training,
  the challenge not retrained; ``leaderboard_scores.csv`` written by the student run is
  there as a student hands it in). Budget: no cell over a tenth of the grader's 300 s cell
  timeout.

Prints one line per notebook and run (seconds, the slowest cell) and writes the JSON.

    python benchmarks/notebook_times.py --json benchmarks/results/notebook_times.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks" / "hw8"
NOTEBOOK_BUDGET_S = 120
TOTAL_BUDGET_S = 480
CELL_BUDGET_S = 30  # a tenth of c.Execute.timeout in nbgrader_config.py


def cell_seconds(cell) -> float:
    """How long one executed cell ran, from nbclient's timing metadata."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run(path: Path, env: dict[str, str]) -> dict:
    """Execute one notebook in its folder under ``env``; its wall time and slowest cell."""
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        started = time.perf_counter()
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        seconds = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    cells = [(cell_seconds(c), c.get("id", "?")) for c in nb.cells if c.cell_type == "code"]
    slowest = max(cells)
    return {
        "seconds": round(seconds, 1),
        "slowest_cell": slowest[1],
        "slowest_s": round(slowest[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Time every notebook in both modes; exit 1 when a budget is exceeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    base = {k: v for k, v in os.environ.items() if k not in ("HW8_QUICK", "NBGRADER_EXECUTION")}
    base["HW8_DEVICE"] = "cpu"
    modes = {"student": base, "autograde": {**base, "NBGRADER_EXECUTION": "autograde"}}
    results: dict = {"load_average_before": os.getloadavg(), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "hw8"
        shutil.copytree(SOURCE, folder, ignore=shutil.ignore_patterns("*.whl", "*.csv"))
        for mode, env in modes.items():
            results[mode] = {}
            for path in sorted(folder.glob("0*.ipynb")):
                row = run(path, env)
                results[mode][path.stem] = row
                print(
                    f"{mode:9s} {path.stem:28s} {row['seconds']:6.1f} s  slowest cell "
                    f"{row['slowest_cell']} {row['slowest_s']:.1f} s",
                    flush=True,
                )
    results["load_average_after"] = os.getloadavg()
    results.update(machine=platform.machine(), python=platform.python_version())
    student = [row["seconds"] for row in results["student"].values()]
    graded = [row["slowest_s"] for row in results["autograde"].values()]
    results["student_total_s"] = round(sum(student), 1)
    results["budgets_met"] = (
        max(student) <= NOTEBOOK_BUDGET_S
        and sum(student) <= TOTAL_BUDGET_S
        and max(graded) <= CELL_BUDGET_S
    )
    print(
        f"student total {results['student_total_s']} s (budget {TOTAL_BUDGET_S}); slowest "
        f"graded cell {max(graded):.1f} s (budget {CELL_BUDGET_S}); budgets met: "
        f"{results['budgets_met']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["budgets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
