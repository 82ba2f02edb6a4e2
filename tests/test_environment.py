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
