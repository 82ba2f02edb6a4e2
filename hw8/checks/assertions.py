"""Helpers for the notebooks' test cells: checks that explain, in plain words, what went wrong.

Every helper raises :class:`AssertionError` with a message written for a student: what was
checked, what was expected, what came, and (when given) a hint. On success the comparison
helpers print one short line, in the style of the cs231n assignments ("relative error
3e-09"), so a student sees how close the answer was.

- :func:`rel_error` and :func:`assert_close` compare numbers or tensors by relative error.
- :func:`assert_tensor` checks type, shape, device and dtype.
- :func:`assert_in_band` is the statistical check: a value (a sample mean, a fraction of
  flipped pixels, ...) must lie within a tolerance band around what theory says.
- :func:`check_on_devices` runs a student's function on every available device (the CPU,
  plus CUDA or Apple MPS when present), checks the output's device, dtype and values
  against an independent reference, and checks that the inputs were not changed in place.
  It also runs the function on PyTorch's ``meta`` device, where a tensor created on the
  CPU by mistake meets the input and raises: a hard-coded device loses its points even on
  a grading machine without a GPU.
- :func:`forbid` replaces functions an exercise rules out by stubs that raise, while the
  student's code runs.

Values are read only from plain ``torch.Tensor`` and ``numpy.ndarray`` objects (and
Python numbers), copied to float64: a subclass or another object with its own ``__eq__``,
``__bool__`` or ``__array__`` is refused, so it cannot pass for a right answer.

References are always independent of the student's answer: PyTorch's own functions,
closed forms or statistics written in the test cell, never a copy of the solution.

The checks return None on purpose. nbgrader reads a number shown as a test cell's last
value as *partial credit* (a relative error of 0.0 would score zero points), and any output
to stderr as a failure; so the helpers print to stdout and return nothing.
"""

from __future__ import annotations

import contextlib
import math
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from hw8.checks.forbidden import declared
from hw8.device import available_devices

__all__ = [
    "DEFAULT_TOLERANCE",
    "assert_close",
    "assert_in_band",
    "assert_tensor",
    "assert_unchanged",
    "check_on_devices",
    "devices_to_check",
    "forbid",
    "rel_error",
]

DEFAULT_TOLERANCE = 1e-5


# ----------------------------------------------------------------------------- values


PLAIN_NUMBERS = (bool, int, float)


def _to_numpy(value: Any) -> np.ndarray:
    """A float64 numpy copy of a plain tensor, array or number (tensors leave their device).

    Only exact ``torch.Tensor``, ``numpy.ndarray`` (or numpy scalar) and Python numbers
    are read: any other object, a tensor subclass included, could rig its comparisons.
    """
    kind = type(value)
    if kind is torch.Tensor:
        return value.detach().to("cpu", torch.float64).numpy().copy()
    if kind is np.ndarray or kind in PLAIN_NUMBERS or isinstance(value, np.generic):
        return np.array(value, dtype=np.float64)
    raise AssertionError(
        f"expected a plain torch.Tensor (or a number), but got an object of type "
        f"{kind.__module__}.{kind.__qualname__}. Return the tensor your torch operations give."
    )


def rel_error(actual: Any, expected: Any) -> float:
    """The largest relative error between two numbers, arrays or tensors (cs231n style).

    ``max |a - e| / max(1e-8, |a| + |e|)`` over all elements: 0 for equal values, about
    1e-7 for float32 round-off, 1 for values of opposite sign. NaN when either holds a NaN.
    """
    a, e = _to_numpy(actual), _to_numpy(expected)
    if a.shape != e.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {e.shape}")
    if a.size == 0:
        return 0.0
    if np.isnan(a).any() or np.isnan(e).any():
        return math.nan
    same = a == e  # equal infinities count as equal
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = np.abs(a - e) / np.maximum(1e-8, np.abs(a) + np.abs(e))
    errors = np.where(same, 0.0, errors)
    return float(np.max(errors)) if not np.isnan(errors).any() else math.nan


