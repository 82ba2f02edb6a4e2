"""hw8.course.job: a job's environment and how an interrupted grader stops it."""

import subprocess
import sys
import threading
import time

import pytest

from hw8.course import sandbox


def test_kernels_get_their_share_of_threads(tmp_path, monkeypatch):
    """A job's kernel gets OMP_NUM_THREADS and friends, and torch follows them."""
    from hw8.course.job import THREAD_VARIABLES, Job, environment

    monkeypatch.setenv("SECRET_TOKEN", "do not hand to students")
    job = Job("ps1", "s", "", {}, {}, {}, b"", sandbox.Sandbox("none"), 60, threads=1)
    env = environment(job, tmp_path)
    assert {env[name] for name in THREAD_VARIABLES} == {"1"}
    assert env["HOME"] == str(tmp_path / "home") and "SECRET_TOKEN" not in env
    probe = "import torch; print(torch.get_num_threads())"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "1"


def test_an_interrupted_grader_stops_its_running_jobs():
    """Ctrl-C sets job.STOP: a job waiting on its sandbox stops at once (and is killed)."""
    from hw8.course import job

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    threading.Timer(0.5, job.STOP.set).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            job.wait(process, time.monotonic() + 60)
    finally:
        job.STOP.clear()
        job.kill_tree(process.pid)
        process.wait()
    assert process.returncode is not None
