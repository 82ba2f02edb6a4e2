"""environment.yml (conda) and pyproject.toml (pip) must pin the same packages."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)$")


def _pins(lines):
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        assert match, f"not an exact pin (name==version): {line!r}"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        d for ds in project["optional-dependencies"].values() for d in ds
    ]
    return _pins(lines)


def environment_pins():
    lines = [
        line.strip()[2:]
        for line in (ROOT / "environment.yml").read_text().splitlines()
        if line.strip().startswith("- ") and "==" in line
    ]
    return _pins(lines)


def test_environment_yml_and_pyproject_pin_the_same_versions():
    assert environment_pins() == pyproject_pins()


def test_torch_is_pinned_to_the_cpu_build_on_disk():
    assert pyproject_pins()["torch"] == "2.13.0"


def test_main_dependencies_are_all_pinned():
    pins = pyproject_pins()
    for name in ("jupyterlab", "torch", "matplotlib", "nbgrader", "pytest", "nbclient"):
        assert name in pins, f"{name} is not pinned in pyproject.toml"
