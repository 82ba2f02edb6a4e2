"""Notebook 04 (the ELBO) says what its output shows: every relation the text states
between printed numbers is asserted here, on the output of one run at student length.

The notebook runs once per module, as a student runs it (no ``HW8_QUICK``, full
training), with the test cells left out (they are the exercises' business, not the
demonstrations'). Each test reads the lines a cell printed and checks the sentence of
the text beside it; the sentence is quoted in the test's docstring.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from notebook_outputs import line_starting, run_at_student_length
from notebook_outputs import numbers as numbers_with

ROOT = Path(__file__).resolve().parents[1]
NB04 = ROOT / "notebooks" / "hw8" / "04_elbo.ipynb"
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def numbers(line: str) -> list[float]:
    return numbers_with(line, NUMBER)


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out04(tmp_path_factory):
    return run_at_student_length(NB04, tmp_path_factory.mktemp("nb04"))


def line_with(text: str, start: str, inside: str) -> str:
    """The first line that starts with ``start`` and holds ``inside``."""
    found = [
        line for line in text.splitlines() if line.strip().startswith(start) and inside in line
    ]
    assert found, f"no line starting with {start!r} and holding {inside!r} in:\n{text}"
    return found[0]


LOG_PX = -4.3013


# ----------------------------------------------------------------------------- section 3


def test_04_gap_equals_the_kl_to_the_posterior_up_to_monte_carlo_error(out04):
    """ae04-text-gap-is-kl: "The last two columns should agree up to Monte Carlo error";
    the model answer of question 1: a posterior correlation "about -0.84" and a best
    diagonal q that "keeps a positive KL (about 0.6 nats here)". The allowed error is
    three standard errors of a 100,000-sample ELBO estimate (log-weights of standard
    deviation about 16 for the prior, 0.8 for the mean-field q)."""
    text = out04["ae04-code-gap-is-kl"]["text"]
    allowed = {"prior N(0, I)": 0.15, "mean-field (diagonal)": 0.01, "true posterior": 1e-4}
    for name, tolerance in allowed.items():
        elbo, gap, kl = numbers(line_starting(text, name).removeprefix(name))
        assert gap == pytest.approx(LOG_PX - elbo, abs=1e-4)
        assert abs(gap - kl) < tolerance, (name, gap, kl)
    assert numbers(line_starting(text, "mean-field (diagonal)"))[-1] == pytest.approx(0.6, abs=0.05)
    posterior = out04["ae04-code-posterior-of-x"]["text"]
    variance_1, covariance, _, variance_2 = numbers(posterior.split("covariance")[1])
    assert covariance / math.sqrt(variance_1 * variance_2) == pytest.approx(-0.84, abs=0.01)


def test_04_encoder_steps_half_go_the_wrong_way_late_and_more_samples_wander_less(out04):
    """ae04-text-training-steps: "The exact ELBO climbs in the first steps, where the
    gradient is large and few steps go the wrong way. Then the gap levels off above the
    gap of the best mean-field q ... and about half of the later steps lower the exact
    ELBO, with 64 samples as with 4 ... with 64 samples the gap of the last 20 steps stays
    closer to its floor." """
    text = out04["ae04-code-training-steps"]["text"]
    rows = re.findall(rf"^\s*(\d+)\s+(?:{NUMBER}\s+)?({NUMBER})\s+({NUMBER})$", text, re.MULTILINE)
    steps = [int(step) for step, _, _ in rows]
    assert steps == list(range(0, 41, 5)), text
    elbos = [float(elbo) for _, elbo, _ in rows]
    gaps = [float(gap) for _, _, gap in rows]
    floor = numbers(line_starting(text, "gap of the best mean-field q"))[0]
    assert 0.55 < floor < 0.65, floor
    assert elbos[1] > elbos[0] + 5, "the exact ELBO climbs in the first steps"
    assert all(gap > floor for gap in gaps), (gaps, floor)
    summary = {}
    for samples in (4, 64):
        line = line_starting(text, f"{samples} ")
        _, early, ten, late, thirty, mean_gap = numbers(line)
        assert (ten, thirty) == (10, 30), line
        summary[samples] = (early, late, mean_gap)
        assert early <= 3, f"few early steps go the wrong way: {line}"
        assert 9 <= late <= 21, f"about half of the last 30 steps lower the ELBO: {line}"
        assert mean_gap > floor, line
    assert summary[64][2] < summary[4][2], "64 samples wander less than 4"


