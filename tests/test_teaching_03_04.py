"""The teaching demonstrations of notebooks 03 (VAE) and 04 (ELBO) show what their text says.

The notebooks run once each with ``HW8_QUICK=1`` (short training), and the numbers they
print are read back: the KL check by sampling, the sample VAE's KL weight, the IWAE
bounds on a trained VAE (non-decreasing in k), the anomaly-score AUC comparison, the
encoder steps against the exact gap. Posterior collapse needs real training, so the beta
sweep's own code (notebook 03's cells, executed here) runs once more without the quick
switch, for the settings the notebook uses. The new figure helpers of ``hw8.plots`` are
tested at the end.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hw8 import plots  # noqa: E402
from hw8.models import build_model, kl_to_prior  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NB03 = ROOT / "notebooks" / "hw8" / "03_variational_autoencoder.ipynb"
NB04 = ROOT / "notebooks" / "hw8" / "04_elbo.ipynb"
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def run_quick(path: Path, tmp_path: Path, monkeypatch) -> dict[str, str]:
    """Run a notebook with HW8_QUICK=1 in a scratch folder; return each cell's text output."""
    monkeypatch.setenv("HW8_QUICK", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    texts = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
        figures = sum(
            o.output_type == "display_data" and "image/png" in o.data for o in cell.outputs
        )
        texts[cell.id] = "".join(parts) + "\n<figure>" * figures
    return texts


@pytest.fixture(scope="module")
def outputs03(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return run_quick(NB03, tmp_path_factory.mktemp("nb03"), monkeypatch)


@pytest.fixture(scope="module")
def outputs04(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return run_quick(NB04, tmp_path_factory.mktemp("nb04"), monkeypatch)


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(NUMBER, text)]


# ----------------------------------------------------------------------------- notebook 03


def test_03_kl_by_sampling_agrees_with_the_closed_forms(outputs03):
    text = outputs03["ae03-code-kl-two-gaussians"]
    pairs = re.findall(
        rf"Monte Carlo ({NUMBER}) \+- ({NUMBER}) \(standard error\); closed form ({NUMBER})", text
    )
    assert len(pairs) == 2, text
    for monte_carlo, error, closed in map(lambda p: map(float, p), pairs):
        assert abs(monte_carlo - closed) < 5 * error, text
    yours = float(re.search(rf"your gaussian_kl: ({NUMBER})", text).group(1))
    assert yours == pytest.approx(float(pairs[0][2]), abs=1e-3)
    reverse = [float(v) for v in re.findall(rf"KL\(p \|\| q\) = ({NUMBER})", text)]
    assert len(reverse) == 2 and all(
        abs(r - float(p[2])) > 0.1 for r, p in zip(reverse, pairs, strict=True)
    )


def test_03_sample_loss_times_d_over_2_is_vae_loss_with_beta_nd_over_2(outputs03):
    text = outputs03["ae03-code-sample-loss-weight"]
    sample = float(re.search(rf"sample loss x D/2:\s+({NUMBER})", text).group(1))
    yours = float(re.search(rf"beta = N D/2 = 25088: ({NUMBER})", text).group(1))
    assert sample == pytest.approx(yours, rel=1e-4)
    assert "beta = 1.23e+07" in text  # 2000 * 12288 / 2
    smallest = numbers(text.split("smallest mean")[1])
    assert min(smallest) >= 0, "the sample's ReLU heads are never negative"


def test_03_shows_the_latent_grid_the_sweep_and_the_warm_up(outputs03):
    assert outputs03["ae03-code-latent-grid"].endswith("<figure>")
    sweep = outputs03["ae03-code-beta-sweep"]
    for beta in ("0.1", "1.0", "4.0"):
        assert re.search(rf"beta = {beta}\s+{NUMBER}\s+{NUMBER}\s+\d+/16", sweep), sweep
    assert sweep.endswith("<figure>")
    warm = outputs03["ae03-code-kl-annealing"]
    assert (
        re.search(rf"beta = 1, warm-up\s+{NUMBER}", warm) and "warm-up minus constant beta" in warm
    )
    assert warm.endswith("<figure>")


def sweep_namespace(monkeypatch) -> dict:
    """Notebook 03's setup, solution and sweep cells, run as a student runs them."""
    monkeypatch.delenv("HW8_QUICK", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    cells = {cell.id: cell.source for cell in nbformat.read(NB03, as_version=4).cells}
    namespace: dict = {}
    for cell_id in (
        "ae03-code-setup",
        "ae03-solution-reparameterize",
        "ae03-solution-gaussian-kl",
        "ae03-solution-vae-loss",
        "ae03-solution-vae-model",
        "ae03-code-beta-sweep-setup",
    ):
        exec(compile(cells[cell_id], cell_id, "exec"), namespace)
    return namespace


def test_03_beta_sweep_shows_posterior_collapse_and_the_warm_up_revives_it(monkeypatch):
    torch.set_num_threads(1)
    ns = sweep_namespace(monkeypatch)
    low, high = ns["measure"](ns["fit_vae"](0.1)), ns["measure"](ns["fit_vae"](4.0))
    assert high["active"] < low["active"], (low["active"], high["active"])
    assert high["kl"].min() < ns["ACTIVE_NATS"] < low["kl"].min()
    assert high["sigma"] > 0.9 > 0.3 > low["sigma"], "collapsed posteriors are as wide as the prior"
    assert high["reconstruction"] > low["reconstruction"]
    constant, warm = (
        ns["measure"](ns["fit_vae"](1.0)),
        ns["measure"](ns["fit_vae"](1.0, warmup=0.5)),
    )
    assert warm["kl"].sum() > constant["kl"].sum()
    assert warm["kl"].min() > constant["kl"].min()
    assert warm["reconstruction"] < constant["reconstruction"]


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


# ----------------------------------------------------------------------------- notebook 04


def test_04_encoder_steps_close_the_gap_to_the_mean_field_limit(outputs04):
    text = outputs04["ae04-code-training-steps"]
    rows = re.findall(rf"^\s*(\d+)\s+(?:{NUMBER}\s+)?({NUMBER})\s+({NUMBER})$", text, re.MULTILINE)
    gaps = [float(gap) for _step, _elbo, gap in rows]
    assert len(gaps) == 9 and gaps[-1] < gaps[0] and min(gaps) > 0, text
    assert re.search(r"steps that lowered the exact ELBO: \d+ of 40", text)
    assert re.search(
        rf"decoder step: ELBO \+{NUMBER}, log p\(x\) {NUMBER}, gap {NUMBER} \((grew|shrank)\)", text
    )


def test_04_iwae_bounds_of_the_trained_vae_never_fall_with_k(outputs04):
    text = outputs04["ae04-code-vae-bounds"]
    rows = re.findall(rf"^\s*(\d+)\s+({NUMBER})\s+({NUMBER})$", text, re.MULTILINE)
    ks = [int(k) for k, _, _ in rows]
    assert ks[:3] == [1, 2, 5] and ks == sorted(ks), text
    for column in (1, 2):
        values = [float(row[column]) for row in rows]
        assert all(b >= a - 1e-3 for a, b in zip(values, values[1:], strict=False)), values
        assert values[-1] > values[0]


def test_04_compares_likelihood_and_reconstruction_error_as_anomaly_scores(outputs04):
    text = outputs04["ae04-code-likelihood-scores"]
    aucs = dict(re.findall(rf"ROC AUC of (.+?)\s+({NUMBER}) \+- {NUMBER}", text))
    assert set(aucs) == {"reconstruction error", "-ELBO", "-L_10 (IWAE)"}, aucs
    assert all(0.5 < float(v) <= 1 for v in aucs.values()), aucs
    difference = re.search(
        rf"AUC\(-ELBO\) - AUC\(reconstruction error\) = ({NUMBER}) \+- ({NUMBER})", text
    )
    assert difference is not None
    expected = float(aucs["-ELBO"]) - float(aucs["reconstruction error"])
    assert float(difference.group(1)) == pytest.approx(expected, abs=2e-4)
    assert "<figure>" in text
    table = re.findall(rf"^(.+?)\s+(\d+)\s+({NUMBER})\s+({NUMBER})%$", text, re.MULTILINE)
    assert len(table) == 10 and table[0][0].startswith("T-shirt") and table[0][3] == "50.0"
    assert sum(int(row[1]) for row in table) == 2400


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
