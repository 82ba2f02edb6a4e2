"""Notebook 02 says what its output shows, at the length students run it.

The notebook runs once per module as a student runs it (no ``HW8_QUICK``, the reference
solutions, without the test cells) in a fresh kernel; each test reads what a cell
printed and checks a sentence of the text (or of the model answer) against it, with a
margin: every relation asserted here held with one and with two CPU threads, by more
than the spread over the training seeds. A test fails when a change makes the output
stop supporting its sentence.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
from notebook_outputs import line_starting, run_at_student_length
from notebook_outputs import numbers as numbers_with

ROOT = Path(__file__).resolve().parents[1]
NB02 = ROOT / "notebooks" / "hw8" / "02_denoising_autoencoder.ipynb"
CORRUPTIONS = ("gaussian noise", "salt and pepper", "masking", "dropout")
PIXEL_NOISE = ("gaussian noise", "salt and pepper", "dropout")
NEW_CODE_CELLS = ("ae02-code-wide-code", "ae02-code-anomaly-auc", "ae02-code-score-view")
NEW_TEXT_CELLS = (
    "ae02-text-wide-code",
    "ae02-text-anomaly-auc",
    "ae02-text-anomaly-auc-result",
    "ae02-text-psnr-result",
    "ae02-text-score-view",
)
NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?|nan"


def numbers(line: str) -> list[float]:
    return numbers_with(line, NUMBER)


EARLY, LATE = 5, 15  # the epochs after which the PSNR tables are printed


def cells(path: Path = NB02) -> dict:
    return {cell.id: cell for cell in nbformat.read(path, as_version=4).cells}


@pytest.fixture(scope="module")
def out02(tmp_path_factory, request):
    result = run_at_student_length(NB02, tmp_path_factory.mktemp("nb02"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{NB02.name}: {result['seconds']:.1f} s at student length, without test cells")
    return result


# ----------------------------------------------------------------------------- PSNR tables


class Cell:
    """'mean +- spread' over the training seeds."""

    def __init__(self, mean: float, spread: float):
        self.mean, self.spread = mean, spread

    def __repr__(self) -> str:
        return f"{self.mean:.2f} +- {self.spread:.2f}"


def pairs(line: str) -> list[Cell]:
    found = re.findall(rf"({NUMBER})\s*\+-\s*({NUMBER})", line)
    return [Cell(float(mean), float(spread)) for mean, spread in found]


def psnr_tables(text: str) -> dict[int, dict]:
    """Per epoch: per corruption the input PSNR, the models' PSNR and the differences."""
    tables = {}
    for block in re.split(r"\n(?=after \d+ epochs:)", text)[1:]:
        epoch = int(block.split()[1])
        rows = block.splitlines()
        table = {
            "clean": dict(
                zip(("plain", "mixed"), pairs(line_starting(block, "clean")), strict=True)
            )
        }
        for name in CORRUPTIONS:
            absolute, differences = [line for line in rows if line.startswith(name)]
            input_psnr = numbers(absolute[len(name) :])[0]
            plain, mixed, matched = pairs(absolute)
            cost, mixed_minus_plain, gain, matched_minus_mixed = pairs(differences)
            table[name] = {
                "input": input_psnr,
                "plain": plain,
                "mixed": mixed,
                "matched": matched,
                "cost": cost,
                "mixed - plain": mixed_minus_plain,
                "matched - plain": gain,
                "matched - mixed": matched_minus_mixed,
            }
        tables[epoch] = table
    return tables


@pytest.fixture(scope="module")
def psnr(out02):
    tables = psnr_tables(out02["ae02-code-psnr"]["text"])
    assert sorted(tables) == [EARLY, LATE], out02["ae02-code-psnr"]["text"]
    return tables


