"""hw8.checks.assertions: the helpers behind the notebooks' test cells."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hw8.checks import assertions


def test_rel_error_matches_the_cs231n_formula():
    assert assertions.rel_error(1.0, 1.0) == 0.0
    assert assertions.rel_error(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 1.0])) == 1.0
    x, y = np.array([1.0, 2.0]), np.array([1.1, 2.0])
    assert assertions.rel_error(x, y) == pytest.approx(0.1 / 2.1)
    assert assertions.rel_error(torch.tensor([0.0]), torch.tensor([0.0])) == 0.0
    assert assertions.rel_error(torch.tensor([math.inf]), torch.tensor([math.inf])) == 0.0
    assert math.isnan(assertions.rel_error(torch.tensor([math.nan]), torch.tensor([1.0])))


def test_assert_close_passes_and_prints_the_error(capsys):
    assertions.assert_close(
        torch.tensor(0.5), torch.tensor(0.5001), name="mse_loss", reference="F.mse_loss", tol=1e-3
    )
    assert "OK  mse_loss matches F.mse_loss (relative error 1.0e-04)" in capsys.readouterr().out


def test_assert_close_says_what_was_expected_and_what_came():
    with pytest.raises(AssertionError) as info:
        assertions.assert_close(
            torch.tensor(1.0),
            torch.tensor(0.5),
            name="mse_loss(x_hat, x)",
            reference="torch.nn.functional.mse_loss",
            hint="average, do not sum",
        )
    message = str(info.value)
    assert "mse_loss(x_hat, x): the values are wrong" in message
    assert "expected (torch.nn.functional.mse_loss): 0.5" in message
    assert "got:" in message and "1 (tensor" in message
    assert "Hint: average, do not sum" in message


@pytest.mark.parametrize(
    ("actual", "needle"),
    [
        (None, "got None instead of a value: did you forget a `return`?"),
        (0.5, "expected a torch.Tensor, but got float"),
        (torch.zeros(3), "expected shape () (as the reference), but got shape (3,)"),
        (torch.tensor(math.nan), "contains NaN"),
    ],
)
def test_assert_close_explains_type_shape_and_nan_mistakes(actual, needle):
    with pytest.raises(AssertionError, match=None) as info:
        assertions.assert_close(actual, torch.tensor(1.0))
    assert needle in str(info.value)


def test_assert_in_band_is_the_statistical_check(capsys):
    assertions.assert_in_band(0.31, 0.3, 0.02, name="noise std")
    assert "noise std = 0.31" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="expected about 0.3 .* measured 0.4"):
        assertions.assert_in_band(torch.tensor(0.4), 0.3, 0.02, name="noise std")


def test_assert_tensor_checks_type_shape_device_and_dtype():
    x = torch.zeros(2, 3)
    assertions.assert_tensor(x, name="x", shape=(2, 3), device="cpu", dtype=x.dtype)
    with pytest.raises(AssertionError, match="did you forget a `return`"):
        assertions.assert_tensor(None, name="f(x)")
    with pytest.raises(AssertionError, match=r"expected shape \(3, 2\)"):
        assertions.assert_tensor(x, name="x", shape=(3, 2))
    with pytest.raises(AssertionError, match="expected dtype torch.float64"):
        assertions.assert_tensor(x, name="x", dtype=torch.float64)


def test_assert_unchanged_catches_in_place_edits():
    x = torch.ones(4)
    before = x.clone()
    assertions.assert_unchanged(before, x, name="f")
    x.add_(1)
    with pytest.raises(AssertionError, match="changed its input tensor in place"):
        assertions.assert_unchanged(before, x, name="f")


def test_devices_to_check_starts_with_the_cpu():
    devices = assertions.devices_to_check()
    assert devices[0] == torch.device("cpu")
    assert (torch.device("cuda") in devices) == torch.cuda.is_available()


def make_pair(device, dtype):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 5, generator=generator, dtype=dtype).to(device)
    y = torch.rand(4, 5, generator=generator, dtype=dtype).to(device)
    return (x, y)


def test_check_on_devices_accepts_a_right_answer_on_every_device(capsys):
    def mse(a, b):
        return ((a - b) ** 2).mean()

    assertions.check_on_devices(
        mse,
        make_pair,
        name="mse",
        reference=F.mse_loss,
        reference_name="F.mse_loss",
        dtypes=(torch.float32, torch.float64),
    )
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "right device and dtype" in line]
    assert len(lines) == 2 * len(assertions.devices_to_check())
    assert "OK  mse on cpu (float64): right device and dtype, values match F.mse_loss" in out
    assert "OK  mse on the meta device: every tensor stays on the input's device" in out


@pytest.mark.parametrize(
    ("wrong", "needle"),
    [
        (lambda a, b: ((a - b) ** 2).sum(), "the values are wrong"),
        (lambda a, b: ((a - b) ** 2).mean().float(), "expected dtype torch.float64"),
        (lambda a, b: ((a - b) ** 2).mean().item(), "expected a torch.Tensor"),
        (lambda a, b: a.sub_(b).pow(2).mean(), "changed its input tensor in place"),
    ],
    ids=["sum", "dtype", "float", "in-place"],
)
def test_check_on_devices_rejects_wrong_answers(wrong, needle):
    with pytest.raises(AssertionError) as info:
        assertions.check_on_devices(
            wrong, make_pair, name="mse", reference=F.mse_loss, dtypes=(torch.float64,)
        )
    assert needle in str(info.value)


def test_check_on_devices_catches_an_output_on_the_wrong_device():
    def to_meta(x):
        return torch.empty_like(x, device="meta")

    with pytest.raises(AssertionError, match="should stay on the input's device"):
        assertions.check_on_devices(to_meta, lambda d, t: torch.zeros(3, device=d), name="f")


def test_check_on_devices_runs_the_statistical_check_with_keyword_inputs():
    seen = []

    def noise(x, std, generator=None):
        return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def check(out, x, std, generator):
        seen.append(out.device.type)
        assertions.assert_in_band((out - x).std(), std, 0.02, name="std", verbose=False)

    def inputs(device, dtype):
        generator = torch.Generator(device=device).manual_seed(1)
        return {
            "x": torch.zeros(20000, device=device, dtype=dtype),
            "std": 0.5,
            "generator": generator,
        }

    assertions.check_on_devices(noise, inputs, name="noise", check=check, verbose=False)
    assert seen == [d.type for d in assertions.devices_to_check()]

    def wrong(x, std, generator=None):
        return noise(x, 2 * std, generator)

    with pytest.raises(AssertionError, match="std: expected about 0.5"):
        assertions.check_on_devices(wrong, inputs, name="noise", check=check, verbose=False)


def test_check_on_devices_compares_tuples_of_outputs():
    def pair(a, b):
        return a + b, a - b

    def reference(a, b):
        return torch.add(a, b), torch.sub(a, b)

    assertions.check_on_devices(pair, make_pair, name="pair", reference=reference, verbose=False)
    with pytest.raises(AssertionError, match="expected 2 output"):
        assertions.check_on_devices(
            lambda a, b: a + b, make_pair, name="pair", reference=reference, verbose=False
        )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_check_on_devices_catches_a_result_left_on_the_cpu():
    def cpu_only(a, b):
        return F.mse_loss(a.cpu(), b.cpu())

    with pytest.raises(AssertionError, match="should stay on the input's device"):
        assertions.check_on_devices(cpu_only, make_pair, name="mse", reference=F.mse_loss)


def test_checks_return_none_so_nbgrader_gives_full_credit():
    """nbgrader reads a number left as a test cell's last value as partial credit."""
    x = torch.zeros(3)
    assert assertions.assert_close(x, x, verbose=False) is None
    assert assertions.assert_in_band(0.0, 0.0, 1.0, name="v", verbose=False) is None
    assert assertions.assert_tensor(x, name="x") is None
    result = assertions.check_on_devices(
        torch.neg, lambda d, t: x.to(d, t), name="neg", verbose=False
    )
    assert result is None


