"""The training loop: Adam, seeded shuffling on the device, checkpoints, resume.

The uint8 images go to the device once; batches are cut, shuffled and normalised
there. A checkpoint is written atomically at the start and after every epoch, so
Ctrl-C or a crash always leaves a usable one, and ``resume=True`` continues exactly
where it stopped (on the CPU, bit for bit the same result as an uninterrupted run).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from hw8.datasets import iterate_batches, to_device
from hw8.device import fit_threads, native_bfloat16, resolve_device, seed_everything
from hw8.errors import CheckpointError, TrainingError
from hw8.files import write_atomically
from hw8.models import Autoencoder, build_model
from hw8.runmode import progress_bar
from hw8.settings import SAMPLE_BATCH_SIZE, SAMPLE_EPOCHS, SAMPLE_LR, SAMPLE_SEED

CHECKPOINT_FORMAT = "hw8-checkpoint-1"


# ----------------------------------------------------------------------------- checkpoints


def read_checkpoint(path: Path | str) -> dict:
    """Load a checkpoint dictionary (on the CPU) and check that it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(error).__name__}: {error})."
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an hw8 checkpoint (expected {CHECKPOINT_FORMAT}).")
    return state


def check_compatible(state: dict, model: Autoencoder, path: Path | str) -> None:
    """Raise ``CheckpointError`` unless ``state`` was saved from this kind of model."""
    saved = (state["model_name"], tuple(state["image_shape"]))
    wanted = (model.name, tuple(model.image_shape))
    if saved != wanted:
        raise CheckpointError(
            f"{path}: checkpoint holds model {saved[0]!r} for images {saved[1]}, "
            f"but this run uses model {wanted[0]!r} for images {wanted[1]}. "
            "Use the same --model and data, or a new --out folder."
        )


def load_model(path: Path | str, device: torch.device | str | None = None) -> Autoencoder:
    """Rebuild the model stored in a checkpoint, on ``device``, in eval mode."""
    state = read_checkpoint(path)
    model = build_model(state["model_name"], tuple(state["image_shape"]))
    model.load_state_dict(state["model_state"])
    return model.to(resolve_device(device)).eval()


def _snapshot(model, optimizer, epoch, losses, generator, config) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "model_name": model.name,
        "image_shape": list(model.image_shape),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict(),
        "epoch": epoch,
        "losses": list(losses),
        "generator_state": generator.get_state(),
        "torch_rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": config,
    }


