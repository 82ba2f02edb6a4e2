"""The course notebooks: well formed, and run top to bottom.

Every source notebook in notebooks/hw8/ (the instructor version, with solutions) runs with
nbclient, with ``HW8_QUICK=1`` (one epoch on a few hundred images) so the suite stays
fast; the time of each is printed. The released notebooks (solutions removed) are run by
tests/test_nbgrader.py, which checks that they fail only with ``NotImplementedError``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "notebooks" / "hw8"
NOTEBOOKS = sorted(SOURCE_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
BUILT_HERE = {
    "01_vanilla_autoencoder.ipynb",
    "02_denoising_autoencoder.ipynb",
    "03_variational_autoencoder.ipynb",
}


def read(path: Path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_clean_with_nbgrader_metadata(path):
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit without outputs"
    meta = [cell.metadata["nbgrader"] for cell in nb.cells if "nbgrader" in cell.metadata]
    counts = Counter(m["grade_id"] for m in meta)
    assert not [gid for gid, n in counts.items() if n > 1], f"duplicate grade_ids: {counts}"
    tests = [m for m in meta if m["grade"] and not m["solution"]]
    assert tests, "no autograded test cell"
    for m in tests:
        assert m["locked"] and m["points"] > 0, m
    sources = {
        m["grade_id"]: cell.source for cell in nb.cells if (m := cell.metadata.get("nbgrader"))
    }
    if path.name in BUILT_HERE:  # 01-03: every test cell also has hidden tests
        for m in tests:
            assert "### BEGIN HIDDEN TESTS" in sources[m["grade_id"]], m["grade_id"]
    solutions = [m for m in meta if m["solution"] and not m["grade"]]
    for m in solutions:
        assert "### BEGIN SOLUTION" in sources[m["grade_id"]], m["grade_id"]


def test_grade_ids_are_unique_across_the_assignment():
    ids = Counter(
        cell.metadata["nbgrader"]["grade_id"]
        for path in NOTEBOOKS
        for cell in read(path).cells
        if "nbgrader" in cell.metadata
    )
    assert not [gid for gid, n in ids.items() if n > 1]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_source_notebook_runs_top_to_bottom(path, monkeypatch, request, tmp_path):
    monkeypatch.setenv("HW8_QUICK", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    nb = read(path)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        # a scratch folder: 05 writes prediction.csv and leaderboard_scores.csv where it runs,
        # and files left in notebooks/hw8 would be copied into the release by nbgrader
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    seconds = time.perf_counter() - start
    request.node.user_properties.append(("seconds", round(seconds, 1)))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{path.name} ran in {seconds:.1f} s (HW8_QUICK=1)")
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors
