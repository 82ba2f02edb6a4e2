"""The wire between the grader and the process that runs a student's code.

Two processes talk over a pair of pipes, one message at a time, and either may ask the
other something while it is being asked (the grader calls the student's ``anomaly_scores``,
which calls the grader's stand-in model back). Every message is plain data: a JSON header
and raw byte buffers. Nothing on the wire is code: no pickle, nothing the receiver runs.

What crosses as a value:

- ``None``, ``bool``, ``int``, ``float``, ``str``; tuples, lists and dicts of values;
- tensors (dtype, shape, device, ``requires_grad``, the bytes, and the gradient of a leaf),
  NumPy arrays and scalars of numeric dtypes, ``torch.dtype``, ``torch.device``,
  ``torch.Size``, a ``torch.Generator`` (its state), slices, paths, and the hw8 data
  classes (:data:`DATA_CLASSES`);
- anything else as a *reference*: a number in the table of the side that owns the object.
  The other side holds a :class:`Remote` for it; using the remote (calling it, reading an
  attribute, iterating) sends a request to the owner.

A side may refuse a request (``Endpoint.allow``): the grader answers only calls of what it
handed over and reads of plain public attributes, so a student's code can never reach the
grader's own state through a reference.
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import json
import math
import os
import select
import struct
import time
from pathlib import PurePath
from typing import Any

import numpy as np
import torch

MAX_MESSAGE_BYTES = 1 << 30
MAX_DEPTH = 64
MAX_TEXT = 4000
HEADER = struct.Struct("<QQ")  # header length, total buffer length
DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.bool,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
    )
}
NUMPY_KINDS = "biufc"  # bool, integers, floats, complex: never objects or strings
DATA_CLASSES = ("hw8.datasets.LabelledImages", "hw8.datasets.AnomalyTask")


class WireError(BaseException):
    """The other side sent something that is not a valid message, or went away. (Not an
    ``Exception``: a test's ``except Exception`` must not swallow it.)"""


class Timeout(WireError):
    """The other side did not answer in time."""


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _data_class(name: str) -> type:
    import importlib

    module, _, qualname = name.rpartition(".")
    return getattr(importlib.import_module(module), qualname)


class Remote:
    """An object that lives on the other side; using it sends a request there."""

    __slots__ = ("_endpoint", "_id", "_label")

    def __init__(self, endpoint: Endpoint, number: int, label: str = ""):
        object.__setattr__(self, "_endpoint", endpoint)
        object.__setattr__(self, "_id", number)
        object.__setattr__(self, "_label", label)

    def _ask(self, op: str, **fields) -> Any:
        return self._endpoint.request({"op": op, "target": self, **fields})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name=name, value=value)

    def __call__(self, *args, **kwargs) -> Any:
        return self._endpoint.call(self, args, kwargs)

    def __iter__(self):
        return _RemoteIterator(self._ask("iter"))

    def __next__(self):
        return self._ask("next")

    def __len__(self) -> int:
        return int(self._ask("len"))

    def __bool__(self) -> bool:
        return bool(self._ask("bool"))

    def __getitem__(self, key):
        return self._ask("getitem", key=key)

    def __float__(self) -> float:
        return float(self._ask("float"))

    def __int__(self) -> int:
        return int(self._ask("int"))

    def __index__(self) -> int:
        return int(self._ask("int"))

    def __deepcopy__(self, memo):
        return self._ask("deepcopy")

    def __copy__(self):
        return self._ask("copy")

    def __repr__(self) -> str:
        try:
            text = self._ask("repr")
        except Exception:  # noqa: BLE001 - a repr must not fail
            text = "?"
        return str(text)[:MAX_TEXT]

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __hash__(self) -> int:
        return hash((id(self._endpoint), self._id))

    def __eq__(self, other) -> bool:
        return isinstance(other, Remote) and (other._endpoint, other._id) == (
            self._endpoint,
            self._id,
        )


class _RemoteIterator:
    """Iterates over what an ``iter`` request gave: a list, or a remote iterator."""

    def __init__(self, value):
        self.source = value if isinstance(value, Remote) else iter(value)

    def __iter__(self):
        return self

    def __next__(self):
        return (
            next(self.source) if not isinstance(self.source, Remote) else self.source._ask("next")
        )