@pytest.mark.slow
def test_three_seeds_and_the_table_is_consistent(out02, psnr):
    seeds = [line for line in out02["ae02-code-train-plain-and-denoising"]["text"].splitlines()]
    assert [line.split(":")[0] for line in seeds if line.startswith("seed")] == [
        "seed 0",
        "seed 1",
        "seed 2",
    ]
    for table in psnr.values():
        for name in CORRUPTIONS:
            row = table[name]
            assert row["mixed - plain"].mean == pytest.approx(
                row["mixed"].mean - row["plain"].mean, abs=0.016
            )
            assert row["matched - plain"].mean == pytest.approx(
                row["matched"].mean - row["plain"].mean, abs=0.016
            )
            assert row["cost"].mean == pytest.approx(
                table["clean"]["plain"].mean - row["plain"].mean, abs=0.016
            )
            for cell in row.values():
                if isinstance(cell, Cell):
                    assert 0 <= cell.spread < 0.5, (name, row)


@pytest.mark.slow
def test_the_plain_ae_removes_much_of_the_pixel_noise(psnr):
    """ae02-text-denoising-question: on pixel noise the plain AE's output is much closer to
    the clean image than the corrupted input (less than half its squared error: more
    than 3 dB); ae02-text-psnr-result: the plain AE 'already drops most of it'; the model
    answer: 'its PSNR rises from 11-14 dB at the input to 17-19 dB at the output'."""
    for name in PIXEL_NOISE:
        row = psnr[LATE][name]
        assert row["plain"].mean > row["input"] + 3, (name, row)
        assert 10.5 <= row["input"] < 14.5 and 16.5 <= row["plain"].mean < 19.5, (name, row)


@pytest.mark.slow
def test_the_short_run_is_reproduced(psnr):
    """'After 5 epochs the plain AE beats the mixed denoising AE on Gaussian noise and on
    dropout, and the two are about even on salt-and-pepper: masking is the only corruption
    where the mixed one is clearly ahead.'"""
    early = psnr[EARLY]
    for name in ("gaussian noise", "dropout"):
        difference = early[name]["mixed - plain"]
        assert difference.mean < -0.2 and difference.mean < -2 * difference.spread, (name, early)
    even = early["salt and pepper"]["mixed - plain"]
    assert abs(even.mean) < 0.2, even
    ahead = early["masking"]["mixed - plain"]
    assert ahead.mean > 0.4 and ahead.mean > 2 * ahead.spread, ahead


@pytest.mark.slow
def test_matched_beats_mixed_on_every_corruption(psnr):
    """'The matched DAE beats the mixed one on every corruption, after 5 epochs and
    after 15.'"""
    for epoch, table in psnr.items():
        for name in CORRUPTIONS:
            difference = table[name]["matched - mixed"]
            assert difference.mean > 0.05 and difference.mean > difference.spread, (epoch, name)


@pytest.mark.slow
def test_the_matched_lead_grows_with_training(psnr):
    """'From 5 to 15 epochs the lead of the matched DAE over the plain AE grows on every
    corruption. The plain AE keeps improving on clean images, but less on corrupted
    ones' (so what each corruption costs it grows: the model answer's 'also reproduces
    more of the corruption')."""
    early, late = psnr[EARLY], psnr[LATE]
    clean_gain = late["clean"]["plain"].mean - early["clean"]["plain"].mean
    assert clean_gain > 0.5, clean_gain
    for name in CORRUPTIONS:
        growth = late[name]["matched - plain"].mean - early[name]["matched - plain"].mean
        assert growth > 0.1, (name, growth)
        corrupted_gain = late[name]["plain"].mean - early[name]["plain"].mean
        assert corrupted_gain < clean_gain - 0.2, (name, corrupted_gain, clean_gain)


