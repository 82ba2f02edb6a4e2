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