@dataclasses.dataclass
class Sent:
    """What one outgoing request carried that the answer may update: tensors and arrays
    (changed in place by the other side) and generators (their state moves on)."""

    arrays: list = dataclasses.field(default_factory=list)
    generators: list = dataclasses.field(default_factory=list)
    leaves: list = dataclasses.field(default_factory=list)  # tensors that require grad
    copies: list = dataclasses.field(default_factory=list)  # of ``arrays``, before a call

    def remember(self) -> None:
        """Keep a copy of every array and tensor (to find what a call edits in place)."""
        self.copies = [
            value.detach().clone() if isinstance(value, torch.Tensor) else value.copy()
            for value in self.arrays
        ]


class Endpoint:
    """One side of the wire: its table of objects the other side refers to, the pipes,
    and the loop that answers the other side's requests while waiting for an answer."""

    def __init__(self, side: str, reader, writer):
        self.side = side
        self.reader, self.writer = reader, writer
        self.objects: dict[int, Any] = {}
        self.numbers: dict[int, int] = {}
        self.deadline: float | None = None
        self.graphs: dict[int, tuple[list, list]] = {}

    # ------------------------------------------------------------------ framing

    def send(self, message: dict, buffers: list[bytes]) -> None:
        """Write one message: its JSON header, then its buffers."""
        header = json.dumps(message, allow_nan=True).encode()
        total = sum(len(b) for b in buffers)
        self.writer.write(HEADER.pack(len(header), total) + header)
        for buffer in buffers:
            self.writer.write(buffer)
        self.writer.flush()

    def receive(self) -> tuple[dict, list[memoryview]]:
        """Read one message (WireError when the pipe ends or the message is malformed)."""
        head_len, body_len = HEADER.unpack(self._read(HEADER.size))
        if head_len + body_len > MAX_MESSAGE_BYTES:
            raise WireError(f"a message of {head_len + body_len} bytes is over the limit")
        try:
            message = json.loads(self._read(head_len))
        except ValueError as error:
            raise WireError(f"a message is not valid JSON ({error})") from None
        body = memoryview(self._read(body_len))
        sizes = message.get("buffers", []) if isinstance(message, dict) else None
        if not isinstance(sizes, list) or sum(int(s) for s in sizes) != body_len:
            raise WireError("a message's buffers do not add up")
        buffers, start = [], 0
        for size in sizes:
            buffers.append(body[start : start + int(size)])
            start += int(size)
        return message, buffers

    def _read(self, count: int) -> bytes:
        chunks, left = [], count
        fd = self.reader.fileno()
        while left:
            if self.deadline is not None:
                wait = self.deadline - time.monotonic()
                if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                    raise Timeout("no answer within the time limit")
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise WireError("the other side closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    # ------------------------------------------------------------------ requests

    def request(self, message: dict, sent: Sent | None = None) -> Any:
        """Send a request; answer the other side's requests until its reply comes; return
        the reply's value (or raise the error it reports)."""
        sent = sent if sent is not None else Sent()
        buffers: list[bytes] = []
        encoded = {key: self.encode(value, buffers, sent) for key, value in message.items()}
        encoded["op"] = message["op"]
        encoded["buffers"] = [len(b) for b in buffers]
        self.send(encoded, buffers)
        while True:
            reply, reply_buffers = self.receive()
            kind = reply.get("op")
            if kind == "return":
                self.update(sent, reply, reply_buffers)
                return self.decode(reply.get("value"), reply_buffers)
            if kind == "raise":
                raise self.rebuild_error(reply)
            self.answer(reply, reply_buffers)

    def call(self, target: Remote, args: tuple, kwargs: dict, **extra) -> Any:
        """Call a remote object. With autograd on, the call is one differentiable step
        (:class:`_Bridge`): gradients flow back to the inputs and to the other side's
        parameters."""
        message = {"target": target, "args": args, "kwargs": kwargs, **extra}
        if not torch.is_grad_enabled():
            return self.request({"op": "call", **message, "grad": False})
        leaves = [t for t in tensors_in((args, kwargs)) if t.requires_grad]
        call = _Call(self, message)
        results = _Bridge.apply(call, torch.zeros((), requires_grad=True), *leaves)
        if not call.outputs:
            return call.value
        return _substitute(call.value, dict(zip(map(id, call.outputs), results, strict=True)))

    def answer(self, message: dict, buffers: list) -> None:
        """Carry out one request of the other side and send the reply."""
        try:
            recorded = Sent()
            fields = {
                key: self.decode(value, buffers, recorded)
                for key, value in message.items()
                if key not in ("op", "buffers")
            }
            recorded.remember()
            op = message.get("op")
            handler = getattr(self, f"op_{op}", None)
            if not isinstance(op, str) or handler is None or not self.allow(op, fields):
                raise PermissionError(f"request {op!r} refused")
            value = handler(**fields)
            out: list[bytes] = []
            reply = {"op": "return", "value": self.encode(value, out)}
            reply.update(self.changes(recorded, out))
            reply["buffers"] = [len(b) for b in out]
            self.send(reply, out)
        except (WireError, KeyboardInterrupt):
            raise
        except BaseException as error:  # noqa: BLE001 - the other side hears of every error
            names = [kind.__name__ for kind in type(error).__mro__]
            self.send({"op": "raise", "types": names, "message": _text(error), "buffers": []}, [])

    def allow(self, op: str, fields: dict) -> bool:
        """Whether to carry out a request (every one, unless a side says otherwise)."""
        return True

    @staticmethod
    def rebuild_error(reply: dict) -> Exception:
        """The error the other side reported, as the nearest built-in exception class."""
        message = str(reply.get("message", ""))[:MAX_TEXT]
        for name in reply.get("types", []):
            kind = getattr(builtins, str(name), None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                return kind(message)
        return RuntimeError(message)

    # ------------------------------------------------------------------ the table

    def register(self, value: Any) -> int:
        """The number under which the other side refers to ``value``."""
        number = self.numbers.get(id(value))
        if number is None or self.objects.get(number) is not value:
            number = len(self.objects) + 1
            self.objects[number] = value
            self.numbers[id(value)] = number
        return number

    # ------------------------------------------------------------------ handlers

    def op_getattr(self, target, name):
        return getattr(target, name)

    def op_setattr(self, target, name, value):
        setattr(target, name, value)

    def op_call(self, target, args, kwargs, grad=None):
        with torch.set_grad_enabled(torch.is_grad_enabled() if grad is None else grad):
            return target(*args, **kwargs)

    def op_gcall(self, target, args, kwargs, **extra):
        """A call the other side may differentiate: (value, graph number or None)."""
        leaves = [t for t in tensors_in((args, kwargs)) if t.requires_grad]
        value = self.op_call(target, args, kwargs, grad=True, **extra)
        outputs = [t for t in tensors_in(value) if t.requires_grad]
        if not outputs:
            return value, None
        self.graphs[id(outputs)] = (outputs, leaves)
        return value, id(outputs)

    def op_backward(self, graph: int, grads: list) -> list:
        """Back-propagate ``grads`` through a kept call; the gradients of its inputs."""
        outputs, leaves = self.graphs.pop(int(graph))
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if g is not None]
        if pairs:
            torch.autograd.backward([o for o, _ in pairs], [g.to(o.device) for o, g in pairs])
        return [leaf.grad for leaf in leaves]

    def op_iter(self, target):
        return iter(target)

    def op_next(self, target):
        return next(target)

    def op_len(self, target):
        return len(target)

    def op_bool(self, target):
        return bool(target)

    def op_getitem(self, target, key):
        return target[key]

    def op_float(self, target):
        return float(target)

    def op_int(self, target):
        return int(target)

    def op_deepcopy(self, target):
        import copy

        return copy.deepcopy(target)

    def op_copy(self, target):
        import copy

        return copy.copy(target)

    def op_repr(self, target):
        return repr(target)[:MAX_TEXT]

    # ------------------------------------------------------------------ values

    def encode(self, value: Any, buffers: list, sent: Sent | None = None, depth: int = 0):
        """``value`` as JSON data and buffers (see the module notes)."""
        if depth > MAX_DEPTH:
            raise ValueError("a value nested too deep to send")
        kind = type(value)
        if value is None or kind in (bool, str):
            return value
        if kind is int:
            return value if abs(value) < 2**53 else {"$int": str(value)}
        if kind is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        again = lambda item: self.encode(item, buffers, sent, depth + 1)  # noqa: E731
        if kind is tuple:
            return {"$tuple": [again(item) for item in value]}
        if kind is list:
            return {"$list": [again(item) for item in value]}
        if kind is dict:
            return {"$dict": [[again(k), again(v)] for k, v in value.items()]}
        if kind is torch.Size:
            return {"$size": [int(n) for n in value]}
        if isinstance(value, torch.Tensor) and type(value) in (torch.Tensor, torch.nn.Parameter):
            return self._encode_tensor(value, buffers, sent, depth)
        if kind is np.ndarray and value.dtype.kind in NUMPY_KINDS:
            if sent is not None:
                sent.arrays.append(value)
            return {"$ndarray": self._array(value, buffers)}
        if isinstance(value, np.generic) and value.dtype.kind in NUMPY_KINDS:
            return {"$npscalar": self._array(np.asarray(value), buffers)}
        if kind is torch.dtype:
            return {"$dtype": str(value).removeprefix("torch.")}
        if kind is torch.device:
            return {"$device": str(value)}
        if kind is torch.Generator:
            if sent is not None:
                sent.generators.append(value)
            buffers.append(value.get_state().numpy().tobytes())
            return {"$generator": [str(value.device), len(buffers) - 1]}
        if kind is slice:
            return {"$slice": [again(value.start), again(value.stop), again(value.step)]}
        if value is Ellipsis:
            return {"$ellipsis": 0}
        if isinstance(value, PurePath):
            return {"$path": str(value)}
        if dataclasses.is_dataclass(value) and _qualified(kind) in DATA_CLASSES:
            fields = {f.name: again(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {"$data": [_qualified(kind), fields]}
        if isinstance(value, Remote) and value._endpoint is self:
            return {"$ref": ["peer", value._id]}
        return {"$ref": [self.side, self.register(value)]}

    def _encode_tensor(self, value: torch.Tensor, buffers, sent, depth) -> dict:
        tensor = value.detach()
        spec = {
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
            "device": str(tensor.device),
            "requires_grad": bool(value.requires_grad),
        }
        if tensor.device.type != "meta":
            spec["buffer"] = self._tensor_bytes(tensor, buffers)
        if value.requires_grad and value.is_leaf and value.grad is not None and depth < 2:
            spec["grad"] = self._encode_tensor(value.grad, buffers, None, depth + 1)
        if sent is not None:
            if tensor.device.type != "meta":
                sent.arrays.append(value)
            if value.requires_grad:
                sent.leaves.append(value)
        return {"$tensor": spec}

    @staticmethod
    def _tensor_bytes(tensor: torch.Tensor, buffers: list) -> int:
        cpu = tensor.to("cpu").contiguous()
        if cpu.dtype == torch.bfloat16:
            cpu = cpu.view(torch.int16)
        buffers.append(cpu.numpy().tobytes())
        return len(buffers) - 1

    @staticmethod
    def _array(array: np.ndarray, buffers: list) -> list:
        buffers.append(np.ascontiguousarray(array).tobytes())
        return [array.dtype.str, list(array.shape), len(buffers) - 1]

    def decode(self, data: Any, buffers: list, sent: Sent | None = None, depth: int = 0):
        """The value that ``encode`` turned into ``data``; ValueError when it is malformed."""
        if depth > MAX_DEPTH:
            raise ValueError("a value nested too deep")
        if data is None or type(data) in (bool, int, float, str):
            return data
        if type(data) is not dict or len(data) != 1:
            raise ValueError(f"not a value: {str(data)[:80]}")
        ((tag, body),) = data.items()
        again = lambda item: self.decode(item, buffers, sent, depth + 1)  # noqa: E731
        if tag == "$tuple":
            return tuple(again(item) for item in body)
        if tag == "$list":
            return [again(item) for item in body]
        if tag == "$dict":
            return {again(k): again(v) for k, v in body}
        if tag == "$int":
            return int(str(body)[:64])
        if tag == "$float":
            return float(str(body)[:32])
        if tag == "$size":
            return torch.Size([int(n) for n in body])
        if tag == "$tensor":
            return self._decode_tensor(body, buffers, sent, depth)
        if tag in ("$ndarray", "$npscalar"):
            array = _array_from(body, buffers)
            if tag == "$npscalar":
                return array[()]
            if sent is not None:
                sent.arrays.append(array)
            return array
        if tag == "$dtype":
            return DTYPES[str(body)]
        if tag == "$device":
            return torch.device(str(body)[:32])
        if tag == "$generator":
            device, index = body
            generator = torch.Generator(device=str(device)[:32])
            state = np.frombuffer(buffers[int(index)], dtype=np.uint8).copy()
            generator.set_state(torch.from_numpy(state))
            if sent is not None:
                sent.generators.append(generator)
            return generator
        if tag == "$slice":
            return slice(*(again(item) for item in body))
        if tag == "$ellipsis":
            return Ellipsis
        if tag == "$path":
            from pathlib import Path

            return Path(str(body))
        if tag == "$data":
            name, fields = body
            if name not in DATA_CLASSES:
                raise ValueError(f"not a data class that may be sent: {name}")
            return _data_class(name)(**{str(k): again(v) for k, v in fields.items()})
        if tag == "$ref":
            owner, number = body
            if owner == "peer":  # one of ours, coming back
                if int(number) not in self.objects:
                    raise ValueError("a reference to an object this side never sent")
                return self.objects[int(number)]
            return Remote(self, int(number))
        raise ValueError(f"unknown value tag {tag!r}")

    def _decode_tensor(self, spec: dict, buffers, sent, depth) -> torch.Tensor:
        dtype = DTYPES[str(spec["dtype"])]
        shape = [int(n) for n in spec["shape"]]
        if any(n < 0 for n in shape) or len(shape) > 16:
            raise ValueError(f"not a tensor shape: {shape}")
        device = torch.device(str(spec["device"])[:32])
        if device.type == "meta":
            tensor = torch.empty(shape, dtype=dtype, device="meta")
        else:
            raw = buffers[int(spec["buffer"])]
            storage = torch.int16 if dtype == torch.bfloat16 else dtype
            size = math.prod(shape) * torch.empty((), dtype=storage).element_size()
            if len(raw) != size:
                raise ValueError(
                    f"a tensor of shape {shape} and dtype {dtype} with {len(raw)} bytes"
                )
            flat = (
                torch.frombuffer(bytearray(raw), dtype=storage)
                if size
                else torch.empty(0, dtype=storage)
            )
            tensor = flat.view(dtype) if storage is not dtype else flat
            tensor = tensor.reshape(shape).to(device)
        if spec.get("requires_grad") and (tensor.is_floating_point() or tensor.is_complex()):
            tensor.requires_grad_(True)
            if sent is not None:
                sent.leaves.append(tensor)
        if "grad" in spec and depth < 2:
            tensor.grad = self._decode_tensor(spec["grad"]["$tensor"], buffers, None, depth + 1)
        if sent is not None and device.type != "meta":
            sent.arrays.append(tensor)
        return tensor

    # ------------------------------------------------------------------ side effects

    def changes(self, recorded: Sent, buffers: list) -> dict:
        """What the request's handler changed in the values it was given: the arrays and
        tensors it edited in place, and the state of every generator it was given."""
        edited = []
        for index, (value, before) in enumerate(zip(recorded.arrays, recorded.copies, strict=True)):
            same = (
                torch.equal(value.detach(), before)
                if isinstance(value, torch.Tensor)
                else np.array_equal(value, before, equal_nan=False) and value.shape == before.shape
            )
            if not same:
                edited.append([index, self.encode(_detached(value), buffers)])
        states = []
        for generator in recorded.generators:
            buffers.append(generator.get_state().numpy().tobytes())
            states.append(len(buffers) - 1)
        return {"edited": edited, "generators": states}

    def update(self, sent: Sent, reply: dict, buffers: list) -> None:
        """Apply what the other side changed in the values this side sent."""
        for index, data in reply.get("edited", []):
            original = sent.arrays[int(index)]
            new = self.decode(data, buffers)
            if isinstance(original, torch.Tensor):
                with torch.no_grad():
                    if isinstance(new, torch.Tensor) and new.shape == original.shape:
                        original.copy_(new.to(original.device, original.dtype))
                    else:
                        original.data = torch.as_tensor(new).to(original.device)
            elif isinstance(new, np.ndarray) and new.shape == original.shape:
                np.copyto(original, new.astype(original.dtype, copy=False))
        for generator, index in zip(sent.generators, reply.get("generators", []), strict=False):
            state = np.frombuffer(buffers[int(index)], dtype=np.uint8).copy()
            try:
                generator.set_state(torch.from_numpy(state))
            except RuntimeError:
                pass  # a state of another kind of generator: leave this one as it is


def tensors_in(value) -> list[torch.Tensor]:
    """The tensors of a value as the wire sends them, in the order it sends them."""
    if type(value) in (tuple, list):
        return [t for item in value for t in tensors_in(item)]
    if type(value) is dict:
        return [t for item in value.values() for t in tensors_in(item)]
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        return [value]
    return []


@dataclasses.dataclass
class _Call:
    """One differentiable call of a remote object: its reply, and the outputs that carry
    a gradient back to the other side."""

    endpoint: Endpoint
    message: dict
    value: Any = None
    graph: int | None = None
    outputs: list = dataclasses.field(default_factory=list)

    def run(self) -> None:
        self.value, self.graph = self.endpoint.request({"op": "gcall", **self.message})
        self.outputs = [t for t in tensors_in(self.value) if t.requires_grad]

    def backward(self, grads) -> list:
        message = {"op": "backward", "graph": self.graph, "grads": list(grads)}
        return self.endpoint.request(message)


class _Bridge(torch.autograd.Function):
    """Autograd across the wire: the forward pass is the remote call, the backward pass
    asks the other side to back-propagate and returns the gradients of the inputs."""

    @staticmethod
    def forward(ctx, call: _Call, anchor: torch.Tensor, *leaves: torch.Tensor):
        call.run()
        ctx.call, ctx.leaves = call, leaves
        return tuple(t.detach() for t in call.outputs) or (anchor.detach(),)

    @staticmethod
    def backward(ctx, *grads):
        call, leaves = ctx.call, ctx.leaves
        got = call.backward(grads[: len(call.outputs)]) if call.graph is not None else []
        got = list(got) + [None] * (len(leaves) - len(got))
        out = [
            None if g is None else torch.as_tensor(g).to(leaf.device, leaf.dtype)
            for g, leaf in zip(got, leaves, strict=False)
        ]
        return (None, None, *out)


def _substitute(value, mapping: dict):
    if type(value) in (tuple, list):
        return type(value)(_substitute(item, mapping) for item in value)
    if type(value) is dict:
        return {key: _substitute(item, mapping) for key, item in value.items()}
    return mapping.get(id(value), value)


def _detached(value):
    return value.detach() if isinstance(value, torch.Tensor) else value


def _array_from(body, buffers) -> np.ndarray:
    dtype_text, shape, index = body
    dtype = np.dtype(str(dtype_text)[:8])
    if dtype.kind not in NUMPY_KINDS:
        raise ValueError(f"an array of dtype {dtype} may not be sent")
    shape = tuple(int(n) for n in shape)
    raw = buffers[int(index)]
    if len(raw) != math.prod(shape) * dtype.itemsize or any(n < 0 for n in shape):
        raise ValueError(f"an array of shape {shape} and dtype {dtype} with {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _text(error: BaseException) -> str:
    try:
        return str(error)[:MAX_TEXT]
    except Exception:  # noqa: BLE001 - an error whose str fails
        return type(error).__name__


def open_pipes(read_fd: int, write_fd: int) -> tuple[io.BufferedReader, io.BufferedWriter]:
    """Binary files on two descriptors, for an :class:`Endpoint`."""
    return os.fdopen(read_fd, "rb", buffering=0), os.fdopen(write_fd, "wb")