def test_04_decoder_steps_raise_the_elbo_and_can_open_the_gap(out04):
    """ae04-text-training-steps (b): "the ELBO rises ... From the exact posterior the gap
    was 0 and can only grow: the step raises log p(x) and opens a small gap ... From the
    prior the ELBO rises most, almost all of it by closing the gap, while log p(x)
    falls." """
    text = out04["ae04-code-training-steps"]["text"]
    changes = {}
    for start in ("q after (a)", "the exact posterior", "the prior"):
        line = line_starting(text, f"decoder step from {start}:")
        elbo, log_px, gap = numbers(line.split(":", 1)[1])
        assert elbo == pytest.approx(log_px - gap, abs=2e-4), line
        assert line.endswith("(grew)" if gap > 0 else "(shrank)"), line
        assert elbo > 0, f"a step on the exact ELBO raises it: {line}"
        changes[start] = (elbo, log_px, gap)
    elbo, log_px, gap = changes["the exact posterior"]
    assert gap > 0 and log_px > 0, changes
    elbo, log_px, gap = changes["the prior"]
    assert elbo == max(change[0] for change in changes.values())
    assert log_px < 0 and -gap > 0.9 * elbo, changes


# ----------------------------------------------------------------------------- section 4


def test_04_prior_overtakes_the_mean_field_q_and_a_single_estimate_can_exceed_the_bound(out04):
    """ae04-text-bounds-figure: both curves rise; "For small K the mean-field q is ahead,
    but the prior overtakes it (the cell prints from which K), comes within 0.02 nats of
    log p(x) at K = 200, while the mean-field q stays more than 0.1 nats away"; the
    smallest eigenvalue is negative for the mean-field q; "for the prior at K = 200,
    about half of them land above log p(x) ... the mean of 10,000 lies a few standard
    errors below log p(x), while a mean of 500 has a standard error of the same size as
    that distance"."""
    out = out04["ae04-code-bounds-figure"]
    text = out["text"]
    assert out["images"] == 1
    log_px = numbers(line_starting(text, "log p(x) ="))[0]
    assert log_px == pytest.approx(LOG_PX, abs=1e-4)
    rows = re.findall(
        rf"^\s*(\d+)\s+({NUMBER}) \+- ({NUMBER})\s+({NUMBER}) \+- ({NUMBER})$", text, re.MULTILINE
    )
    ks = [int(row[0]) for row in rows]
    assert ks == [1, 2, 5, 10, 20, 50, 100, 200], text
    prior = [float(row[1]) for row in rows]
    field = [float(row[3]) for row in rows]
    prior_se = [float(row[2]) for row in rows]
    for curve in (prior, field):
        assert all(b > a for a, b in zip(curve, curve[1:], strict=False)), curve
        assert all(value < log_px for value in curve), curve
    # "L_1 = ELBO": each curve starts at its q's ELBO of section 3 (a 100,000-sample
    # estimate there), so the curves use the q they are labelled with
    table = out04["ae04-code-gap-is-kl"]["text"]
    field_se = [float(row[4]) for row in rows]
    for name, start, error in (
        ("prior N(0, I)", prior[0], prior_se[0]),
        ("mean-field", field[0], field_se[0]),
    ):
        elbo = numbers(line_starting(table, name))[-3]
        assert abs(start - elbo) < 4 * error + 0.05, (name, start, elbo)
    # the text: the mean-field q is ahead at small K, the prior overtakes it (from the K
    # the cell prints) and stays ahead
    field_ahead = numbers(line_starting(text, "mean-field q ahead by more than 2"))[1:]
    prior_ahead = numbers(line_starting(text, "prior ahead by more than 2"))[1:]
    assert field_ahead[:1] == [1.0] and prior_ahead[-1] == 200, (field_ahead, prior_ahead)
    assert max(field_ahead) < min(prior_ahead), (field_ahead, prior_ahead)
    assert log_px - prior[-1] < 0.02 and log_px - field[-1] > 0.1, (prior[-1], field[-1])
    assert numbers(line_starting(text, "prior N(0, I): smallest eigenvalue"))[-1] > 0
    assert "weights of finite variance" in line_starting(text, "prior N(0, I): smallest")
    assert numbers(line_starting(text, "mean-field (diagonal): smallest eigenvalue"))[-1] < 0
    assert "infinite variance" in line_starting(text, "mean-field (diagonal): smallest")
    line = line_starting(text, "prior, K = 200:")
    share = float(re.search(r"(\d+)% of 400 single estimates lie above", line).group(1))
    assert 30 <= share <= 70, line
    distance = float(re.search(rf"lies ({NUMBER}) below it", line).group(1))
    error = float(re.search(rf"\(standard error ({NUMBER})\)", line).group(1))
    error_500 = float(re.search(rf"a mean of 500 has standard error ({NUMBER})", line).group(1))
    assert distance == pytest.approx(log_px - prior[-1], abs=2e-4)
    assert error == pytest.approx(prior_se[-1], abs=1e-4)
    assert distance > 2.5 * error, "a few standard errors below log p(x)"
    assert distance / 3 < error_500 < 3 * distance, "of the same size as that distance"


