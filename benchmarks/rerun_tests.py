"""Re-run every autograded test cell many times on the reference solutions: zero failures.

    python benchmarks/rerun_tests.py --reruns 1000 --json benchmarks/results/reruns.json
    python benchmarks/rerun_tests.py --reruns 20 --notebooks 03_variational_autoencoder

Each source notebook (the instructor version, with the solutions) runs once top to bottom
in a Jupyter kernel, with ``HW8_QUICK=1``. Then each of its test cells runs again
``--reruns`` times in that kernel, each time with fresh random draws: PyTorch's global
generator is seeded anew, and every seed a test cell gives ``torch.Generator.manual_seed``
is shifted by the re-run's number, so a statistical check meets a new sample every time.
A correct solution must pass every time: a test that fails now and then would mark down
correct students. The script prints the failures per cell and writes them with ``--json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks" / "hw8"

# Run in the kernel before the re-runs: every seed a test gives a generator is shifted.
SHIFT_SEEDS = """
import torch as _torch_for_reruns


class _ShiftedGenerator(_torch_for_reruns.Generator):
    shift = 0

    def manual_seed(self, seed):
        return super().manual_seed(seed + 7919 * _ShiftedGenerator.shift)


_torch_for_reruns.Generator = _ShiftedGenerator
"""
NEXT_DRAW = "_ShiftedGenerator.shift = {n}; _torch_for_reruns.manual_seed(100003 + {n})"


def is_test_cell(cell) -> bool:
    """An autograded test cell (graded, not a written answer)."""
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def errors(cell) -> list[str]:
    """The error messages a cell produced, one line each."""
    return [
        f"{out.ename}: {out.evalue}".splitlines()[0][:300]
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]


def rerun_notebook(path: Path, reruns: int, workdir: Path) -> dict:
    """Run ``path`` once, then each test cell ``reruns`` times; failures per grade id."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    result = {"cells": {}, "seconds": 0.0, "first_run_errors": {}}
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
                if errors(cell):
                    result["first_run_errors"][cell.get("id", str(index))] = errors(cell)
        tests = [cell for cell in nb.cells if is_test_cell(cell)]
        scratch = len(nb.cells)
        nb.cells.append(nbformat.v4.new_code_cell(SHIFT_SEEDS))  # a slot for the re-runs
        client.execute_cell(nb.cells[scratch], scratch)
        for cell in tests:
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            failures = {"first run": errors(cell)} if errors(cell) else {}
            for n in range(1, reruns + 1):
                client.execute_cell(nbformat.v4.new_code_cell(NEXT_DRAW.format(n=n)), scratch)
                again = nbformat.v4.new_code_cell(cell.source)
                client.execute_cell(again, scratch)
                if errors(again):
                    failures[str(n)] = errors(again)
            result["cells"][grade_id] = {"reruns": reruns, "failures": failures}
            print(f"{path.stem} {grade_id}: {len(failures)} failure(s) in {reruns}", flush=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=1000)
    parser.add_argument("--notebooks", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    os.environ["HW8_QUICK"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    names = args.notebooks or sorted(p.stem for p in SOURCE.glob("*.ipynb"))
    record = {
        "reruns": args.reruns,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "notebooks": {},
    }

    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            record["notebooks"][name] = rerun_notebook(
                SOURCE / f"{name}.ipynb", args.reruns, Path(workdir)
            )
    notebooks = record["notebooks"].values()
    failed = sum(len(cell["failures"]) for nb in notebooks for cell in nb["cells"].values())
    failed += sum(len(nb["first_run_errors"]) for nb in notebooks)
    record["failures"] = failed
    print(f"{failed} failure(s) in all")
    if args.json:
        from hw8.files import write_json

        write_json(record, args.json)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