def _restore(state, model, optimizer, generator) -> tuple[int, list[float]]:
    model.load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer_state"])
    generator.set_state(state["generator_state"])
    torch.set_rng_state(state["torch_rng_state"])
    if state["cuda_rng_state"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng_state"])
    return state["epoch"], list(state["losses"])


# ----------------------------------------------------------------------------- training


def train(
    model: Autoencoder,
    images: np.ndarray,
    *,
    epochs: int = SAMPLE_EPOCHS,
    batch_size: int = SAMPLE_BATCH_SIZE,
    lr: float = SAMPLE_LR,
    device: torch.device | str | None = None,
    seed: int = SAMPLE_SEED,
    checkpoint: Path | str | None = None,
    resume: bool = False,
    amp: bool = False,
    compile_loss: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` on uint8 NHWC ``images`` with Adam; return the mean loss per epoch.

    Seeding here covers the batch order and any sampling in the loss; call
    ``hw8.device.seed_everything(seed)`` before ``build_model`` as well, so that the
    initial weights repeat too. ``checkpoint`` is written at the start and after every
    epoch; with ``resume`` the run continues from it (the returned list then holds every
    epoch, old and new).
    ``amp`` uses bfloat16 autocast where the device computes bfloat16 in hardware (NVIDIA
    GPUs from Ampere on; CPUs with AVX512-BF16 or AMX: ``hw8.device.native_bfloat16``) and
    is ignored with a warning elsewhere, where emulated bfloat16 is slower.
    ``compile_loss`` runs the model's loss (forward and backward) through
    ``torch.compile``; compiling takes seconds, so it pays off on long runs
    (``benchmarks/cpu_options.py`` measures both switches per model). Both are kept in the
    checkpoint; resuming with other switches warns that the result will differ from an
    uninterrupted run. On CUDA the loop also turns on TF32 matrix products, cuDNN
    autotuning and fused Adam.
    ``on_epoch(epoch, loss)``, when given, is called after every finished epoch (numbered
    from 1) with that epoch's mean loss, for example to measure the model as it trains;
    the model is back in training mode when it returns. On the CPU the number of threads
    is hw8's choice for this process (``hw8.device.fit_threads``: the free CPUs), kept in
    the checkpoint, and a resumed run uses the same number again. The progress bar
    (``progress``) writes a few lines where the output is not a terminal or a notebook.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and lr > 0; found epochs={epochs}, "
            f"batch_size={batch_size}, lr={lr}."
        )
    device = resolve_device(device)
    generator = seed_everything(seed)
    model.to(device).train()
    optimizer = make_optimizer(model, lr, device)
    data = to_device(images, device)
    use_amp = use_bfloat16(amp, device)
    config = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    config |= {"amp": use_amp, "compile_loss": compile_loss}
    if device.type == "cpu":
        config["cpu_threads"] = torch.get_num_threads()
    start, losses = 0, []
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = read_checkpoint(checkpoint)
        check_compatible(state, model, checkpoint)
        start, losses = _restore(state, model, optimizer, generator)
        threads = state["config"].get("cpu_threads")
        if device.type == "cpu" and threads:  # the same threads: the same sums, bit for bit
            config["cpu_threads"] = fit_threads(threads)
        warn_if_switches_differ(state["config"], config, checkpoint)
    elif checkpoint is not None:
        _save(checkpoint, model, optimizer, 0, losses, generator, config)
    bar = progress_bar(
        total=(epochs - start) * steps_per_epoch(len(data), batch_size),
        disable=not progress,
        desc=f"train {model.name}",
        unit="batch",
    )
    try:
        loss_fn = torch.compile(model.loss) if compile_loss else model.loss
        for epoch in range(start, epochs):
            loss = train_epoch(
                model, optimizer, data, batch_size, generator, use_amp, bar, loss_fn=loss_fn
            )
            if not math.isfinite(loss):
                kept = f" The checkpoint {checkpoint} keeps epoch {epoch}." if checkpoint else ""
                raise TrainingError(
                    f"epoch {epoch + 1}: the loss became {loss}; training stopped.{kept} "
                    "Lower the learning rate (--lr) or check the data for bad values."
                )
            losses.append(loss)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")
            if checkpoint is not None:
                _save(checkpoint, model, optimizer, epoch + 1, losses, generator, config)
            if on_epoch is not None:
                on_epoch(epoch + 1, loss)
                model.train()
    except KeyboardInterrupt:
        if checkpoint is not None:
            bar.write(f"Interrupted: {checkpoint} holds the last finished epoch; resume it.")
        raise
    except Exception as error:
        if compile_loss and compiler_failed(error):
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise TrainingError(
                f"torch.compile could not compile {model.name}'s loss ({type(error).__name__}: "
                f"{first_line}). It needs a working C++ compiler for the CPU (gcc or clang; "
                "MSVC on Windows) and Triton for CUDA. Train without compiling (leave out "
                "--compile)."
            ) from error
        raise
    finally:
        bar.close()
    model.eval()
    return losses


def use_bfloat16(amp: bool, device: torch.device) -> bool:
    """Whether ``amp`` can be honoured on ``device``; warns (to the caller of ``train``)
    when it was asked for where bfloat16 is only emulated."""
    if amp and not native_bfloat16(device):
        warnings.warn(
            f"amp ignored: {device} has no native bfloat16, so autocast would be slower; "
            "training runs in float32.",
            stacklevel=3,
        )
        return False
    return amp


def warn_if_switches_differ(saved: dict, config: dict, checkpoint: Path | str) -> None:
    """Warn when a resumed run's amp or compile switch differs from the checkpoint's."""
    for key in ("amp", "compile_loss"):
        before, now = saved.get(key, False), config[key]
        if before != now:
            warnings.warn(
                f"{checkpoint}: trained with {key}={before}, resumed with {key}={now}; "
                "the result will differ from an uninterrupted run.",
                stacklevel=3,
            )


def compiler_failed(error: BaseException) -> bool:
    """Whether ``error`` is torch.compile's compiler failing (Inductor's backend, the C++
    compiler, Triton), as opposed to a bug in the model that tracing ran into."""
    from torch._dynamo import exc as dynamo
    from torch._inductor import exc as inductor

    names = ((dynamo, "BackendCompilerFailed"), (inductor, "CppCompileError"))
    names += ((inductor, "InvalidCxxCompiler"), (inductor, "TritonMissing"))
    kinds = tuple(getattr(module, name) for module, name in names if hasattr(module, name))
    return isinstance(error, kinds)


def make_optimizer(model: Autoencoder, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam for ``model``, with the fused kernel on CUDA and the CPU (one pass over the
    parameters instead of one per tensor: on a model as wide as the wide FCN the unfused
    update took most of a CPU step); on CUDA also TF32 matrix products and cuDNN autotuning."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cuda", "cpu"))


def _save(path, model, optimizer, epoch, losses, generator, config) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = _snapshot(model, optimizer, epoch, losses, generator, config)
        write_atomically(path, partial(torch.save, state))
    except OSError as error:
        raise CheckpointError(f"{path}: cannot write the checkpoint ({error}).") from error


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Optimiser steps in one pass over ``count`` images (a last batch of one is skipped)."""
    full, rest = divmod(count, batch_size)
    return full + (rest >= 2)


def train_steps(
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    steps: int,
    *,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    use_amp: bool = False,
    bar=None,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """Run ``steps`` optimiser steps on shuffled batches of ``data``; return the mean loss.

    Passes over the data follow each other until ``steps`` are done (the last pass may
    stop part-way). A last batch of a single image is skipped, since BatchNorm needs two.
    ``schedule`` (a learning-rate scheduler) steps after every optimiser step; ``bar`` is
    an optional tqdm bar; ``loss_fn`` replaces ``model.loss`` (a compiled one, say). The
    loss stays on the device; the host reads it only every 20 steps (for the bar) and at
    the end, so the GPU is not stalled after every batch.
    """
    if len(data) < 2:
        raise ValueError(f"training needs at least 2 images; found {len(data)}.")
    loss_fn = model.loss if loss_fn is None else loss_fn
    total = torch.zeros((), device=data.device)
    done = images = 0
    while done < steps:
        for batch in iterate_batches(data, batch_size, shuffle=True, generator=generator):
            if len(batch) < 2:
                continue
            with torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total += loss.detach().float() * len(batch)
            done, images = done + 1, images + len(batch)
            if bar is not None:
                bar.update(1)
                if done % 20 == 0:
                    bar.set_postfix(loss=f"{total.item() / images:.4f}")
            if done == steps:
                break
    return total.item() / images


def train_epoch(
    model, optimizer, data, batch_size, generator, use_amp=False, bar=None, loss_fn=None
) -> float:
    """One pass over ``data`` (see :func:`train_steps`); returns the mean loss per image."""
    steps = steps_per_epoch(len(data), batch_size)
    return train_steps(
        model,
        optimizer,
        data,
        batch_size,
        generator,
        steps,
        use_amp=use_amp,
        bar=bar,
        loss_fn=loss_fn,
    )
