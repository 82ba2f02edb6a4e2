"""Run a notebook as a student does and read what its cells print (tests/test_notebook_0N.py).

A notebook's claims are checked on the output of one run at student length: every cell
but the test cells, with neither ``HW8_QUICK`` nor nbgrader's autograde shortening
training.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SHORTENING = ("HW8_QUICK", "NBGRADER_EXECUTION")


def run_at_student_length(path: Path, tmp_path: Path, timeout: int = 900) -> dict:
    """Run every cell of ``path`` but the test cells, in ``tmp_path``, at student length.

    Returns ``{"seconds": run time}`` and, per code cell id, ``{"text": its stdout,
    "images": the number of PNG outputs}`` (progress bars go to stderr, left out).
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells = [cell for cell in nb.cells if "-test-" not in cell.id]
    saved = {key: os.environ.pop(key, None) for key in SHORTENING}
    saved["PYTHONPATH"] = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    start = time.perf_counter()
    try:
        NotebookClient(
            nb, timeout=timeout, resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        os.environ.pop("PYTHONPATH")
        os.environ.update({key: value for key, value in saved.items() if value is not None})
    result = {"seconds": time.perf_counter() - start}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        streams = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
        result[cell.id] = {
            "text": "".join(o.get("text", "") for o in streams),
            "images": sum("image/png" in o.get("data", {}) for o in cell.outputs),
        }
    return result


def numbers(line: str, pattern: str) -> list[float]:
    """Every number in ``line`` that ``pattern`` (a regular expression) finds, in order."""
    return [float(value) for value in re.findall(pattern, line)]


def line_starting(text: str, start: str) -> str:
    """The first line of ``text`` that starts with ``start`` (leading spaces ignored)."""
    found = [line for line in text.splitlines() if line.strip().startswith(start)]
    assert found, f"no line starting with {start!r} in:\n{text}"
    return found[0]