@pytest.mark.slow
def test_denoising_helps_where_the_corruption_costs_the_plain_ae(psnr):
    """'After 15 epochs the gain of a matched DAE over the plain AE follows what the
    corruption costs the plain AE: both are largest for masking (the gain about 2 dB),
    next for salt-and-pepper, and smallest for dropout and Gaussian noise, where the gain
    is a few tenths of a dB at most.' The model answer adds: masking costs the plain AE
    about 4 dB."""
    late = psnr[LATE]
    for column in ("matched - plain", "cost"):
        value = {name: late[name][column].mean for name in CORRUPTIONS}
        smallest = max(value["gaussian noise"], value["dropout"])
        assert value["masking"] > value["salt and pepper"] + 0.5, (column, value)
        assert value["salt and pepper"] > smallest + 0.2, (column, value)
    gain = late["masking"]["matched - plain"]
    assert 1.5 <= gain.mean < 2.6 and gain.mean > 5 * gain.spread, gain
    assert 3.2 <= late["masking"]["cost"].mean < 4.6, late["masking"]["cost"]
    for name in ("gaussian noise", "dropout"):
        assert -0.2 < late[name]["matched - plain"].mean < 0.5, (name, late[name])


@pytest.mark.slow
def test_the_denoised_images_are_drawn(out02):
    assert out02["ae02-code-denoised-images"]["images"] == 2


# ----------------------------------------------------------------------------- wide code


@pytest.mark.slow
def test_hand_built_copy_and_passed_through_noise(out02):
    """ae02-text-wide-code: the copy's plain loss is 0 and its denoising loss sigma^2,
    'which a real denoiser beats'; the plain model moves toward the copy as it trains
    and the denoising one stays away from it."""
    cell = out02["ae02-code-wide-code"]
    text = cell["text"]
    copy = line_starting(text, "hand-built copy")
    plain_loss, denoising_loss, sigma2, passed = (numbers(copy)[i] for i in (1, 2, 4, 5))
    assert plain_loss == 0.0 and passed == pytest.approx(1.0)
    assert denoising_loss == pytest.approx(sigma2, abs=0.01)
    table = text.split("passed-through noise\n", 1)[1].splitlines()[1:]
    epochs = [numbers(row) for row in table if re.match(r"^\s*\d+\s", row)]
    assert [row[0] for row in epochs] == [1, 2, 3, 4], "students train four epochs"
    assert all(0 <= share <= 1 for row in epochs for share in row[1:]), epochs
    plain, denoising = [row[1] for row in epochs], [row[2] for row in epochs]
    assert all(b > a for a, b in zip(plain, plain[1:], strict=False)), plain
    assert denoising[-1] < 0.6 * plain[-1] and denoising[-1] < 0.1, (plain, denoising)
    for name in ("plain", "denoising"):
        assert f"overcomplete AE, {name}" in text
        line = line_starting(text, f"overcomplete AE, {name:9s}: denoising loss")
        loss = numbers(line.split(":", 1)[1])[0]
        assert loss < sigma2 / 2, (name, loss, sigma2)
    assert cell["images"] == 1


# ----------------------------------------------------------------------------- anomaly AUC


def auc_rows(text: str) -> list[list[float]]:
    """Per seed: seed, plain AUC, denoising AUC, their difference."""
    rows = [numbers(line) for line in text.splitlines() if re.match(r"^\s*\d+\s+0\.\d", line)]
    assert [row[0] for row in rows] == [0, 1, 2], text
    return rows


def auc_summary(text: str) -> tuple[float, float, float]:
    """The mean difference over the seeds, its spread, and the paired standard error."""
    mean, spread = numbers(line_starting(text, "difference (denoising - plain)").split(":")[1])
    paired = numbers(line_starting(text, "paired bootstrap standard error").split(":")[1])[0]
    return mean, spread, paired


@pytest.mark.slow
def test_prints_the_roc_auc_of_both_detectors_with_paired_errors(out02):
    cell = out02["ae02-code-anomaly-auc"]
    text = cell["text"]
    assert "600 normal images, 1800 anomalies" in text
    rows = auc_rows(text)
    for _, plain, denoising, difference in rows:
        assert 0.5 < plain < 1 and 0.5 < denoising < 1
        assert difference == pytest.approx(denoising - plain, abs=2e-4)
    mean, spread, paired = auc_summary(text)
    assert mean == pytest.approx(sum(row[3] for row in rows) / len(rows), abs=2e-4)
    assert 0 < paired < 0.01, "a paired error is far smaller than either AUC's own"
    assert cell["images"] == 1, "the ROC figure is missing"


