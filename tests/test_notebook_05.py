"""Notebook 05 (the HW8 task) says what it prints.

Every statement of 05's text about its printed numbers (a choice, X beats Y by so many
standard errors, a level passed) is asserted here on the notebook's own output, run once
per module at the length students run it (no ``HW8_QUICK``, not autograding), with its
test cells left out. The module also checks, from the source, the facts those statements
lean on (the sample's 50 optimiser steps, the k of the latent neighbours, both ReLU heads
of the sample vae). The graded exercises themselves are tested by the notebook's own
test cells (tests/test_notebooks.py, benchmarks/rerun_tests.py) and the nbgrader round
trip (tests/course/test_round_trip.py).

Then, from the source and in quick runs: 05 grades as designed (one point per leaderboard
level for the student's own method, the challenge cell never retrains while grading,
the recheck tags), and 05 runs on real-HW8-format files written by the package's
exporter (the path a student takes with the Kaggle data: one variable, ``DATA_DIR``).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from notebook_outputs import line_starting, run_at_student_length
from notebook_outputs import numbers as numbers_with

from hw8.anomaly import read_submission, write_submission
from hw8.checks import leaderboard
from hw8.checks.leaderboard import (
    BUNDLED_THRESHOLDS,
    DEFAULT_SCORES_FILE,
    LEVELS,
    package_recipe_references,
)
from hw8.datasets import HW8_LABELS_FILE, AnomalyTask, export_hw8, load_hw8, load_task
from hw8.settings import SAMPLE_BATCH_SIZE, SAMPLE_EPOCHS

ROOT = Path(__file__).resolve().parents[1]


NB05 = ROOT / "notebooks" / "hw8" / "05_anomaly_detection.ipynb"


NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def numbers(line: str) -> list[float]:
    return numbers_with(line, NUMBER)


MODELS = ("fcn", "cnn", "vae")


CANDIDATES = (
    "reconstruction error",
    "central 20x20",
    "standardised",
    "standardised, central 20x20",
    "latent neighbours",
)


def source(cell_id: str) -> str:
    (found,) = [cell.source for cell in nbformat.read(NB05, 4).cells if cell.id == cell_id]
    return found


def prose(cell_id: str) -> str:
    """A cell's source with every run of white space (line breaks too) as one space."""
    return " ".join(source(cell_id).split())


def blocks(text: str) -> dict[str, list[str]]:
    """The lines printed for each sample model: a block starts with the model's name."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        head = line.split(":")[0].split(" (")[0]
        if not line.startswith(" ") and head in MODELS:
            current = found.setdefault(head, [line])
        elif current is not None and line.startswith("  "):
            current.append(line)
        else:
            current = None
    assert set(found) == set(MODELS), f"expected a block per sample model in:\n{text}"
    return found


def fit_table(text: str) -> dict[str, dict]:
    """ae05-code-choose-fit: per model the two mean squared errors, the two AUCs, the
    difference held-out minus training with its standard error, and the choice."""
    table = {}
    for model, lines in blocks(text).items():
        train_mse, _, held_mse, _ = numbers(lines[0].split(":", 1)[1])
        block = "\n".join(lines)
        (train_auc,) = numbers(line_starting(block, "standardised, fitted on the training"))
        held_auc, gap, se = numbers(line_starting(block, "standardised, fitted on the held"))
        choice = line_starting(block, "-> choose_fit").split(":", 1)[1].strip()
        table[model] = {
            "mse": (train_mse, held_mse),
            "auc": (train_auc, held_auc),
            "gap": (gap, se),
            "choice": choice,
        }
    return table


def score_table(text: str) -> dict[str, dict]:
    """ae05-code-compare-scores: per model the codes' size and share of zeros, the AUC of
    every candidate with its difference to the reconstruction error (and standard error),
    and the choice."""
    table = {}
    for model, lines in blocks(text).items():
        codes = re.search(rf"codes of (\d+) numbers, ({NUMBER})% of them 0", lines[0])
        size, zeros = int(codes.group(1)), float(codes.group(2))
        rows = {}
        for line in lines[1:]:
            label = line.strip()
            if label.startswith("->"):
                continue
            name = next(c for c in sorted(CANDIDATES, key=len, reverse=True) if label.startswith(c))
            values = numbers(label[len(name) :])
            rows[name] = {"auc": values[0], "gap": tuple(values[1:3]) if len(values) > 1 else None}
        assert tuple(rows) == CANDIDATES, (model, rows)
        choice = line_starting("\n".join(lines), "-> choose_score").split(":", 1)[1].strip()
        table[model] = {"size": size, "zeros": zeros, "rows": rows, "choice": choice}
    return table


def seed_table(text: str) -> dict[str, dict[str, dict]]:
    """ae05-code-seed-spread: per model and candidate the AUC at each seed, and the mean
    and spread over the seeds."""
    table: dict[str, dict[str, dict]] = {}
    for line in text.splitlines()[1:]:
        if line.strip() in MODELS:
            model = table.setdefault(line.strip(), {})
            continue
        label = line.strip()
        name = next(c for c in sorted(CANDIDATES, key=len, reverse=True) if label.startswith(c))
        *each, mean, spread = numbers(label[len(name) :])
        model[name] = {"each": each, "mean": mean, "spread": spread}
    assert set(table) == set(MODELS), text
    assert all(tuple(rows) == CANDIDATES for rows in table.values()), table
    return table


@pytest.fixture(scope="module")
def out05(tmp_path_factory):
    result = run_at_student_length(NB05, tmp_path_factory.mktemp("nb05"))
    return {key: value["text"] for key, value in result.items() if key != "seconds"}


def test_05_sample_models_take_one_optimiser_step_per_epoch_on_the_validation_split():
    """The text's "50 optimiser steps (one batch of 2000 per epoch)" on 384 images."""
    assert "HELD_OUT = 96" in source("ae05-code-compare-samples")
    assert SAMPLE_BATCH_SIZE >= 480 - 96 and SAMPLE_EPOCHS == 50
    assert "50 optimiser steps (one batch of 2000 per epoch)" in prose("ae05-text-scores-found")


