"""Notebook 01 says what its output shows, at the length students run it.

The notebook runs once per module as a student runs it (no ``HW8_QUICK``, the reference
solutions, without the test cells) in a fresh kernel; each test reads what a cell
printed and checks a sentence of the text (or of the model answer) against it. A test
fails when a change makes the output stop supporting its sentence.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
import torch
from notebook_outputs import line_starting, run_at_student_length
from notebook_outputs import numbers as numbers_with

ROOT = Path(__file__).resolve().parents[1]
NB01 = ROOT / "notebooks" / "hw8" / "01_vanilla_autoencoder.ipynb"
NEW_CODE_CELLS = ("ae01-code-bce-floor", "ae01-code-stable-bce", "ae01-code-bce-training")
NEW_TEXT_CELLS = ("ae01-text-stable-bce", "ae01-text-bce-training")
NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?|nan"


def numbers(line: str) -> list[float]:
    return numbers_with(line, NUMBER)


def cells(path: Path = NB01) -> dict:
    return {cell.id: cell for cell in nbformat.read(path, as_version=4).cells}


@pytest.fixture(scope="module")
def out01(tmp_path_factory, request):
    result = run_at_student_length(NB01, tmp_path_factory.mktemp("nb01"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{NB01.name}: {result['seconds']:.1f} s at student length, without test cells")
    return result


# ----------------------------------------------------------------------------- the losses


@pytest.mark.slow
def test_bce_minimum_is_the_entropy_of_the_target(out01):
    text = out01["ae01-code-bce-floor"]["text"]
    assert "smallest at p = 0.300" in text, text
    minimum, entropy = numbers(line_starting(text, "minimum BCE"))[:2]
    t = 0.3
    assert entropy == pytest.approx(-t * math.log(t) - (1 - t) * math.log(1 - t), abs=1e-6)
    assert minimum == pytest.approx(entropy, abs=1e-6) and minimum > 0.5
    perfect = numbers(line_starting(text, "BCE of a perfect reconstruction"))[0]
    floor = numbers(line_starting(text, "mean binary entropy"))[0]
    assert perfect == pytest.approx(floor, abs=1e-4) and floor > 0.1


@pytest.mark.slow
def test_clamped_log_gives_nan_and_the_logit_route_the_exact_gradient(out01):
    text = out01["ae01-code-stable-bce"]["text"]
    assert "gradients with respect to p: [nan, 2.0]" in text, text
    exact = numbers(line_starting(text, "exact, float64"))[-5:]
    assert exact[0] == pytest.approx(15.0)
    assert exact[1:3] == pytest.approx([-0.25, 0.25])
    for route in ("F.bce_with_logits", "-(x logsigmoid"):
        row = numbers(line_starting(text, route))[-5:]
        assert all(math.isfinite(value) for value in row), row
        assert row == pytest.approx(exact, abs=1e-6), (route, row)
    clamped = numbers(line_starting(text, "your bce_loss"))[-4:]
    assert clamped == [0.0, 0.0, 0.0, 0.0], "the eps clamp should give saturated pixels no gradient"


@pytest.mark.slow
def test_sigmoid_rounds_to_one_above_about_17(out01):
    """'in float32, sigma(l) rounds to exactly 1 once l is above about 17'."""
    line = line_starting(out01["ae01-code-stable-bce"]["text"], "float32: sigmoid(l)")
    found = numbers(line.split("from l =", 1)[1])
    first_one, thirty = found[0], found[-1]
    assert 16.0 < first_one <= 17.5, line
    assert thirty == 1.0, line


@pytest.mark.slow
def test_pytorch_bce_weakens_one_wrong_pixel_and_loses_the_other(out01):
    """ae01-text-stable-bce: l = -30 keeps about 9% of the exact gradient (-2.34e-2 against
    -0.25), its loss 30 exact; l = +30 has its log clamped at -100 (loss 100, mean 32.5)
    and a gradient of exactly 0, because sigmoid'(30) is 0 while d loss / d x_hat is a
    finite 1e12."""
    text = out01["ae01-code-stable-bce"]["text"]
    exact = numbers(line_starting(text, "exact, float64"))[-5:]
    route = numbers(line_starting(text, "F.binary_cross_entropy "))[-5:]
    assert route[0] == pytest.approx(32.5) and exact[0] == pytest.approx(15.0), route
    assert route[1] == pytest.approx(-2.34e-2, rel=0.01), route
    assert route[1] / exact[1] == pytest.approx(0.094, abs=0.005), "about 9% of the exact one"
    assert route[2] == 0.0 and exact[2] == pytest.approx(0.25), "the l = +30 pixel is lost"
    x_hat = numbers(line_starting(text, "x_hat = sigmoid(l)").split(")", 1)[1])
    loss = numbers(line_starting(text, "loss (exact").split(")", 1)[1])
    to_x_hat = numbers(line_starting(text, "d loss / d x_hat").split("x_hat", 1)[1])
    slope = numbers(line_starting(text, "sigmoid'(l)").split(")", 1)[1])
    to_logit = numbers(line_starting(text, "d loss / d l ").split("d l", 1)[1])
    assert 0 < x_hat[0] < 1e-12 and x_hat[1] == 1.0, "sigma(-30) tiny, not 0; sigma(30) == 1"
    assert loss[:2] == pytest.approx([30.0, 100.0], abs=1e-3), "30 exact; 100 at the clamp"
    assert abs(to_x_hat[1]) == pytest.approx(1e12, rel=0.01), "a finite gradient to x_hat"
    assert slope[1] == 0.0 and to_logit[1] == 0.0, "sigmoid'(30) == 0: nothing reaches l"
    assert to_x_hat[0] == pytest.approx(-1e12, rel=0.01), "divided by 1e-12, not sigma(-30)"
    assert to_logit[0] == pytest.approx(4 * route[1], rel=0.01)
    share = line_starting(text, "share of the exact gradient kept")
    kept_minus, kept_plus = numbers(share.split(":", 1)[1])[1::2]
    assert kept_minus == pytest.approx(9.4, abs=0.3) and kept_plus == 0.0, share


def test_the_stable_route_has_finite_gradients_where_the_clamped_log_has_nan():
    """What the text of 01 claims, checked directly in PyTorch."""
    import torch.nn.functional as F

    p = torch.tensor([0.0, 1.0], requires_grad=True)
    torch.log(p).clamp(min=-100).sum().backward()
    assert torch.isnan(p.grad[0])
    logits = torch.tensor([-30.0, 30.0], requires_grad=True)
    F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0])).backward()
    assert torch.allclose(logits.grad, torch.tensor([-0.5, 0.5]))


# ----------------------------------------------------------------------------- the models


@pytest.mark.slow
def test_a_wider_bottleneck_reconstructs_the_test_images_better(out01):
    """ae01-answer-bottleneck: 'with k = 16 the test MSE is lower'."""
    text = out01["ae01-code-reconstructions"]["text"]
    narrow = numbers(line_starting(text, "k =  2:").split("MSE", 1)[1])[0]
    wide = numbers(line_starting(text, "k = 16:").split("MSE", 1)[1])[0]
    assert wide < 0.8 * narrow, (narrow, wide)


@pytest.mark.slow
def test_compares_tanh_mse_with_sigmoid_bce_on_the_same_scale(out01):
    cell = out01["ae01-code-bce-training"]
    text = cell["text"]
    rows = {}
    for name in ("Tanh + MSE", "sigmoid + BCE", "a perfect copy"):
        rows[name] = numbers(line_starting(text, name + " "))[-2:]
    for name in ("Tanh + MSE", "sigmoid + BCE"):
        mse01, bce01 = rows[name]
        assert 0 < mse01 < 1 and math.isfinite(bce01), (name, rows[name])
        assert bce01 >= rows["a perfect copy"][1] - 1e-4, "no model beats the BCE floor"
    assert rows["a perfect copy"][0] == 0.0 and rows["a perfect copy"][1] > 0.1
    assert cell["images"] == 1, "the reconstructions figure is missing"


@pytest.mark.slow
def test_the_two_decoders_land_close_together(out01):
    """ae01-text-bce-training: the gap between the two models is small next to their
    distance from a perfect copy (on the BCE, from the floor)."""
    text = out01["ae01-code-bce-training"]["text"]
    (mse_a, bce_a), (mse_b, bce_b) = (
        numbers(line_starting(text, name + " "))[-2:] for name in ("Tanh + MSE", "sigmoid + BCE")
    )
    floor = numbers(line_starting(text, "a perfect copy "))[-1]
    assert abs(mse_a - mse_b) < 0.2 * min(mse_a, mse_b), (mse_a, mse_b)
    assert abs(bce_a - bce_b) < 0.2 * (min(bce_a, bce_b) - floor), (bce_a, bce_b, floor)


# ----------------------------------------------------------------------------- the text


def test_d_means_pixels_per_image():
    """Every value given to D is 784 (one 28x28 image), and no formula divides by D alone
    where the mean runs over a whole batch."""
    for cell in cells().values():
        for value in re.findall(r"\bD\s*=\s*([^$),;]*)", cell.source):
            assert "784" in value, (cell.id, value)
    mse_test = cells()["ae01-test-mse-loss"].source
    assert '/ D"' not in mse_test and "x.numel()" in mse_test


def test_the_text_gives_the_demo_numbers_it_prints():
    text = cells()["ae01-text-stable-bce"].source
    for shown in ("-2.34 \\cdot 10^{-2}", "-0.25", "9\\%", "32.5", "-100", "10^{-12}"):
        assert shown in text, shown


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
