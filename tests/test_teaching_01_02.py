"""The teaching additions of notebooks 01 and 02: the cells run and print what the text says.

Each notebook's demonstration cells run once (``HW8_QUICK=1``, with the reference
solutions, without the test cells) in a fresh kernel; the tests read what they print. The
text tests check what the prose promises: one meaning of ``D``, mid-grey zeros, the
references of the score view, no anecdote, and the cell metadata of the new cells.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from hw8.datasets import load_bundled
from hw8.device import seed_everything
from hw8.models import Autoencoder
from hw8.train import train

ROOT = Path(__file__).resolve().parents[1]
NB01 = ROOT / "notebooks" / "hw8" / "01_vanilla_autoencoder.ipynb"
NB02 = ROOT / "notebooks" / "hw8" / "02_denoising_autoencoder.ipynb"
NEW_CODE_CELLS = {
    NB01: ("ae01-code-bce-floor", "ae01-code-stable-bce", "ae01-code-bce-training"),
    NB02: ("ae02-code-wide-code", "ae02-code-anomaly-auc", "ae02-code-score-view"),
}
NEW_TEXT_CELLS = {
    NB01: ("ae01-text-stable-bce", "ae01-text-bce-training"),
    NB02: ("ae02-text-wide-code", "ae02-text-anomaly-auc", "ae02-text-score-view"),
}
NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?|nan"


def cells(path: Path) -> dict:
    return {cell.id: cell for cell in nbformat.read(path, as_version=4).cells}


def run_without_tests(path: Path, tmp_path: Path) -> dict[str, dict]:
    """Run every cell but the test cells (HW8_QUICK=1); per cell id its stdout and images."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells = [cell for cell in nb.cells if "-test-" not in cell.id]
    env = {"HW8_QUICK": "1"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    result = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        # stdout only: progress bars go to stderr, and some tqdm versions end theirs without a
        # newline, which would glue the next printed line to the bar
        streams = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
        text = "".join(o.get("text", "") for o in streams)
        images = sum("image/png" in o.get("data", {}) for o in cell.outputs)
        result[cell.id] = {"text": text, "images": images}
    return result


def numbers(line: str) -> list[float]:
    return [float(value) for value in re.findall(NUMBER, line)]


def line_starting(text: str, start: str) -> str:
    found = [line for line in text.splitlines() if line.strip().startswith(start)]
    assert found, f"no line starting with {start!r} in:\n{text}"
    return found[0]


@pytest.fixture(scope="module")
def out01(tmp_path_factory):
    return run_without_tests(NB01, tmp_path_factory.mktemp("nb01"))


@pytest.fixture(scope="module")
def out02(tmp_path_factory):
    return run_without_tests(NB02, tmp_path_factory.mktemp("nb02"))


# ----------------------------------------------------------------------------- 01


def test_01_bce_minimum_is_the_entropy_of_the_target(out01):
    text = out01["ae01-code-bce-floor"]["text"]
    assert "smallest at p = 0.300" in text, text
    minimum, entropy = numbers(line_starting(text, "minimum BCE"))[:2]
    t = 0.3
    assert entropy == pytest.approx(-t * math.log(t) - (1 - t) * math.log(1 - t), abs=1e-6)
    assert minimum == pytest.approx(entropy, abs=1e-6) and minimum > 0.5
    perfect = numbers(line_starting(text, "BCE of a perfect reconstruction"))[0]
    floor = numbers(line_starting(text, "mean binary entropy"))[0]
    assert perfect == pytest.approx(floor, abs=1e-4) and floor > 0.1


def test_01_clamped_log_gives_nan_and_the_logit_route_the_exact_gradient(out01):
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
    torch_bce = numbers(line_starting(text, "F.binary_cross_entropy"))[-4:]
    assert torch_bce[1] == 0.0 and abs(torch_bce[0]) < 0.1, torch_bce


def test_01_compares_tanh_mse_with_sigmoid_bce_on_the_same_scale(out01):
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


def test_the_stable_route_has_finite_gradients_where_the_clamped_log_has_nan():
    """What the text of 01 claims, checked directly in PyTorch."""
    import torch.nn.functional as F

    p = torch.tensor([0.0, 1.0], requires_grad=True)
    torch.log(p).clamp(min=-100).sum().backward()
    assert torch.isnan(p.grad[0])
    logits = torch.tensor([-30.0, 30.0], requires_grad=True)
    F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0])).backward()
    assert torch.allclose(logits.grad, torch.tensor([-0.5, 0.5]))


# ----------------------------------------------------------------------------- 02


