import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cuda

from hw8 import train
from hw8.datasets import load_bundled
from hw8.device import native_bfloat16, seed_everything
from hw8.models import Autoencoder, build_model


def _fit(task, checkpoint=None, epochs=3, resume=False, name="cnn", **kwargs):
    seed_everything(3)
    model = build_model(name, task.image_shape)
    losses = train.train(
        model,
        task.train_images,
        epochs=epochs,
        batch_size=50,
        device="cpu",
        seed=3,
        checkpoint=checkpoint,
        resume=resume,
        progress=False,
        **kwargs,
    )
    return model, losses


def test_training_lowers_the_loss(small_task):
    _, losses = _fit(small_task, epochs=6)
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0]


def test_same_seed_same_result(small_task):
    first, a = _fit(small_task, epochs=2, name="vae")
    second, b = _fit(small_task, epochs=2, name="vae")
    assert a == b
    for p, q in zip(first.parameters(), second.parameters(), strict=False):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", ["cnn", "vae"])
def test_resume_equals_an_uninterrupted_run(small_task, tmp_path, name):
    whole, whole_losses = _fit(small_task, epochs=4, name=name)
    path = tmp_path / "checkpoint.pt"
    _fit(small_task, path, epochs=2, name=name)
    assert torch.load(path, weights_only=False)["epoch"] == 2
    resumed, resumed_losses = _fit(small_task, path, epochs=4, resume=True, name=name)
    assert resumed_losses == whole_losses
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=False):
        assert torch.equal(p, q)


def test_interrupt_leaves_a_usable_checkpoint(small_task, tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    real_epoch = train.train_epoch
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fit(small_task, path, epochs=3)
    model = train.load_model(path, "cpu")
    assert torch.load(path, weights_only=False)["epoch"] == 1
    assert model.reconstruct(torch.zeros(1, 1, 28, 28)).shape == (1, 1, 28, 28)
    assert not list(tmp_path.glob(".*tmp"))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(small_task, tmp_path):
    path = tmp_path / "checkpoint.pt"
    _fit(small_task, path, epochs=1)
    good = torch.load(path, weights_only=False)
    model = build_model("cnn", small_task.image_shape)
    model.loss = lambda x: (model.reconstruct(x) - x).pow(2).mean() * float("nan")
    with pytest.raises(train.TrainingError, match="loss became nan.*keeps epoch 1"):
        train.train(
            model,
            small_task.train_images,
            epochs=2,
            batch_size=50,
            device="cpu",
            checkpoint=path,
            resume=True,
            progress=False,
        )
    kept = torch.load(path, weights_only=False)
    assert kept["epoch"] == 1
    for key, value in good["model_state"].items():
        assert torch.equal(kept["model_state"][key], value)
        assert not torch.isnan(value.float()).any()


def test_checkpoint_of_another_model_or_shape_is_refused(small_task, tmp_path):
    path = tmp_path / "checkpoint.pt"
    _fit(small_task, path, epochs=1)
    with pytest.raises(train.CheckpointError, match="holds model 'cnn'.*uses model 'fcn'"):
        _fit(small_task, path, epochs=2, resume=True, name="fcn")
    model = build_model("cnn", (3, 64, 64))
    with pytest.raises(train.CheckpointError, match=r"images \(1, 28, 28\).*images \(3, 64, 64\)"):
        train.train(
            model,
            np.zeros((4, 64, 64, 3), np.uint8),
            epochs=2,
            checkpoint=path,
            resume=True,
            device="cpu",
            progress=False,
        )


def test_non_checkpoint_files_are_refused(tmp_path):
    with pytest.raises(train.CheckpointError, match="not found"):
        train.load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    with pytest.raises(train.CheckpointError, match="bad.pt: not a readable checkpoint"):
        train.load_model(bad)
    torch.save({"weights": 1}, bad)
    with pytest.raises(train.CheckpointError, match="not an hw8 checkpoint"):
        train.load_model(bad)


def test_bad_hyperparameters_are_refused(small_task):
    with pytest.raises(ValueError, match="epochs=0"):
        _fit(small_task, epochs=0)


@cuda
@pytest.mark.parametrize("amp", [False, True])
def test_training_on_cuda_matches_cpu_closely(small_task, amp):
    model_cpu, cpu_losses = _fit(small_task, epochs=2)
    seed_everything(3)
    model = build_model("cnn", small_task.image_shape)
    losses = train.train(
        model,
        small_task.train_images,
        epochs=2,
        batch_size=50,
        device="cuda",
        seed=3,
        progress=False,
        amp=amp,
    )
    assert next(model.parameters()).device.type == "cuda"
    assert all(math.isfinite(v) for v in losses)
    tolerance = 0.1 if amp else 1e-2  # TF32 matrix products on CUDA
    assert losses == pytest.approx(cpu_losses, rel=tolerance)


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
    losses = train.train(model, images, epochs=3, batch_size=32, progress=False, on_epoch=on_epoch)
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert np.allclose([loss for _, loss in seen], losses)
    assert model.training is False  # train() ends in eval mode, as before


native_bf16_cpu = pytest.mark.skipif(
    not native_bfloat16(torch.device("cpu")),
    reason="this CPU has no native bfloat16 (AVX512-BF16 or AMX)",
)


@native_bf16_cpu
@pytest.mark.parametrize("name", ["cnn", "vae"])
def test_amp_on_a_cpu_with_native_bfloat16_trains_in_bfloat16_close_to_float32(small_task, name):
    _, full = _fit(small_task, epochs=2, name=name)
    seen = []
    real_autocast = torch.autocast

    def recording_autocast(*args, **kwargs):
        seen.append((args, kwargs))
        return real_autocast(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "autocast", recording_autocast)
        _, half = _fit(small_task, epochs=2, name=name, amp=True)
    assert seen and all(kw == {"dtype": torch.bfloat16, "enabled": True} for _, kw in seen)
    assert half != full  # bfloat16 did run
    assert half == pytest.approx(full, rel=0.05)


def test_amp_where_bfloat16_is_emulated_warns_the_caller_and_trains_in_float32(
    small_task, monkeypatch
):
    _, full = _fit(small_task, epochs=1, name="vae")
    monkeypatch.setattr(train, "native_bfloat16", lambda device: False)
    with pytest.warns(UserWarning, match="amp ignored: cpu has no native bfloat16") as caught:
        _, ignored = _fit(small_task, epochs=1, name="vae", amp=True)
    assert ignored == full
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name]  # the caller's line