def _describe(value: Any, limit: int = 6) -> str:
    """A short, readable rendering of a value for an error message."""
    if isinstance(value, torch.Tensor):
        head = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}, on {value.device}"
        if value.numel() == 1:
            return f"{value.item():.6g} ({head})"
        flat = value.detach().flatten()[:limit].to("cpu", torch.float64).tolist()
        more = ", ..." if value.numel() > limit else ""
        return f"{head}: [{', '.join(f'{v:.4g}' for v in flat)}{more}]"
    if isinstance(value, np.ndarray):
        return _describe(torch.from_numpy(np.ascontiguousarray(value)), limit)
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _with_hint(message: str, hint: str | None) -> str:
    return f"{message}\nHint: {hint}" if hint else message


def assert_close(
    actual: Any,
    expected: Any,
    *,
    name: str = "your result",
    reference: str = "the reference",
    tol: float = DEFAULT_TOLERANCE,
    hint: str | None = None,
    verbose: bool = True,
) -> None:
    """Check that ``actual`` matches ``expected`` to a relative error of at most ``tol``.

    ``name`` says what was computed ("mse_loss(x_hat, x)"), ``reference`` where the
    expected value comes from ("torch.nn.functional.mse_loss"). When ``verbose``, prints
    the relative error. Returns None (see the module notes on nbgrader).
    """
    if actual is None:
        raise AssertionError(
            _with_hint(f"{name}: got None instead of a value: did you forget a `return`?", hint)
        )
    try:
        _to_numpy(actual)  # only plain tensors, arrays and numbers are read
    except AssertionError as error:
        raise AssertionError(_with_hint(f"{name}: {error}", hint)) from None
    if isinstance(expected, torch.Tensor) and type(actual) is not torch.Tensor:
        raise AssertionError(
            _with_hint(
                f"{name}: expected a torch.Tensor, but got {type(actual).__name__} "
                f"({_describe(actual)}). Compute with torch operations and return the tensor.",
                hint,
            )
        )
    a_shape, e_shape = tuple(np.shape(actual)), tuple(np.shape(expected))  # tensors too
    if a_shape != e_shape:
        raise AssertionError(
            _with_hint(
                f"{name}: expected shape {tuple(e_shape)} (as {reference}), but got shape "
                f"{tuple(a_shape)}. Check which dimensions you sum or average over.",
                hint,
            )
        )
    error = rel_error(actual, expected)
    if math.isnan(error) and np.isnan(_to_numpy(actual)).any():
        raise AssertionError(
            _with_hint(
                f"{name}: your result contains NaN (not a number), {reference} gives "
                f"{_describe(expected)}. A log of 0 or a division by 0 is the usual cause.",
                hint,
            )
        )
    if not error <= tol:
        raise AssertionError(
            _with_hint(
                f"{name}: the values are wrong.\n"
                f"  expected ({reference}): {_describe(expected)}\n"
                f"  got:                   {_describe(actual)}\n"
                f"  relative error {error:.2e}, allowed {tol:.0e}.",
                hint,
            )
        )
    if verbose:
        print(f"OK  {name} matches {reference} (relative error {error:.1e})")


def assert_in_band(
    value: Any,
    expected: float,
    tol: float,
    *,
    name: str,
    hint: str | None = None,
    verbose: bool = True,
) -> None:
    """The statistical check: ``value`` must lie in ``[expected - tol, expected + tol]``.

    Use it for quantities measured on random samples (a sample standard deviation, the
    fraction of pixels a corruption changed); choose ``tol`` several standard errors wide,
    so that a correct answer fails with negligible probability.
    """
    values = _to_numpy(value)
    if values.size != 1:
        raise AssertionError(
            _with_hint(f"{name}: expected one number, got shape {values.shape}.", hint)
        )
    number = float(values.reshape(()))
    low, high = expected - tol, expected + tol
    if not low <= number <= high:
        raise AssertionError(
            _with_hint(
                f"{name}: expected about {expected:.4g} (anything from {low:.4g} to {high:.4g} "
                f"is fine for a random sample), but measured {number:.4g}.",
                hint,
            )
        )
    if verbose:
        print(f"OK  {name} = {number:.4g} (expected {expected:.4g} +- {tol:.2g})")