# ----------------------------------------------------------------------------- section 5


def test_04_vae_loss_prints_the_constant_it_includes(out04):
    text = out04["ae04-code-vae-model"]["text"]
    pattern = rf"final loss .* ({NUMBER}) nats = ({NUMBER}) .* \+ ({NUMBER}) \(the constant"
    match = re.search(pattern, text)
    assert match is not None, text
    total, part, constant = map(float, match.groups())
    assert constant == pytest.approx(0.5 * 784 * math.log(2 * math.pi), abs=0.05)
    assert total == pytest.approx(part + constant, abs=0.11)


def test_04_iwae_bounds_of_the_trained_vae_never_fall_with_k(out04):
    """ae04-text-vae-bounds: "bounds that never fall as k grows ... averaged over hundreds
    of images the printed ones do not either ... the anomalies' bound climbing
    further", "most of the rise at small k". (Moved from test_teaching_03_04.py, now at
    student length.)"""
    text = out04["ae04-code-vae-bounds"]["text"]
    rows = re.findall(rf"^\s*(\d+)\s+({NUMBER})\s+({NUMBER})$", text, re.MULTILINE)
    ks = [int(k) for k, _, _ in rows]
    assert ks == [1, 2, 5, 10, 50, 100], text
    for column in (1, 2):
        values = [float(row[column]) for row in rows]
        assert all(b >= a for a, b in zip(values, values[1:], strict=False)), values
        assert values[-1] > values[0]
    normal_rise, anomaly_rise = numbers(line_starting(text, "L_100 - L_1:").split(":")[1])
    assert anomaly_rise > normal_rise > 0, text
    seeds = line_starting(text, "over 3 training seeds")
    normal_mean, normal_spread, anomaly_mean, anomaly_spread = numbers(seeds)[-4:]
    assert normal_mean > 0 and anomaly_mean - normal_mean > anomaly_spread + normal_spread, seeds
    for column in (1, 2):  # "most of the rise at small k": more up to k = 10 than after it
        bound = {int(row[0]): float(row[column]) for row in rows}
        assert bound[10] - bound[1] > bound[100] - bound[10], bound


