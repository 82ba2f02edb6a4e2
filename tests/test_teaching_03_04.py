"""What notebooks 03 (VAE) and 04 (ELBO) rely on from the package: the sample VAE's KL
weight and the figure helpers of ``hw8.plots``.

The notebooks' own demonstrations are checked on their output at student length in
tests/test_notebook_03.py and tests/test_notebook_04.py (the tests that lived here moved
there).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hw8 import plots  # noqa: E402
from hw8.models import build_model, kl_to_prior  # noqa: E402


def test_sample_vae_loss_weighs_the_kl_n_times_d_over_2():
    torch.manual_seed(0)
    model = build_model("vae", (1, 28, 28))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    n, d = x.shape[0], 784
    torch.manual_seed(1)
    loss = model.loss(x)
    torch.manual_seed(1)
    x_hat, mu, logvar = model(x)
    beta_vae = (0.5 * (x_hat - x).pow(2).sum() + n * d / 2 * kl_to_prior(mu, logvar).sum()) / n
    assert (loss * d / 2).item() == pytest.approx(beta_vae.item(), rel=1e-5)


# ----------------------------------------------------------------------------- plots


def test_latent_grid_covers_the_prior_by_equal_mass():
    values, codes = plots.latent_grid(5, dims=(2, 0), latent=4)
    probabilities = torch.distributions.Normal(0.0, 1.0).cdf(values)
    np.testing.assert_allclose(probabilities, np.linspace(0.05, 0.95, 5), atol=1e-6)
    grid = codes.view(5, 5, 4)
    assert torch.equal(grid[0, :, 2], values)  # first dim of `dims` along the columns
    assert torch.equal(grid[:, 0, 0], values.flip(0))  # second down the rows, largest on top
    assert not grid[..., [1, 3]].any(), "other dimensions stay at the prior mean"


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"dims": (0, 0)}, {"dims": (0, 2)}, {"edge": 0.5}])
def test_latent_grid_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="latent_grid"):
        plots.latent_grid(**kwargs)


def test_plot_latent_grid_tiles_one_decoded_image_per_code():
    seen = []

    def decode(z):
        seen.append(z.shape)
        return torch.tanh(z[:, :1, None, None]).expand(-1, 1, 7, 7)

    figure = plots.plot_latent_grid(decode, latent=3, n=4)
    assert seen == [torch.Size([16, 3])]
    mosaic = np.asarray(figure.axes[0].images[0].get_array())
    assert mosaic.shape == (28, 28)
    assert mosaic[0, 0] < mosaic[0, -1], "z_1 grows from left to right"
    plt.close(figure)


def test_plot_kl_per_dimension_sorts_each_model_and_marks_the_threshold():
    figure = plots.plot_kl_per_dimension(
        {"a": torch.tensor([0.001, 2.0, 0.5]), "b": [1.0, 3.0]}, 0.01
    )
    lines = figure.axes[0].lines
    assert [line.get_label() for line in lines] == ["a", "b", "active above"]
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 0.5, 0.001])
    assert figure.axes[0].get_yscale() == "log"
    assert math.isclose(lines[2].get_ydata()[0], 0.01)
    plt.close(figure)
