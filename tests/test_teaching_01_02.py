"""What is left here of the teaching tests of notebooks 01 and 02.

The tests of what the two notebooks print and say moved to tests/test_notebook_01.py and
tests/test_notebook_02.py, which run each notebook at the length students run it.
The training loop's ``on_epoch`` hook, which notebook 02 relies on, is tested here.
"""

from __future__ import annotations

import numpy as np
import torch

from hw8.datasets import load_bundled
from hw8.device import seed_everything
from hw8.models import Autoencoder
from hw8.train import train


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
