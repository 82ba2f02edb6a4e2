"""Device choice, CPU threads and seeding: the same code runs on CPU, CUDA and Apple MPS.

**CPU threads.** PyTorch's own thread count ignores a container's CPU quota and the other
jobs on the machine. hw8 changes that without any setting by the student:

- when hw8 is imported, PyTorch's threads are capped at the CPUs this process may run on
  (its affinity mask, ``os.sched_getaffinity``, and a container's CPU quota, the cgroup's
  ``cpu.max`` or ``cpu.cfs_quota_us``);
- the first time it trains or scores on the CPU, it also leaves out the CPUs other
  processes keep busy at that moment (measured over a fifth of a second from
  ``/proc/stat``, this process's own time taken away), and keeps that number for the
  rest of the process, so that the same seed gives the same result within it. Threads
  of one process that wait on each other while other jobs hold the cores slow training
  down far more than its fair share (figures: ``benchmarks/contention.py``).

Nothing is changed where the choice was made already: ``OMP_NUM_THREADS`` or
``MKL_NUM_THREADS`` set (the grader sets them per kernel), or ``torch.set_num_threads``
called with another number.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from hw8.errors import DeviceError

DEVICE_ENV = "HW8_DEVICE"
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
CGROUP = Path("/sys/fs/cgroup")
LOAD_WINDOW_S = 0.2


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def default_device(name: str | None = None) -> torch.device:
    """The device to use: ``name``, else ``$HW8_DEVICE``, else CUDA > MPS > CPU.

    An explicit name that this machine cannot use raises a ``DeviceError`` saying
    which devices are available.
    """
    name = name or os.environ.get(DEVICE_ENV) or None
    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        fit_threads()
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"device {name!r} is not a device name ({error}).") from error
    usable = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if not usable.get(device.type, False):
        names = ", ".join(str(d) for d in available_devices())
        raise DeviceError(
            f"device {name!r} is not available on this machine; available: {names}. "
            f"Pass one of those with --device or unset ${DEVICE_ENV}."
        )
    if device.type == "cpu":
        fit_threads()
    return device


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """Accept a ``torch.device``, a name such as ``"cuda"``, or None (the default). Work
    on the CPU first fits PyTorch's threads to the free CPUs (:func:`fit_threads`)."""
    if isinstance(device, torch.device):
        if device.type == "cpu":
            fit_threads()
        return device
    return default_device(device)


def available_devices() -> list[torch.device]:
    """Every device kind this machine can run on: CPU, plus CUDA and MPS when present."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if _mps_available():
        devices.append(torch.device("mps"))
    return devices


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: NVIDIA GPUs from Ampere on
    (compute capability 8), CPUs with AVX512-BF16 or AMX. Elsewhere bfloat16 is emulated
    (a plain AVX-512 CPU, an older GPU, Apple's MPS here) and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a CPU ``torch.Generator`` seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- CPU threads


def cgroup_cpu_limit(root: Path = CGROUP, proc_cgroup: Path = Path("/proc/self/cgroup")):
    """The CPU quota of this process's control group and its parents, in CPUs (e.g. 1.5),
    or None when there is none (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``)."""
    limits = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one hierarchy
            folders = [root / path.lstrip("/"), root]
            limits += [_read_v2(folder / "cpu.max") for folder in _with_parents(folders, root)]
        elif "cpu" in controllers.split(","):
            base = root / controllers
            if not base.is_dir():
                base = root / "cpu"
            folders = [base / path.lstrip("/"), base]
            limits += [_read_v1(folder) for folder in _with_parents(folders, base)]
    found = [limit for limit in limits if limit]
    return min(found) if found else None


def _with_parents(folders: list[Path], top: Path) -> list[Path]:
    """Each folder and its parents up to ``top`` (a limit higher up applies too)."""
    seen: list[Path] = []
    for folder in folders:
        while folder not in seen:
            seen.append(folder)
            if folder == top or top not in folder.parents:
                break
            folder = folder.parent
    return seen


def _read_v2(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _read_v1(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cpus() -> int:
    """How many CPUs this process may use: its affinity mask, capped by the cgroup's
    CPU quota (rounded down, at least 1)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity mask
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def _cpu_times(cpus: set[int]) -> tuple[float, float] | None:
    """(idle, total) clock ticks of ``cpus`` so far, from /proc/stat; None elsewhere."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    idle = total = 0.0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [float(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle += values[3] + values[4]
        total += sum(values)
    return (idle, total) if total else None


def busy_elsewhere(window: float = LOAD_WINDOW_S) -> float | None:
    """How many of this process's CPUs other processes keep busy, measured over
    ``window`` seconds (this process's own CPU time taken away); None where /proc/stat
    cannot be read."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return None
    start, own = _cpu_times(cpus), time.process_time()
    time.sleep(window)
    end, own = _cpu_times(cpus), time.process_time() - own
    if start is None or end is None or end[1] <= start[1]:
        return None
    busy = len(cpus) * (1 - (end[0] - start[0]) / (end[1] - start[1]))
    return max(0.0, busy - own / window)


_threads = {"cap": None, "chosen": None}  # what hw8 set at import and when it first ran


def threads_chosen_elsewhere() -> bool:
    """Whether someone else chose PyTorch's CPU threads: the environment, or
    ``torch.set_num_threads`` with a number hw8 did not set."""
    if any(os.environ.get(name) for name in THREAD_ENVS):
        return True
    ours = _threads["chosen"] or _threads["cap"]
    return ours is not None and torch.get_num_threads() != ours


def cap_threads() -> None:
    """At import: no more PyTorch threads than the CPUs this process may use."""
    if any(os.environ.get(name) for name in THREAD_ENVS):
        return
    cpus = usable_cpus()
    if torch.get_num_threads() > cpus:
        torch.set_num_threads(cpus)
    try:
        if torch.get_num_interop_threads() > cpus:
            torch.set_num_interop_threads(cpus)
    except RuntimeError:  # only possible before any inter-op work; then leave it
        pass
    _threads["cap"] = torch.get_num_threads()


def fit_threads(threads: int | None = None) -> int:
    """PyTorch's CPU threads for this process's work: decided once, the first time it
    trains or scores on the CPU, as the CPUs it may use less those other processes keep
    busy (``threads`` given: that number, e.g. a checkpoint's when a run resumes). Left
    alone when the thread count was chosen elsewhere (:func:`threads_chosen_elsewhere`).
    Returns the thread count in use."""
    if threads_chosen_elsewhere():
        return torch.get_num_threads()
    if threads is None and _threads["chosen"] is not None:
        return _threads["chosen"]
    cpus = usable_cpus()
    if threads is None:
        busy = busy_elsewhere()
        free = cpus if busy is None else cpus - busy
        threads = max(1, min(cpus, math.floor(free + 0.5)))
    threads = max(1, min(cpus, threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _threads["chosen"] = threads
    return threads


cap_threads()