def assert_tensor(
    value: Any,
    *,
    name: str,
    shape: Sequence[int] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    hint: str | None = None,
) -> None:
    """Check that ``value`` is a tensor with the given shape, device and dtype."""
    if type(value) is not torch.Tensor:
        raise AssertionError(
            _with_hint(
                f"{name}: expected a torch.Tensor, but got {type(value).__name__}"
                + (" (did you forget a `return`?)" if value is None else "")
                + ".",
                hint,
            )
        )
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(
            _with_hint(
                f"{name}: expected shape {tuple(shape)}, but got {tuple(value.shape)}.", hint
            )
        )
    if device is not None and value.device.type != torch.device(device).type:
        raise AssertionError(
            _with_hint(
                f"{name}: the result should stay on the input's device ({torch.device(device)}), "
                f"but it is on {value.device}. Create new tensors with `device=x.device` "
                "(or `torch.zeros_like(x)` and friends) instead of the default device.",
                hint,
            )
        )
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(
            _with_hint(
                f"{name}: expected dtype {dtype} (the input's dtype), but got {value.dtype}. "
                "Create new tensors with `dtype=x.dtype`, and avoid `.float()` or `.double()`.",
                hint,
            )
        )


def assert_unchanged(before: torch.Tensor, after: torch.Tensor, *, name: str) -> None:
    """Check that a function left its input as it was (``before`` is a clone)."""
    if before.shape != after.shape or not torch.equal(before, after.to(before.device)):
        raise AssertionError(
            f"{name} changed its input tensor in place. Leave the input as it is and "
            "return a new tensor: write `out = x + noise` or `x.clone()` first, "
            "not `x += noise`, `x[mask] = ...` or `x.mul_(...)`."
        )


# ----------------------------------------------------------------------------- devices


def devices_to_check() -> list[torch.device]:
    """The CPU, plus CUDA and Apple MPS when present (``hw8.device.available_devices``)."""
    return list(available_devices())


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for t in value if isinstance(t, torch.Tensor)]
    return []


