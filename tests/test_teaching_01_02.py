"""What is left here of the teaching tests of notebooks 01 and 02.

The tests of what the two notebooks print and say moved to tests/test_notebook_01.py and
tests/test_notebook_02.py, which run each notebook at the length students run it.
``run_without_tests`` stays for anyone who wants a notebook's printed output under
``HW8_QUICK=1``; the training loop's ``on_epoch`` hook, which notebook 02 relies on, is
tested here.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import numpy as np
import torch

from hw8.datasets import load_bundled
from hw8.device import seed_everything
from hw8.models import Autoencoder
from hw8.train import train

ROOT = Path(__file__).resolve().parents[1]
NB01 = ROOT / "notebooks" / "hw8" / "01_vanilla_autoencoder.ipynb"
NB02 = ROOT / "notebooks" / "hw8" / "02_denoising_autoencoder.ipynb"


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
