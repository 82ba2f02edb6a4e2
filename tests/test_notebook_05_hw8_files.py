"""Notebook 05 on real-HW8-format files: the path a student takes with the Kaggle data.

The student changes one variable, ``DATA_DIR``, to the folder holding
``trainingset.npy`` and ``testingset.npy``. Here that folder is written by the package's
HW8 exporter (64x64x3 uint8 .npy files, no public test labels, as on Kaggle) from a small
slice of the bundled task, and the instructor notebook runs top to bottom on it with
``HW8_QUICK=1``: it must train and score on the faces-shaped files and write a
``prediction.csv`` with one row per test image for Kaggle.

It runs as the autograder runs it (``NBGRADER_EXECUTION=autograde``) with a leaderboard
file handed in, so it also checks that the grader grades that file as saved and does not
retrain the challenge.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from hw8.anomaly import read_submission, write_submission
from hw8.checks import leaderboard
from hw8.checks.leaderboard import DEFAULT_SCORES_FILE
from hw8.datasets import HW8_LABELS_FILE, AnomalyTask, export_hw8, load_hw8, load_task

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "hw8" / "05_anomaly_detection.ipynb"
TRAIN, TEST = 120, 30


@pytest.fixture(scope="module")
def hw8_folder(tmp_path_factory) -> Path:
    """A small task exported in the HW8 file format, without the test labels."""
    task = load_task("bundled")
    keep = np.r_[np.flatnonzero(task.test_labels == 0)[:15], np.flatnonzero(task.test_labels)[:15]]
    keep.sort()
    small = AnomalyTask(
        "small", task.train_images[:TRAIN], task.test_images[keep], task.test_labels[keep]
    )
    folder = tmp_path_factory.mktemp("hw8-data")
    export_hw8(small, folder)
    (folder / HW8_LABELS_FILE).unlink()  # Kaggle keeps the test labels
    return folder


def test_export_looks_like_the_kaggle_files(hw8_folder):
    task = load_hw8(hw8_folder)
    assert task.train_images.shape == (TRAIN, 64, 64, 3)
    assert task.test_images.shape == (TEST, 64, 64, 3)
    assert task.train_images.dtype == np.uint8 and task.test_labels is None


@pytest.mark.slow
def test_notebook_05_runs_on_hw8_files(hw8_folder, tmp_path, monkeypatch, request):
    nb = nbformat.read(NOTEBOOK, as_version=nbformat.NO_CONVERT)
    cells = [cell for cell in nb.cells if cell.source.startswith("DATA_DIR = None")]
    assert len(cells) == 1, "notebook 05 should set DATA_DIR = None in one cell"
    cells[0].source = cells[0].source.replace("DATA_DIR = None", f"DATA_DIR = {str(hw8_folder)!r}")
    run_dir = tmp_path / "student"
    run_dir.mkdir()
    labels = leaderboard.bundled_labels()
    handed_in = write_submission(labels.astype(float), run_dir / DEFAULT_SCORES_FILE)
    before = handed_in.read_bytes()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("HW8_QUICK", "1")
    monkeypatch.setenv("HW8_DEVICE", "cpu")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on any error, naming the cell
    seconds = time.perf_counter() - start
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n05_anomaly_detection on HW8 files (HW8_QUICK=1): {seconds:.1f} s")
    text = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert "task: hw8" in text and "(120, 64, 64, 3)" in text
    assert "Kaggle computes the AUC" in text
    prediction = read_submission(run_dir / "prediction.csv", expected_rows=TEST)
    assert np.isfinite(prediction).all()
    assert "graded as saved" in text and "points: 4 / 4" in text
    assert handed_in.read_bytes() == before, "the autograder must not overwrite the file"
    shutil.rmtree(run_dir)