def test_05_latent_neighbours_use_the_k_the_text_and_the_model_answer_state():
    assert "$k = 10$ nearest codes" in prose("ae05-text-better-scores")
    assert ".topk(10, largest=False)" in source("ae05-code-compare-scores")
    answer = prose("ae05-answer-report")
    assert "10 nearest training codes" in answer and "5 nearest" not in answer
    solution = source("ae05-solution-improved-scores")
    assert "def angle_distance(reference, queries, k=10):" in solution


def test_05_names_both_relu_heads_of_the_sample_vae():
    text = prose("ae05-text-sample-models")
    assert "both heads end in a ReLU" in text
    assert "ReLU on the mean" in text and "ReLU on the log-variance" in text


def test_05_every_standard_error_printed_comes_from_the_stated_number_of_draws():
    assert "DRAWS = 30 if short_training() else 300" in source("ae05-code-choose-fit")
    assert "300 bootstrap draws each" in prose("ae05-text-compare-scores")


def sample_test_aucs(out05) -> dict[str, float]:
    line = line_starting(out05["ae05-code-compare-samples"], "test AUC (reported once)")
    return {name: float(value) for name, value in re.findall(rf"(\w+) ({NUMBER})", line)}


@pytest.mark.slow
def test_05_the_sample_models_pass_simple_and_medium_never_strong(out05):
    """ae05-text-challenge: "The sample models reach the simple and medium baselines";
    ae05-text-leaderboard: the strong threshold lies above every sample model, the best of
    them the fcn at 0.9069."""
    aucs = sample_test_aucs(out05)
    assert set(aucs) == set(MODELS)
    assert min(aucs.values()) >= BUNDLED_THRESHOLDS["simple"], aucs
    assert max(aucs.values()) >= BUNDLED_THRESHOLDS["medium"], aucs
    assert max(aucs.values()) < BUNDLED_THRESHOLDS["strong"], aucs
    assert max(aucs, key=aucs.get) == "fcn" and aucs["fcn"] == pytest.approx(0.9069, abs=5e-4)
    assert "the best: the sample fcn, 0.9069" in prose("ae05-text-leaderboard")


@pytest.mark.slow
def test_05_section_3_chooses_the_fcn_by_its_reconstruction_error(out05):
    """ae05-text-scores-found: "the fcn's reconstruction error that section 3 chose"."""
    text = out05["ae05-code-compare-samples"]
    assert "chosen: fcn" in text, text


@pytest.mark.slow
def test_05_the_model_answer_passes_every_level_with_the_test_auc_it_states(out05):
    """ae05-text-leaderboard: running the reference recipe passes its level; the model
    answer: test AUC 0.945, against 0.9069 for the sample fcn."""
    text = out05["ae05-code-challenge-scores"]
    assert "points: 4 / 4" in text, text
    (auc,) = numbers(line_starting(text, "ROC AUC on the bundled test split"))
    assert auc == pytest.approx(0.945, abs=6e-4)
    assert auc > sample_test_aucs(out05)["fcn"]
    answer = prose("ae05-answer-report")
    assert "measured once: 0.945" in answer and "against 0.9069 for the sample fcn" in answer


