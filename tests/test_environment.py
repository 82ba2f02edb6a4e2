"""Ranges for the package, a lock for the course environment, and the two agree.

pyproject.toml declares what hw8 needs as ranges; requirements/lock.txt pins the course
environment exactly (make, CI, the grading machine); environment.yml installs that lock.
"""

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from lock import LOCK, normalize, read_lock  # noqa: E402

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
COURSE_TOOLS = {"jupyterlab", "nbgrader", "nbformat", "ipykernel"}
# `hw8 validate` runs a notebook with nbclient: a student's install of the wheel brings it
VALIDATE_TOOLS = {"nbclient"}
# An upper bound (<, <=, ==, ~=, !=) on a runtime dependency needs a known break: name it here
# with the reason, or do not add one.
KNOWN_BREAKS: dict[str, str] = {}


def requirements(group: str) -> list[Requirement]:
    lines = (
        PROJECT["dependencies"]
        if group == "runtime"
        else PROJECT["optional-dependencies"].get(group, [])
    )
    return [Requirement(line) for line in lines]


ALL = [(g, r) for g in ("runtime", "course", "dev") for r in requirements(g)]


def test_the_lock_is_exact_pins_only():
    lock = read_lock()  # raises on any line that is not name==version
    assert len(lock) > 20, "the lock should hold the whole environment, transitive deps too"


def test_torch_is_locked_to_the_cpu_build_on_disk():
    assert read_lock()["torch"] == "2.13.0"


@pytest.mark.parametrize("group, req", ALL, ids=[f"{g}-{r.name}" for g, r in ALL])
def test_every_declared_dependency_is_locked_at_a_version_its_range_admits(group, req):
    lock = read_lock()
    name = normalize(req.name)
    assert name in lock, f"{req.name} ({group}) is not pinned in {LOCK.name}"
    assert req.specifier.contains(Version(lock[name]), prereleases=True), (
        f"{LOCK.name} pins {name}=={lock[name]}, outside pyproject's {group} range {req}"
    )


def test_runtime_dependencies_are_ranges_without_upper_bounds():
    names = set()
    for req in requirements("runtime"):
        names.add(normalize(req.name))
        ops = {spec.operator for spec in req.specifier}
        assert ">=" in ops, f"{req}: give the lowest version that was run (>=)"
        upper = ops - {">="}
        assert not upper or normalize(req.name) in KNOWN_BREAKS, (
            f"{req}: no upper bound or exact pin without a known break (KNOWN_BREAKS)"
        )
    assert {"torch", "numpy", "scikit-learn", "matplotlib"} <= names


def test_course_tooling_is_an_extra_not_a_runtime_dependency():
    runtime = {normalize(r.name) for r in requirements("runtime")}
    course = {normalize(r.name) for r in requirements("course")}
    assert not runtime & COURSE_TOOLS, "students on Colab must not pay for the course tooling"
    assert course >= COURSE_TOOLS
    assert runtime >= VALIDATE_TOOLS, "hw8 validate must work after installing the wheel alone"
    assert {normalize(r.name) for r in requirements("dev")} >= {"pytest", "ruff"}


def test_python_versions_are_declared():
    assert PROJECT["requires-python"] == ">=3.11"


def test_environment_yml_installs_the_lock_and_nothing_else():
    text = (ROOT / "environment.yml").read_text()
    pip = [
        m.group(1).strip()
        for m in re.finditer(r"^ {6}- (.+)$", text, flags=re.M)  # the pip: section's items
    ]
    lock = LOCK.relative_to(ROOT).as_posix()
    assert pip == [f"-r {lock}", f"-c {lock}", "-e .[course,dev]"], pip
    assert re.search(r"^\s+- python=3\.11$", text, flags=re.M)


def test_make_installs_with_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    lock = LOCK.relative_to(ROOT).as_posix()
    assert f"LOCK := {lock}" in makefile
    assert '-e ".[course,dev]" -c $(LOCK)' in makefile
    assert "-r $(LOCK)" in makefile


@pytest.mark.slow
def test_make_release_on_a_fresh_copy_needs_no_activation(tmp_path):
    """`make release` in a copy of the repository (the course environment linked in, PATH
    without it, as in a new shell): release/hw8/ gets the notebooks and the wheel, the
    source folder no wheel; a failing step ends with one line that says what to do and
    leaves no new gradebook.db."""
    import os
    import shutil
    import subprocess

    if shutil.which("make") is None or not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs make and the course environment (.venv)")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    copy = tmp_path / "clone"
    for name in tracked:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    venv_bin = str(ROOT / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {**os.environ, "PATH": path}
    env.pop("VIRTUAL_ENV", None)
    make = ["make", "-o", ".venv/.installed", "release"]  # the linked environment stays as is

    result = subprocess.run(make, cwd=copy, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    release = sorted(p.name for p in (copy / "release" / "hw8").iterdir())
    notebooks = sorted(p.name for p in (ROOT / "notebooks" / "hw8").glob("*.ipynb"))
    assert [n for n in release if n.endswith(".ipynb")] == notebooks
    assert [n for n in release if n.endswith(".whl")] == ["hw8-0.1.0-py3-none-any.whl"]
    assert not list((copy / "notebooks" / "hw8").glob("*.whl"))
    assert "make release: release/hw8/ holds" in result.stdout

    shutil.rmtree(copy / "release")
    (copy / "gradebook.db").unlink()
    (copy / "release").write_text("a file where nbgrader wants a folder")
    result = subprocess.run(make, cwd=copy, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("make release failed")]
    assert ours == ["make release failed: nbgrader could not make release/hw8 (its log is above)"]
    assert result.stderr.strip().splitlines()[-2] == ours[0]  # then only make's own line
    assert not (copy / "gradebook.db").exists()
