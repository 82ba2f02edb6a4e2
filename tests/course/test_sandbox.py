"""hw8.course.sandbox: the commands that confine a grading job, and its memory limit."""

import subprocess
import sys
from pathlib import Path

from hw8.course import sandbox


def test_memory_limit_turns_a_big_allocation_into_memory_error(tmp_path):
    command = sandbox.wrap(
        sandbox.Sandbox("none"),
        [sys.executable, "-c", "bytearray(2**30)"],
        tmp_path,
        env={},
        memory=512 * 2**20,
        threads=1,
        name="x",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "MemoryError" in result.stderr


def test_bwrap_command_hides_the_course_and_keeps_python(tmp_path):
    course, scratch = tmp_path / "course", tmp_path / "scratch"
    course.mkdir()
    scratch.mkdir()
    box = sandbox.Sandbox("bwrap", (str(course),))
    command = sandbox.wrap(box, ["python", "-V"], scratch, env={}, memory=0, threads=1, name="x")
    text = " ".join(command)
    assert command[0] == "bwrap" and "--unshare-all" in command and command[-2:] == ["python", "-V"]
    assert f"--tmpfs {course.resolve()}" in text and f"--remount-ro {course.resolve()}" in text
    assert f"--bind {scratch} {scratch}" in text
    assert f"--tmpfs {Path.home().resolve()}" in text


def test_docker_command_has_no_network_and_only_the_scratch(tmp_path):
    box = sandbox.Sandbox("docker", (), "course-image:1")
    command = sandbox.wrap(
        box,
        ["python", "-m", "nbgrader", "autograde", "ps1"],
        tmp_path,
        env={"OMP_NUM_THREADS": "2", "PATH": "/x"},
        memory=2**30,
        threads=2,
        name="hw8-grade-1",
    )
    text = " ".join(command)
    assert command[:3] == ["docker", "run", "--rm"] and "--network none" in text
    assert "--read-only" in text and f"-v {tmp_path}:{tmp_path}" in text
    assert f"--memory {2**30}b" in text and "--cpus 2" in text and "-e OMP_NUM_THREADS=2" in text
    assert "PATH=/x" not in text
    assert command[-6:] == ["course-image:1", "python", "-m", "nbgrader", "autograde", "ps1"]