@pytest.mark.slow
def test_05_model_answer_quotes_the_validation_numbers_section_5_prints(out05):
    rows = score_table(out05["ae05-code-compare-scores"])
    cnn = rows["cnn"]["rows"]
    answer = prose("ae05-answer-report")
    raw, latent = cnn["reconstruction error"]["auc"], cnn["latent neighbours"]["auc"]
    gap, se = cnn["latent neighbours"]["gap"]
    assert f"from {raw:.3f} to {latent:.3f} on validation" in answer
    assert f"+{gap:.3f} with a paired standard error of {se:.3f}" in answer
    fcn = rows["fcn"]["rows"]["reconstruction error"]["auc"]
    assert f"fcn, has {fcn:.3f} there" in answer


@pytest.mark.slow
def test_05_where_to_fit_the_held_out_fit_never_wins_and_loses_for_the_fcn(out05):
    """ae05-text-scores-found, "Where to fit": no held-out fit beats the training fit by
    two standard errors, choose_fit keeps the training images for all three, the fcn's
    held-out fit is lower by more than two standard errors, and the training images are
    rebuilt no better than the held-out ones."""
    table = fit_table(out05["ae05-code-choose-fit"])
    for model, row in table.items():
        gap, se = row["gap"]
        assert gap < 2 * se, (model, row)
        assert row["choice"] == "training images", (model, row)
        train_auc, held_auc = row["auc"]
        assert held_auc - train_auc == pytest.approx(gap, abs=2e-4), (model, row)
        train_mse, held_mse = row["mse"]
        assert train_mse >= 0.97 * held_mse, (model, row)
    gap, se = table["fcn"]["gap"]
    assert gap + 2 * se < 0, table["fcn"]


@pytest.mark.slow
def test_05_which_score_depends_on_the_model(out05):
    """ae05-text-scores-found, "Which score depends on the model"."""
    table = score_table(out05["ae05-code-compare-scores"])
    fcn, cnn, vae = (table[model] for model in MODELS)
    # fcn: no change beats the reconstruction error by 2 SE, choose_score keeps it, its
    # latent neighbours are far worse; its code has 3 numbers
    assert fcn["choice"] == "reconstruction error", fcn
    for name in CANDIDATES[1:]:
        gap, se = fcn["rows"][name]["gap"]
        assert gap < 2 * se, (name, fcn)
    gap, se = fcn["rows"]["latent neighbours"]["gap"]
    assert gap < -2 * se and fcn["size"] == 3, fcn
    # cnn: the standardised error and the latent neighbours each win by > 4 SE
    for name in ("standardised", "latent neighbours"):
        gap, se = cnn["rows"][name]["gap"]
        assert gap > 4 * se, (name, cnn)
    assert cnn["choice"] != "reconstruction error", cnn
    # vae: standardising is the largest gain of the table; latent neighbours 0.5000 as
    # every code is 0
    gains = {
        (model, name): row["gap"][0]
        for model, entry in table.items()
        for name, row in entry["rows"].items()
        if row["gap"] is not None
    }
    model, name = max(gains, key=gains.get)
    assert model == "vae" and name.startswith("standardised"), gains
    gap, se = vae["rows"]["standardised"]["gap"]
    assert gap > 4 * se, vae
    assert vae["rows"]["latent neighbours"]["auc"] == 0.5 and vae["zeros"] == 100.0, vae
    assert fcn["zeros"] < 100.0 and cnn["zeros"] < 100.0


@pytest.mark.slow
def test_05_cropping_the_raw_error_helps_none_of_the_sample_models(out05):
    """ae05-text-scores-found: the raw error on the central window is lower than on the
    whole image for all three models, at the sample's seed and on average over the three
    seeds."""
    table = score_table(out05["ae05-code-compare-scores"])
    seeds = seed_table(out05["ae05-code-seed-spread"])
    for model, entry in table.items():
        gap, _se = entry["rows"]["central 20x20"]["gap"]
        assert gap < 0, (model, entry)
        rows = seeds[model]
        assert rows["central 20x20"]["mean"] < rows["reconstruction error"]["mean"], rows


