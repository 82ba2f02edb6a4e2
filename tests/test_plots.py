import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.image import imread

from hw8 import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_reconstructions_accept_uint8_and_normalised_tensors(tmp_path):
    originals = np.zeros((4, 28, 28, 1), np.uint8)
    originals[:, 10:20, 10:20] = 255
    reconstructions = torch.full((4, 1, 28, 28), -1.0)
    figure = plots.plot_reconstructions(originals, reconstructions, tmp_path / "r.png")
    assert len(figure.axes) == 8
    shown = [axis.images[0].get_array() for axis in figure.axes]
    assert np.asarray(shown[0]).max() == 1.0  # white square of the original
    assert np.asarray(shown[4]).max() == 0.0  # all-black reconstruction
    assert imread(tmp_path / "r.png").shape[2] in (3, 4)


def test_to_display_maps_both_conventions_to_unit_range():
    as_uint8 = plots.to_display(np.array([[[[0], [255]]]], np.uint8))
    as_tensor = plots.to_display(torch.tensor([[[[-1.0, 1.0]]]]))
    np.testing.assert_allclose(as_uint8.ravel(), [0, 1])
    np.testing.assert_allclose(as_tensor.ravel(), [0, 1])


def test_roc_histogram_and_loss_figures(tmp_path):
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.3, 0.7, 0.9, 0.2, 0.4])
    roc = plots.plot_roc(labels, {"a": scores, "b": -scores}, tmp_path / "roc.png")
    assert [line.get_label() for line in roc.axes[0].lines] == ["a", "b", "chance"]
    assert roc.axes[0].lines[0].get_ydata()[-1] == 1.0
    hist = plots.plot_score_histograms(labels, scores, tmp_path / "h.png")
    counts = [sum(p.get_height() for p in c) for c in hist.axes[0].containers]
    assert counts == [3, 3]
    loss = plots.plot_loss_curve([1.0, 0.5, 0.25], tmp_path / "l.png")
    assert list(loss.axes[0].lines[0].get_ydata()) == [1.0, 0.5, 0.25]
    for name in ("roc.png", "h.png", "l.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_image_rows_one_row_per_entry_and_latent_scatter(tmp_path):
    uint8 = np.zeros((3, 28, 28, 1), dtype=np.uint8)
    tensor = torch.zeros(5, 1, 28, 28)
    figure = plots.plot_image_rows({"a": uint8, "b": tensor}, path=tmp_path / "rows.png")
    assert (tmp_path / "rows.png").stat().st_size > 0
    assert len(figure.axes) == 2 * 5  # two rows, as wide as the longest
    assert [ax.get_title(loc="left") for ax in figure.axes[::5]] == ["a", "b"]
    codes = torch.randn(30, 2)
    labels = np.arange(30) % 3
    figure = plots.plot_latent_scatter(codes, labels, ("x", "y", "z"), path=tmp_path / "z.png")
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert texts == ["x", "y", "z"] and (tmp_path / "z.png").exists()


# ----------------------------------------------------------------------------- latent space


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