def _call(fn: Callable, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return fn(**inputs)
    if isinstance(inputs, tuple):
        return fn(*inputs)
    return fn(inputs)


def _as_outputs(value: Any) -> tuple:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


# ----------------------------------------------------------------------------- forbidden


def _refuse(what: str, advice: str) -> Callable:
    def stub(*_args, **_kwargs):
        raise AssertionError(f"this exercise must not use {what}: {advice}")

    return stub


@contextlib.contextmanager
def forbid(targets: dict[Any, str], advice: str):
    """While the block runs, every function or class in ``targets`` raises when used.

    ``targets`` maps the function or class to its name as the student knows it
    (``{F.mse_loss: "torch.nn.functional.mse_loss"}``); ``advice`` says what to write
    instead. Functions get a stub body (so names bound earlier, ``from ... import``
    included, are caught too); classes refuse to be built. Everything is restored after.
    The names are also declared as the block's rule (``hw8.checks.forbidden.declared``): the
    grader, which runs no student code itself, checks them in the student's source.
    """
    saved = []
    try:
        for target, what in targets.items():
            stub = _refuse(what, advice)
            if isinstance(target, type):
                saved.append((target, "__init__", target.__dict__.get("__init__")))
                target.__init__ = stub
            elif isinstance(target, types.FunctionType):
                saved.append((target, "__code__", target.__code__))
                target.__code__ = _stub_code(target, what, advice)
            else:
                raise TypeError(f"forbid: cannot forbid {target!r}")
        with declared(targets.values(), advice):
            yield
    finally:
        for target, attribute, original in reversed(saved):
            if original is None:
                delattr(target, attribute)
            else:
                setattr(target, attribute, original)


def _stub_code(function: types.FunctionType, what: str, advice: str) -> types.CodeType:
    """A code object that raises the refusal, shaped to fit ``function``'s closure."""
    free = function.__code__.co_freevars
    message = f"this exercise must not use {what}: {advice}"
    source = (
        f"def outer({', '.join(free) or ''}):\n"
        f"    def stub(*args, **kwargs):\n"
        f"        {'; '.join(free) + '; ' if free else ''}raise AssertionError({message!r})\n"
        f"    return stub\n"
    )
    namespace: dict = {}
    exec(compile(source, "<forbidden>", "exec"), namespace)
    return namespace["outer"](*([None] * len(free))).__code__


# ----------------------------------------------------------------------------- the meta device

META = torch.device("meta")
DEVICE_MISMATCH = (
    "is not on the expected device",
    "same device",
    "device type",
    "copy out of meta tensor",
)


def _to_meta(value: Any) -> Any:
    """Inputs for the meta run: tensors moved to ``meta``, generators left out (None)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(META).requires_grad_(value.requires_grad)
    if isinstance(value, torch.Generator):
        return None
    if isinstance(value, dict):
        return {key: _to_meta(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_to_meta(item) for item in value)
    return value


DEVICE_HINT = (
    "a tensor was created on the CPU while the input was on another device. Create new "
    "tensors on the input's device: pass device=x.device (and dtype=x.dtype) to "
    "torch.randn / torch.rand / torch.zeros / torch.full, or use torch.randn_like(x), "
    "torch.zeros_like(x); never move a tensor to another device inside the function "
    "(no .cpu(), no .to(...))."
)


def check_on_meta(fn: Callable, inputs: Any, *, name: str, hint: str | None = None) -> bool:
    """Run ``fn`` on ``meta`` copies of ``inputs``; fail on a device bug.

    PyTorch's ``meta`` device holds shapes without values, on any machine: a tensor made
    on the CPU by mistake meets the ``meta`` input and PyTorch raises, or the output comes
    back off ``meta``. Other errors say nothing about devices (a ``meta`` tensor has no
    values to print or compare) and are ignored. Returns True when the run was conclusive.
    """
    where = f"{name} on a second device (PyTorch's meta device)"
    try:
        output = _call(fn, _to_meta(inputs))
    except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError) as error:
        text = str(error)
        if "meta" in text and any(key in text for key in DEVICE_MISMATCH):
            raise AssertionError(_with_hint(f"{where}: {DEVICE_HINT}", hint)) from None
        return False
    for index, out in enumerate(_as_outputs(output)):
        if isinstance(out, torch.Tensor) and out.device != META:
            label = where if index == 0 else f"{where}, output {index}"
            raise AssertionError(
                _with_hint(f"{label}: the result came back on {out.device}; {DEVICE_HINT}", hint)
            )
    return True


# ----------------------------------------------------------------------------- every device


def check_on_devices(
    fn: Callable,
    make_inputs: Callable[..., Any],
    *,
    name: str,
    reference: Callable | None = None,
    reference_name: str = "the reference",
    check: Callable[..., None] | None = None,
    dtypes: Iterable[torch.dtype] = (torch.float32,),
    tol: float = DEFAULT_TOLERANCE,
    devices: Iterable[torch.device | str] | None = None,
    forbidden: dict[Any, str] | None = None,
    advice: str = "compute it with basic torch operations.",
    meta: bool = True,
    hint: str | None = None,
    verbose: bool = True,
) -> None:
    """Run ``fn`` on every available device and check what comes back.

    ``make_inputs(device, dtype)`` builds fresh inputs on ``device`` (a tuple of positional
    arguments, a dict of keyword arguments, or a single tensor). For each device and dtype:

    - the inputs must come back unchanged (no in-place edits);
    - every tensor output must be a plain tensor on that device, with the dtype of the
      reference's output (or of the first input tensor when there is no reference);
    - with ``reference``, the outputs must match ``reference(*inputs)`` to ``tol``;
    - with ``check``, ``check(output, *inputs)`` (or ``check(output, **inputs)``) runs
      the test cell's own assertions (statistics, for random functions);
    - deterministic results (with a reference) must agree across devices.

    ``forbidden`` (see :func:`forbid`) lists functions ``fn`` must not call, with
    ``advice``. With ``meta`` (the default), ``fn`` also runs on PyTorch's ``meta`` device
    (:func:`check_on_meta`), so a hard-coded device fails on a CPU-only machine too.
    float64 is skipped on MPS, which does not support it. Returns None.
    """
    devices = [torch.device(d) for d in (devices or devices_to_check())]
    cpu_results: dict[torch.dtype, tuple] = {}
    for device in devices:
        for dtype in dtypes:
            if device.type == "mps" and dtype == torch.float64:
                continue
            where = f"{name} on {device.type} ({str(dtype).replace('torch.', '')})"
            inputs = make_inputs(device, dtype)
            originals = [t.detach().clone() for t in _tensors(inputs)]
            with forbid(forbidden or {}, advice):
                output = _call(fn, inputs)
            for before, after in zip(originals, _tensors(inputs), strict=True):
                assert_unchanged(before, after, name=where)
            outputs = _as_outputs(output)
            expected_outputs = None
            if reference is not None:
                with torch.no_grad():
                    expected_outputs = _as_outputs(_call(reference, inputs))
                if len(outputs) != len(expected_outputs):
                    raise AssertionError(
                        _with_hint(
                            f"{where}: expected {len(expected_outputs)} output(s), "
                            f"but got {len(outputs)}.",
                            hint,
                        )
                    )
            first_input = (_tensors(inputs) or [None])[0]
            for index, out in enumerate(outputs):
                label = where if len(outputs) == 1 else f"{where}, output {index}"
                if expected_outputs is not None:
                    want = expected_outputs[index]
                    if not isinstance(want, torch.Tensor):
                        continue
                    want_dtype = want.dtype
                else:
                    want_dtype = first_input.dtype if first_input is not None else None
                    if not isinstance(out, torch.Tensor):
                        continue
                assert_tensor(out, name=label, device=device, dtype=want_dtype, hint=hint)
                if expected_outputs is not None:
                    assert_close(
                        out,
                        expected_outputs[index],
                        name=label,
                        reference=reference_name,
                        tol=tol,
                        hint=hint,
                        verbose=False,
                    )
            if check is not None:
                if isinstance(inputs, dict):
                    check(output, **inputs)
                elif isinstance(inputs, tuple):
                    check(output, *inputs)
                else:
                    check(output, inputs)
            if expected_outputs is not None:
                if device.type == "cpu":
                    cpu_results[dtype] = outputs
                elif dtype in cpu_results:
                    for out, cpu_out in zip(outputs, cpu_results[dtype], strict=True):
                        if isinstance(out, torch.Tensor):
                            assert_close(
                                out,
                                cpu_out,
                                name=f"{where} compared with the CPU",
                                reference="the same function on the CPU",
                                tol=max(tol, 1e-4),
                                hint=hint,
                                verbose=False,
                            )
            if verbose:
                found = ["right device and dtype"]
                if reference is not None:
                    found.append(f"values match {reference_name}")
                if check is not None:
                    found.append("checks passed")
                print(f"OK  {where}: {', '.join(found)}")
    if meta:
        inputs = make_inputs(torch.device("cpu"), next(iter(dtypes)))
        with forbid(forbidden or {}, advice):
            conclusive = check_on_meta(fn, inputs, name=name, hint=hint)
        if verbose and conclusive:
            print(f"OK  {name} on the meta device: every tensor stays on the input's device")