@pytest.mark.slow
def test_05_the_best_pair_is_the_cnns_latent_neighbours_not_section_3s_choice(out05):
    """ae05-text-scores-found, "Choose the model and the score together"."""
    text = out05["ae05-code-compare-scores"]
    table = score_table(text)
    aucs = {
        (model, name): row["auc"]
        for model, entry in table.items()
        for name, row in entry["rows"].items()
    }
    assert max(aucs, key=aucs.get) == ("cnn", "latent neighbours"), aucs
    line = line_starting(text, "highest validation AUC")
    assert line.startswith("highest validation AUC: cnn, latent neighbours"), line
    auc, gap, _se = numbers(line.split("latent neighbours", 1)[1])[:1] + numbers(
        line.split("(chosen in section 3):", 1)[1]
    )
    assert auc == aucs["cnn", "latent neighbours"]
    assert gap == pytest.approx(auc - aucs["fcn", "reconstruction error"], abs=2e-4)
    assert gap > 0


@pytest.mark.slow
def test_05_training_seeds_move_the_auc_more_and_the_conclusions_hold_at_every_seed(out05):
    """ae05-text-scores-found, "Training seeds move the AUC more than the validation
    images do"."""
    text = out05["ae05-code-seed-spread"]
    assert "training seeds (48763, 1, 2)" in text, text
    seeds = seed_table(text)
    scores = score_table(out05["ae05-code-compare-scores"])
    for model, rows in seeds.items():  # the first seed is the run printed above
        for name, row in rows.items():
            assert len(row["each"]) == 3, (model, name, row)
            assert row["each"][0] == scores[model]["rows"][name]["auc"], (model, name)
    largest_se = max(
        [row["gap"][1] for row in fit_table(out05["ae05-code-choose-fit"]).values()]
        + [
            row["gap"][1]
            for entry in scores.values()
            for row in entry["rows"].values()
            if row["gap"] is not None
        ]
    )
    for model in ("cnn", "vae"):
        assert seeds[model]["reconstruction error"]["spread"] > largest_se, (
            seeds[model],
            largest_se,
        )
    fcn, cnn, vae = (seeds[model] for model in MODELS)
    for seed in range(3):
        raw = {model: seeds[model]["reconstruction error"]["each"][seed] for model in MODELS}
        assert max(raw, key=raw.get) == "fcn", (seed, raw)
        for name in ("standardised", "latent neighbours"):
            assert cnn[name]["each"][seed] > cnn["reconstruction error"]["each"][seed], (seed, cnn)
        assert vae["latent neighbours"]["each"][seed] == 0.5, vae
    for name in CANDIDATES[1:]:
        gain = fcn[name]["mean"] - fcn["reconstruction error"]["mean"]
        assert gain < fcn[name]["spread"], (name, fcn)
    assert len(set(vae["standardised"]["each"])) == 1 and vae["standardised"]["spread"] == 0


# ----------------------------------------------------------------------------- graded as designed