@pytest.mark.slow
def test_the_plain_ae_is_the_slightly_better_detector(out02):
    """ae02-text-anomaly-auc-result and the model answer: the plain AE's AUC is the higher
    one on every seed; the difference is a few thousandths, about two paired standard
    errors or more, and larger than its spread over the seeds."""
    text = out02["ae02-code-anomaly-auc"]["text"]
    rows = auc_rows(text)
    assert all(plain > denoising for _, plain, denoising, _ in rows), rows
    mean, spread, paired = auc_summary(text)
    assert -0.01 < mean < 0, mean
    assert abs(mean) > 1.8 * paired and abs(mean) > spread, (mean, paired, spread)


# ----------------------------------------------------------------------------- score view


@pytest.mark.slow
def test_score_view_learns_the_score(out02):
    cell = out02["ae02-code-score-view"]
    relative = numbers(line_starting(cell["text"], "relative error"))[-1]
    assert relative < 30, f"{relative}%: the learned score should be close to the exact one"
    assert cell["images"] == 1


def test_score_view_recovers_the_score_when_trained_longer():
    """The 1-D check of 02 at full length: the learned score is close to the exact one."""
    source = cells()["ae02-code-score-view"].source
    source = source.replace("50 if short_training() else 600", "600")
    source = source.split("figure, axis")[0]  # no plot
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "plt": None}
    exec(compile(source, "ae02-code-score-view", "exec"), namespace)  # noqa: S102
    assert namespace["relative"] < 0.3, float(namespace["relative"])


# ----------------------------------------------------------------------------- the text


def test_d_means_pixels_per_image():
    """Every value given to D is 784 (one 28x28 image)."""
    for cell in cells().values():
        for value in re.findall(r"\bD\s*=\s*([^$),;]*)", cell.source):
            assert "784" in value, (cell.id, value)


def test_text_explains_mid_grey_and_cites_the_score_view():
    text = cells()
    assert "mid-grey" in text["ae02-text-mask-patches"].source
    assert "127.5" in text["ae02-text-mask-patches"].source
    assert "mid-grey" in text["ae02-text-dropout-noise"].source
    score = text["ae02-text-score-view"].source
    assert re.search(r"Vincent,\s+2011", score), "Vincent (2011) is not cited"
    assert re.search(r"Alain\s+and\s+Y\.\s+Bengio,\s+2014", score), "Alain and Bengio (2014)"
    assert r"\sigma^2" in score and r"\nabla" in score
    everything = "\n".join(cell.source for cell in text.values())
    assert "Students who passed" not in everything


def test_the_comparison_uses_the_paired_bootstrap_and_the_seed_spread():
    """Item 4 of issue 19: no AUC difference divided by an unpaired standard error."""
    source = cells()["ae02-code-anomaly-auc"].source
    assert "paired_auc_difference" in source and "seed_spread" in source
    assert "auc_standard_error" not in source and "standard errors" not in source
    assert "seed_spread" in cells()["ae02-code-psnr"].source


def test_the_epochs_the_tests_read_are_the_notebooks():
    source = cells()["ae02-code-train-plain-and-denoising"].source
    assert f"scaled_epochs({LATE})" in source and f"min({EARLY}, EPOCHS)" in source
    assert "SEEDS, EPOCHS = (0, 1, 2)" in source


def test_new_cells_are_locked_demonstrations():
    by_id = cells()
    for cell_id in NEW_CODE_CELLS + NEW_TEXT_CELLS:
        cell = by_id[cell_id]
        meta = cell.metadata["nbgrader"]
        assert meta["locked"] and not meta["grade"] and not meta["solution"], cell_id
        assert meta["grade_id"] == cell_id
        if cell.cell_type == "code":
            assert "skip-recheck" in cell.metadata.get("tags", []), cell_id
            assert "points" not in meta