@pytest.mark.slow  # compiling takes seconds
def test_compile_trains_the_same_model_as_without(small_task, tmp_path):
    plain, plain_losses = _fit(small_task, epochs=2, name="cnn")
    path = tmp_path / "checkpoint.pt"
    compiled, compiled_losses = _fit(small_task, path, epochs=2, name="cnn", compile_loss=True)
    assert compiled_losses == pytest.approx(plain_losses, rel=1e-4)
    for p, q in zip(plain.state_dict().values(), compiled.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)
    state = torch.load(path, weights_only=True)
    assert set(state["model_state"]) == set(plain.state_dict())  # no compiler wrapper names
    assert state["config"]["compile_loss"] is True


@pytest.mark.parametrize("switch", ["amp", "compile_loss"])
def test_resuming_with_another_switch_warns_that_the_result_will_differ(
    small_task, tmp_path, monkeypatch, switch
):
    monkeypatch.setattr(train, "native_bfloat16", lambda device: True)
    monkeypatch.setattr(torch, "compile", lambda function: function)  # no compiling here
    path = tmp_path / "checkpoint.pt"
    _fit(small_task, path, epochs=1, **{switch: True})
    assert torch.load(path, weights_only=True)["config"][switch] is True
    with pytest.warns(
        UserWarning, match=f"trained with {switch}=True, resumed with {switch}=False"
    ):
        _fit(small_task, path, epochs=2, resume=True)


def test_resuming_with_the_same_switches_does_not_warn(small_task, tmp_path, recwarn):
    path = tmp_path / "checkpoint.pt"
    _fit(small_task, path, epochs=1)
    _fit(small_task, path, epochs=2, resume=True)
    assert not [w for w in recwarn if "resumed with" in str(w.message)]


def compiler_errors():
    from torch._dynamo.exc import BackendCompilerFailed
    from torch._inductor.exc import CppCompileError, InvalidCxxCompiler

    yield InvalidCxxCompiler()
    yield CppCompileError(["g++", "kernel.cpp"], "fatal error: Python.h: No such file")
    try:  # Inductor wraps what its backend raised
        raise InvalidCxxCompiler()
    except InvalidCxxCompiler as inner:
        yield BackendCompilerFailed(lambda *a: None, inner, None)


def compile_raising(monkeypatch, error: Exception) -> None:
    """Make ``torch.compile`` return a loss that raises ``error`` when called."""

    def broken_compile(function):
        def run(batch):
            raise error

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)


@pytest.mark.parametrize("error", list(compiler_errors()), ids=lambda e: type(e).__name__)
def test_a_failing_compiler_says_how_to_train_without_it(small_task, monkeypatch, error):
    compile_raising(monkeypatch, error)
    with pytest.raises(train.TrainingError, match="leave out --compile") as caught:
        _fit(small_task, epochs=1, compile_loss=True)
    assert caught.value.__cause__ is error
    assert type(error).__name__ in str(caught.value)


def test_a_bug_the_tracer_runs_into_is_not_blamed_on_the_compiler(small_task, monkeypatch):
    from torch._dynamo.exc import TorchRuntimeError

    compile_raising(monkeypatch, TorchRuntimeError("shape mismatch in the model"))
    with pytest.raises(TorchRuntimeError, match="shape mismatch"):
        _fit(small_task, epochs=1, compile_loss=True)


def test_an_error_that_is_not_the_compilers_passes_through(small_task, monkeypatch):
    compile_raising(monkeypatch, ZeroDivisionError("a bug in the model"))
    with pytest.raises(ZeroDivisionError, match="a bug in the model"):
        _fit(small_task, epochs=1, compile_loss=True)