def calibration():
    """benchmarks/calibrate_thresholds.py as a module (it reads the instructor solution)."""
    path = ROOT / "benchmarks" / "calibrate_thresholds.py"
    spec = importlib.util.spec_from_file_location("calibrate_thresholds", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells_by_id(nb) -> dict:
    return {cell.id: cell for cell in nb.cells}


def graded(nb) -> dict[str, tuple]:
    return {
        m["grade_id"]: (cell.cell_type, m["points"], cell.source)
        for cell in nb.cells
        if (m := cell.metadata.get("nbgrader", {})).get("grade")
    }


def test_05_awards_one_point_per_leaderboard_level_to_the_students_own_method():
    cells = graded(nbformat.read(NB05, 4))
    for level in LEVELS:
        kind, points, source = cells[f"ae05-test-leaderboard-{level}"]
        assert (kind, points) == ("code", 1)
        visible, hidden = source.split("### BEGIN HIDDEN TESTS")
        assert "leaderboard.assert_own_method(improved_scores)" in visible
        call = f'leaderboard.assert_level("{level}", LEADERBOARD_FILE, method=improved_scores)'
        assert call in hidden


def test_05_instructor_solution_is_not_the_package_recipe():
    """The model answer of the challenge reaches the boss level with its own code."""
    namespace = calibration().notebook_solution("cpu")
    assert package_recipe_references(namespace["improved_scores"]) == []
    source = cells_by_id(nbformat.read(NB05, 4))["ae05-solution-improved-scores"].source
    assert "house_recipe" not in source.split("### BEGIN SOLUTION")[1]


def test_05_challenge_cell_blocks_the_recipe_and_never_retrains_while_grading():
    source = cells_by_id(nbformat.read(NB05, 4))["ae05-code-challenge-scores"].source
    tree = ast.parse(source)
    branch = next(node for node in tree.body if isinstance(node, ast.If))
    assert ast.unparse(branch.test) == "autograding()"
    assert "improved_scores" not in ast.unparse(branch.body)  # graded as handed in
    calls = [node for node in ast.walk(ast.Module(branch.orelse, [])) if isinstance(node, ast.With)]
    assert calls and all("without_package_recipe(globals())" in ast.unparse(w) for w in calls)
    assert ast.unparse(ast.Module(branch.orelse, [])).count("improved_scores(") == len(calls)


def test_05_skip_recheck_tags_only_locked_code_cells_no_test_needs():
    nb = nbformat.read(NB05, 4)
    tagged = [cell for cell in nb.cells if "skip-recheck" in cell.metadata.get("tags", [])]
    assert {cell.id for cell in tagged} >= {"ae05-code-show-images", "ae05-code-challenge-scores"}
    for cell in tagged:
        meta = cell.metadata.get("nbgrader", {})
        assert cell.cell_type == "code" and meta.get("locked") and not meta.get("grade"), cell.id


def test_05_shows_the_calibrated_thresholds_and_one_data_switch():
    nb = nbformat.read(NB05, 4)
    text = "\n".join(cell.source for cell in nb.cells)
    for level in LEVELS:
        assert f"**{BUNDLED_THRESHOLDS[level]:.5f}**" in text, level
    for hw8 in ("0.53458", "0.71931", "0.78950", "0.82221"):
        assert hw8 in text
    switches = [cell for cell in nb.cells if cell.source.startswith("DATA_DIR = None")]
    assert len(switches) == 1 and "nbgrader" not in switches[0].metadata  # students edit it


def run_05_as_autograded(tmp_path, monkeypatch, *, hand_in: bool, recheck: bool):
    """Run notebook 05 as ``nbgrader autograde`` does (no HW8_QUICK), cell by cell.

    ``recheck``: leave out the locked code cells tagged ``skip-recheck``, as the
    independent re-check does. Returns (notebook, seconds per cell id, total seconds).
    """
    from nbclient import NotebookClient

    nb = nbformat.read(NB05, 4)
    if recheck:
        nb.cells = [c for c in nb.cells if "skip-recheck" not in c.metadata.get("tags", [])]
    if hand_in:
        write_submission(
            leaderboard.bundled_labels().astype(float), tmp_path / leaderboard.DEFAULT_SCORES_FILE
        )
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.delenv("HW8_QUICK", raising=False)
    monkeypatch.setenv("HW8_DEVICE", "cpu")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    seconds = {}
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            begin = time.perf_counter()
            client.execute_cell(cell, index)
            seconds[cell.id] = time.perf_counter() - begin
    return nb, seconds, time.perf_counter() - start


def errors_by_cell(nb) -> dict[str, str]:
    return {
        cell.id: f"{out.ename}: {out.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    }


@pytest.mark.slow
def test_05_autograde_is_cheap_and_the_recheck_cells_pass(tmp_path, monkeypatch, request):
    nb, seconds, total = run_05_as_autograded(tmp_path, monkeypatch, hand_in=True, recheck=True)
    assert errors_by_cell(nb) == {}
    slowest = max(seconds, key=seconds.get)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"\n05 autograded (recheck cells): {total:.1f} s; slowest cell {slowest} "
            f"{seconds[slowest]:.1f} s"
        )
    # well under the 300 s cell timeout: no cell takes a tenth of it, even on a busy machine
    assert seconds[slowest] < 30, seconds


@pytest.mark.slow
def test_05_autograde_without_scores_file_gives_no_leaderboard_points(tmp_path, monkeypatch):
    nb, _seconds, _total = run_05_as_autograded(tmp_path, monkeypatch, hand_in=False, recheck=False)
    errors = errors_by_cell(nb)
    assert set(errors) == {f"ae05-test-leaderboard-{level}" for level in LEVELS}, errors
    assert all("scores file not found" in error for error in errors.values())
    text = "".join(
        out.get("text", "") for c in nb.cells if c.cell_type == "code" for out in c.outputs
    )
    assert "does not retrain the challenge" in text
    assert not (tmp_path / leaderboard.DEFAULT_SCORES_FILE).exists()


# ------------------------------------------------------------------------------ real HW8 files


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