# ----------------------------------------------------------------------------- section 6


def test_04_likelihood_ranks_like_reconstruction_error_and_is_worse_than_uniform(out04):
    """ae04-text-likelihood-scores: "the likelihood scores differ from reconstruction
    error by about a thousandth of AUC, much less than either AUC's own standard error;
    and with sigma_x = 1 the VAE is a worse density model of its own normal test images
    than 'every image is equally likely'." Plus the per-class table: "None of the nine
    gets there: shirts, the class closest to T-shirts, come nearest." """
    out = out04["ae04-code-likelihood-scores"]
    text = out["text"]
    assert out["images"] == 1
    aucs = {
        name: (float(auc), float(error))
        for name, auc, error in re.findall(rf"ROC AUC of (.+?)\s+({NUMBER}) \+- ({NUMBER})", text)
    }
    assert set(aucs) == {"reconstruction error", "-ELBO", "-L_100 (IWAE)"}, aucs
    assert all(0.5 < auc <= 1 for auc, _ in aucs.values()), aucs
    smallest_error = min(error for _, error in aucs.values())
    for name in ("-ELBO", "-L_100 (IWAE)"):
        match = re.search(
            rf"AUC\({re.escape(name)}\) - AUC\(reconstruction error\) = ({NUMBER}) \+- ({NUMBER})",
            text,
        )
        assert match is not None, text
        difference, paired = float(match.group(1)), float(match.group(2))
        expected = aucs[name][0] - aucs["reconstruction error"][0]
        assert difference == pytest.approx(expected, abs=2e-4)
        assert abs(difference) < 0.004 and abs(difference) < smallest_error / 2, text
        assert 0 < paired < smallest_error, "the paired error is far smaller than each AUC's"
    match = re.search(
        rf"normal test image: ({NUMBER}) nats = ({NUMBER}) \+ the constant ({NUMBER}); "
        rf"uniform density on \[-1, 1\]\^784: ({NUMBER}) nats",
        text,
    )
    assert match is not None, text
    nats, part, constant, uniform = map(float, match.groups())
    assert uniform == pytest.approx(784 * math.log(2), abs=0.05)
    assert constant == pytest.approx(720.4, abs=0.05)
    assert nats == pytest.approx(part + constant, abs=0.11)
    assert nats > uniform, "worse than the uniform density"
    table = re.findall(rf"^(.+?)\s+(\d+)\s+({NUMBER})\s+({NUMBER})%$", text, re.MULTILINE)
    assert len(table) == 10 and table[0][0].startswith("T-shirt") and table[0][3] == "50.0"
    assert sum(int(row[1]) for row in table) == 2400
    shares = {row[0].strip(): float(row[3]) for row in table[1:]}
    assert max(shares.values()) < 50, shares
    assert max(shares, key=shares.get) == "Shirt", shares
    assert all(float(row[2]) > float(table[0][2]) for row in table[1:]), "no class more likely"


# ----------------------------------------------------------------------------- section 7