# ----------------------------------------------------------------------------- meta device


def noise_inputs(device, dtype):
    return {
        "x": torch.zeros(50, device=device, dtype=dtype),
        "generator": torch.Generator(device=device).manual_seed(0),
    }


def test_a_hard_coded_device_fails_on_a_cpu_only_machine():
    def no_device(x, generator=None):  # right on the CPU, crashes on a GPU
        return x + torch.randn(x.shape, generator=generator, dtype=x.dtype)

    with pytest.raises(AssertionError, match="device=x.device") as info:
        assertions.check_on_devices(no_device, noise_inputs, name="noise", verbose=False)
    assert "meta device" in str(info.value)


def test_a_result_moved_to_the_cpu_fails_on_the_meta_device():
    with pytest.raises(AssertionError, match="meta device"):
        assertions.check_on_devices(
            lambda x, generator=None: (x + 1).cpu(), noise_inputs, name="f", verbose=False
        )


@pytest.mark.parametrize(
    "right",
    [
        lambda x, generator=None: x + torch.randn_like(x),
        lambda x, generator=None: (
            x + torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        ),
        lambda x, generator=None: x + x.new_zeros(x.shape).normal_(generator=generator),
        lambda x, generator=None: x * float(torch.ones(1).item()),  # a CPU scalar is fine
    ],
    ids=["randn_like", "device=", "new_zeros", "item"],
)
def test_right_answers_pass_the_meta_run(right):
    assertions.check_on_devices(right, noise_inputs, name="noise", verbose=False)


