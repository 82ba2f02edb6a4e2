import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cuda

from hw8 import device


def test_default_device_follows_name_then_environment(monkeypatch):
    monkeypatch.setenv(device.DEVICE_ENV, "cpu")
    assert device.default_device() == torch.device("cpu")
    assert device.default_device("cpu") == torch.device("cpu")
    monkeypatch.delenv(device.DEVICE_ENV)
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert device.default_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal on a CPU machine")
def test_unavailable_device_is_refused_with_the_available_list(monkeypatch):
    with pytest.raises(ValueError, match="'cuda' is not available.*available: cpu"):
        device.default_device("cuda")
    monkeypatch.setenv(device.DEVICE_ENV, "cuda")
    with pytest.raises(ValueError, match="HW8_DEVICE"):
        device.default_device()


def test_nonsense_device_name_is_refused():
    with pytest.raises(ValueError, match="'gpu0' is not a device name"):
        device.default_device("gpu0")


def test_available_devices_starts_with_cpu():
    devices = device.available_devices()
    assert devices[0] == torch.device("cpu")
    assert (torch.device("cuda") in devices) == torch.cuda.is_available()


def test_seed_everything_repeats_every_generator():
    draws = []
    for _ in range(2):
        generator = device.seed_everything(7)
        draws.append(
            (
                random.random(),
                np.random.rand(),
                torch.rand(1).item(),
                torch.rand(1, generator=generator).item(),
            )
        )
    assert draws[0] == draws[1]


@cuda
def test_cuda_is_the_default_when_present(monkeypatch):
    monkeypatch.delenv(device.DEVICE_ENV, raising=False)
    assert device.default_device().type == "cuda"
    assert device.resolve_device("cuda").type == "cuda"


# ----------------------------------------------------------------------------- CPU threads

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_cgroup_cpu_quota_is_read_with_its_parents(tmp_path):
    v2 = tmp_path / "v2"
    write(v2 / "cpu.max", "max 100000\n")
    write(v2 / "jobs/cpu.max", "250000 100000\n")
    write(v2 / "jobs/grader/cpu.max", "max 100000\n")
    proc = tmp_path / "cgroup"
    write(proc, "0::/jobs/grader\n")
    assert device.cgroup_cpu_limit(v2, proc) == 2.5  # the parent's quota applies
    write(proc, "0::/\n")
    assert device.cgroup_cpu_limit(v2, proc) is None  # "max": no quota
    v1 = tmp_path / "v1"
    write(v1 / "cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    write(v1 / "cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(v1 / "cpu,cpuacct/box/cpu.cfs_quota_us", "150000\n")
    write(v1 / "cpu,cpuacct/box/cpu.cfs_period_us", "100000\n")
    write(proc, "4:memory:/box\n3:cpu,cpuacct:/box\n")
    assert device.cgroup_cpu_limit(v1, proc) == 1.5
    assert device.cgroup_cpu_limit(v1, tmp_path / "missing") is None


def test_usable_cpus_are_the_affinity_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(device, "cgroup_cpu_limit", lambda: None)
    assert device.usable_cpus() == 4
    monkeypatch.setattr(device, "cgroup_cpu_limit", lambda: 1.5)
    assert device.usable_cpus() == 1  # a quota of 1.5 CPUs: one thread, never throttled
    monkeypatch.setattr(device, "cgroup_cpu_limit", lambda: 0.2)
    assert device.usable_cpus() == 1


@pytest.fixture
def hw8_threads(monkeypatch):
    """hw8's thread choice, fresh, restored afterwards with torch's thread count."""
    for name in device.THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    monkeypatch.setattr(device, "_threads", {"cap": threads, "chosen": None})
    yield
    torch.set_num_threads(threads)


def test_cpus_busy_elsewhere_are_left_out_once_per_process(monkeypatch, hw8_threads):
    monkeypatch.setattr(device, "usable_cpus", lambda: 4)
    monkeypatch.setattr(device, "busy_elsewhere", lambda window=0: 2.6)
    assert device.fit_threads() == 1 == torch.get_num_threads()  # 4 - 2.6 free: 1
    monkeypatch.setattr(device, "busy_elsewhere", lambda window=0: 0.0)
    assert device.fit_threads() == 1  # kept: the same seed gives the same sums in a process
    assert device.fit_threads(3) == 3 == torch.get_num_threads()  # a resumed run's own


def test_a_thread_count_chosen_elsewhere_is_left_alone(monkeypatch, hw8_threads):
    monkeypatch.setattr(device, "busy_elsewhere", lambda window=0: 0.0)
    torch.set_num_threads(1)
    device._threads["cap"] = 2
    assert device.fit_threads() == 1  # torch.set_num_threads by someone else: kept
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(device, "busy_elsewhere", lambda window=0: 5.0)
    assert device.fit_threads() == 2 and device._threads["chosen"] is None


taskset = pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs taskset and two CPUs",
)

TRAIN = """
import torch
torch.set_num_threads(8)  # more than the one CPU this process may use
from hw8 import train
from hw8.datasets import load_bundled
from hw8.device import seed_everything
from hw8.models import build_model
print(torch.get_num_threads())
seed_everything(0)
model = build_model("fcn", (1, 28, 28))
train.train(model, load_bundled().train_images[:200], epochs=1, batch_size=100,
            device="cpu", progress=False, checkpoint="checkpoint.pt")
state = torch.load("checkpoint.pt", weights_only=True)
print(torch.get_num_threads(), state["config"]["cpu_threads"])
"""


@taskset
def test_training_on_one_cpu_uses_one_thread(tmp_path):
    """Run under ``taskset -c 0``: hw8's import brings torch's threads down to the one CPU
    the process may use, and training keeps (and records) that one thread."""
    env = {k: v for k, v in os.environ.items() if k not in device.THREAD_ENVS}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", TRAIN],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["1", "1", "1"], result.stdout


BUSY = "while True: pass"


@taskset
def test_two_busy_processes_leave_training_one_thread():
    """Two CPUs, both kept busy by other processes: the first training picks one thread
    (two would wait on each other while the busy processes hold the cores)."""
    env = {k: v for k, v in os.environ.items() if k not in device.THREAD_ENVS}
    env["PYTHONPATH"] = str(ROOT)
    pin = ["taskset", "-c", "0,1"]
    busy = [subprocess.Popen([*pin, sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        time.sleep(0.5)
        probe = "from hw8 import device; print(device.usable_cpus(), device.fit_threads())"
        out = subprocess.run(
            [*pin, sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert out == ["2", "1"], out


def test_native_bfloat16_on_the_cpu_needs_avx512_bf16_or_amx(monkeypatch):
    """A plain AVX-512 CPU (Skylake to Ice Lake) only emulates bfloat16: not native."""
    for bf16, amx, expected in [(False, False, False), (True, False, True), (False, True, True)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert device.native_bfloat16(torch.device("cpu")) is expected


def test_native_bfloat16_on_cuda_needs_ampere_or_later(monkeypatch):
    for capability, expected in [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d, c=capability: c)
        assert device.native_bfloat16(torch.device("cuda")) is expected


def test_native_bfloat16_elsewhere_is_false():
    assert device.native_bfloat16(torch.device("mps")) is False
    assert device.native_bfloat16(torch.device("meta")) is False