def test_02_hand_built_copy_and_passed_through_noise(out02):
    cell = out02["ae02-code-wide-code"]
    text = cell["text"]
    copy = line_starting(text, "hand-built copy")
    plain_loss, denoising_loss, sigma2, passed = (numbers(copy)[i] for i in (1, 2, 4, 5))
    assert plain_loss == 0.0 and passed == pytest.approx(1.0)
    assert denoising_loss == pytest.approx(sigma2, abs=0.01)
    table = text.split("passed-through noise\n", 1)[1].splitlines()[1:]
    epochs = [numbers(row) for row in table if re.match(r"^\s*\d+\s", row)]
    assert len(epochs) == 1, "HW8_QUICK trains one epoch"
    assert all(0 <= share <= 1 for row in epochs for share in row[1:]), epochs
    for name in ("plain", "denoising"):
        assert f"overcomplete AE, {name}" in text
    assert cell["images"] == 1


def test_02_prints_the_roc_auc_of_both_detectors(out02):
    cell = out02["ae02-code-anomaly-auc"]
    text = cell["text"]
    aucs = {}
    for name in ("plain AE", "denoising AE"):
        auc, error = numbers(line_starting(text, name).split("AUC", 1)[1])[:2]
        assert 0 < auc < 1 and 0 < error < 0.05, (name, auc, error)
        aucs[name] = auc
    difference = numbers(line_starting(text, "difference").split(":", 1)[1])[0]
    assert difference == pytest.approx(aucs["denoising AE"] - aucs["plain AE"], abs=2e-4)
    assert "600 normal images, 1800 anomalies" in text
    assert cell["images"] == 1, "the ROC figure is missing"


def test_02_score_view_cell_learns_and_draws(out02):
    cell = out02["ae02-code-score-view"]
    relative = numbers(line_starting(cell["text"], "relative error"))[-1]
    assert math.isfinite(relative)
    assert cell["images"] == 1


def test_score_view_recovers_the_score_when_trained_longer():
    """The 1-D check of 02 at full length: the learned score is close to the exact one."""
    source = cells(NB02)["ae02-code-score-view"].source
    source = source.replace("50 if short_training() else 600", "600")
    source = source.split("figure, axis")[0]  # no plot
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "plt": None}
    exec(compile(source, "ae02-code-score-view", "exec"), namespace)  # noqa: S102
    assert namespace["relative"] < 0.3, float(namespace["relative"])


def test_train_calls_on_epoch_after_every_epoch():
    class Tiny(Autoencoder):
        name = "tiny"

        def __init__(self):
            super().__init__((1, 28, 28))
            self.layer = torch.nn.Linear(784, 784)

        def forward(self, x):
            return self.layer(x.flatten(1)).view_as(x)

    seen = []
    model = Tiny()

    def on_epoch(epoch, loss):
        seen.append((epoch, loss))
        model.eval()

    seed_everything(0)
    images = load_bundled().train_images[:64]
    losses = train(model, images, epochs=3, batch_size=32, progress=False, on_epoch=on_epoch)
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert np.allclose([loss for _, loss in seen], losses)
    assert model.training is False  # train() ends in eval mode, as before


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize("path", [NB01, NB02], ids=lambda path: path.stem)
def test_d_means_pixels_per_image(path):
    """Every value given to D is 784 (one 28x28 image), and no formula divides by D alone
    where the mean runs over a whole batch."""
    for cell in cells(path).values():
        for value in re.findall(r"\bD\s*=\s*([^$),;]*)", cell.source):
            assert "784" in value, (cell.id, value)
    mse_test = cells(NB01)["ae01-test-mse-loss"].source
    assert '/ D"' not in mse_test and "x.numel()" in mse_test


def test_02_text_explains_mid_grey_and_cites_the_score_view():
    text = cells(NB02)
    assert "mid-grey" in text["ae02-text-mask-patches"].source
    assert "127.5" in text["ae02-text-mask-patches"].source
    assert "mid-grey" in text["ae02-text-dropout-noise"].source
    score = text["ae02-text-score-view"].source
    assert re.search(r"Vincent,\s+2011", score), "Vincent (2011) is not cited"
    assert re.search(r"Alain\s+and\s+Y\.\s+Bengio,\s+2014", score), "Alain and Bengio (2014)"
    assert r"\sigma^2" in score and r"\nabla" in score
    everything = "\n".join(cell.source for cell in text.values())
    assert "Students who passed" not in everything


@pytest.mark.parametrize("path", [NB01, NB02], ids=lambda path: path.stem)
def test_new_cells_are_locked_demonstrations(path):
    by_id = cells(path)
    for cell_id in NEW_CODE_CELLS[path] + NEW_TEXT_CELLS[path]:
        cell = by_id[cell_id]
        meta = cell.metadata["nbgrader"]
        assert meta["locked"] and not meta["grade"] and not meta["solution"], cell_id
        assert meta["grade_id"] == cell_id
        if cell.cell_type == "code":
            assert "skip-recheck" in cell.metadata.get("tags", []), cell_id
            assert "points" not in meta