def test_a_function_that_reads_values_is_not_failed_on_meta(capsys):
    def reads_values(x, generator=None):
        scale = x.abs().max().item() + 1.0  # impossible on meta: inconclusive, not wrong
        return x * scale

    assertions.check_on_devices(reads_values, noise_inputs, name="f")
    assert "meta device" not in capsys.readouterr().out


# ----------------------------------------------------------------------------- forbid and tricks


def test_forbid_catches_names_bound_before_and_restores_them():
    from torch.nn.functional import mse_loss as bound_early

    def student(a, b):
        return bound_early(a, b)

    with pytest.raises(AssertionError, match="must not use torch.nn.functional.mse_loss"):
        assertions.check_on_devices(
            student,
            make_pair,
            name="mse",
            reference=F.mse_loss,
            forbidden={F.mse_loss: "torch.nn.functional.mse_loss"},
        )
    a, b = make_pair("cpu", torch.float32)
    assert torch.equal(bound_early(a, b), F.mse_loss(a, b))  # restored


def test_forbid_refuses_classes_and_restores_them():
    from torch.distributions import Normal

    with pytest.raises(AssertionError, match="must not use torch.distributions.Normal"):
        with assertions.forbid({Normal: "torch.distributions.Normal"}, "write the formula"):
            Normal(0.0, 1.0)
    assert Normal(0.0, 1.0).mean == 0.0


class Rigged(torch.Tensor):
    """A tensor that says it equals everything."""

    def __eq__(self, other):
        return True

    __bool__ = lambda self: True  # noqa: E731


class Lying:
    def __array__(self, dtype=None, copy=None):
        return np.zeros(3)

    def __eq__(self, other):
        return True


@pytest.mark.parametrize(
    "cheat",
    [lambda a, b: torch.zeros(()).as_subclass(Rigged), lambda a, b: Lying()],
    ids=["tensor-subclass", "array-protocol"],
)
def test_rigged_objects_do_not_pass_for_results(cheat):
    with pytest.raises(AssertionError, match="torch.Tensor"):
        assertions.check_on_devices(
            cheat, make_pair, name="mse", reference=F.mse_loss, meta=False, verbose=False
        )
    with pytest.raises(AssertionError, match="torch.Tensor"):
        assertions.assert_close(cheat(None, None), np.zeros(3))
    with pytest.raises(AssertionError):
        assertions.assert_in_band(cheat(None, None), 0.0, 1.0, name="v")