def test_04_fitted_decoder_variance_gives_fewer_bits_and_sigma_1_is_a_beta(out04):
    """ae04-text-nats-and-beta: "with sigma_x = 1 the model costs more bits than the
    uniform density; the same network with the fitted sigma_x costs fewer, and with a
    variance per pixel fewer still ... Retrained at the lower price, the VAE puts about
    twice as many nats into its code (the KL), reconstructs slightly better, and is the
    better density in every seed." """
    text = out04["ae04-code-nats-and-beta"]["text"]
    match = re.search(rf"fitted sigma_x = ({NUMBER}) \(sigma_x\^2 = ({NUMBER})\)", text)
    assert match is not None, text
    sigma, sigma2 = map(float, match.groups())
    assert sigma**2 == pytest.approx(sigma2, rel=0.01) and 0.2 < sigma < 0.4
    names = ("sigma_x = 1 ", "fitted sigma_x ", "fitted, one per pixel", "uniform")
    bits = {name: numbers(line_with(text, name, " nats "))[-1] for name in names}
    nats = {name: numbers(line_with(text, name, " nats "))[-2] for name in names}
    assert bits["uniform"] == pytest.approx(7.99, abs=0.005)
    assert nats["uniform"] == pytest.approx(784 * math.log(2), abs=0.05)
    for name in bits:  # bits per dimension from nats, as the text defines them
        expected = nats[name] / (784 * math.log(2)) + math.log2(127.5)
        assert bits[name] == pytest.approx(expected, abs=0.006), name
    assert (
        bits["sigma_x = 1 "]
        > bits["uniform"]
        > bits["fitted sigma_x "]
        > bits["fitted, one per pixel"]
    ), bits
    beta = numbers(line_starting(text, "sigma_x = 1 is, in units"))[-1]
    assert beta == pytest.approx(1 / sigma2, rel=0.02)
    rows = re.findall(
        rf"^\s*(\d)\s+({NUMBER}) ->\s+({NUMBER})\s+({NUMBER}) -> ({NUMBER})"
        rf"\s+({NUMBER}) ->\s+({NUMBER})$",
        text,
        re.MULTILINE,
    )
    assert [int(row[0]) for row in rows] == [0, 1, 2], text
    for _, kl, kl_after, error, error_after, nll, nll_after in (map(float, r) for r in rows):
        assert 1.5 < kl_after / kl < 2.5, "about twice as many nats in the code"
        assert error_after < error, "reconstructs slightly better"
        assert nll_after < nll, "the better density"


def test_04_a_variance_per_pixel_makes_the_likelihood_differ_from_reconstruction(out04):
    """ae04-text-variance-scores: "with sigma_x = 1 the difference is about a thousandth,
    with the fitted sigma_x it is closer to zero still, and with a variance per pixel the
    likelihood ranks anomalies differently from reconstruction error, better by about a
    hundredth of AUC, several paired standard errors, in every seed." """
    text = out04["ae04-code-variance-scores"]["text"]
    rows = {}
    for name in ("sigma_x = 1", "fitted sigma_x", "per pixel"):
        line = line_starting(text, name)
        estimates = re.findall(rf"({NUMBER}) \+- ({NUMBER})", line)
        assert len(estimates) == 3, line
        mean, spread = numbers(line)[-2:]
        rows[name] = ([(float(v), float(e)) for v, e in estimates], mean, spread)
    one, fitted, pixel = rows.values()
    assert 0 < one[1] < 0.005, one
    assert abs(fitted[1]) < abs(one[1]), (fitted, one)
    assert 0.005 < pixel[1] < 0.03 and pixel[2] < pixel[1], pixel
    assert all(value > 2.5 * error for value, error in pixel[0]), pixel


def test_04_an_all_black_image_is_more_likely_than_the_training_images(out04):
    """ae04-text-more-likely: "the black image ... is more likely than most of the
    training images, by every decoder, and reconstruction error too calls it more normal
    than most of them; blurring the T-shirts also makes them more likely." """
    text = out04["ae04-code-more-likely"]["text"]
    means = {
        name: numbers(line_starting(text, name))
        for name in ("training T-shirts", "normal test images", "the same, blurred", "an all-black")
    }
    assert all(len(row) == 3 for row in means.values()), means
    for column in range(3):
        assert means["the same, blurred"][column] < means["normal test images"][column]
        assert means["an all-black"][column] < means["training T-shirts"][column]
    for row in ("sigma_x = 1", "fitted sigma_x", "fitted, one per pixel", "by reconstruction"):
        share = numbers(line_with(text, row, "%"))[-1]
        assert share > 50, f"more likely than most training images: {row} {share}%"
