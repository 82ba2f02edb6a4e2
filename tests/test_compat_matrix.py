"""The compatibility matrix's definitions and checks (scripts/compat_matrix.py, scripts/lock.py).

The matrix itself builds virtual environments and takes minutes: ``make test`` runs it after
pytest (``make compat``). These tests check, in milliseconds, that what it runs is what
pyproject.toml and the README claim, and that its comparisons catch what they should.
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

import compat_matrix  # noqa: E402
from lock import differences, normalize, parse_pins, read_lock  # noqa: E402

RUNTIME = [
    Requirement(line)
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
]


def preinstalled(env) -> dict[str, str]:
    return parse_pins("\n".join(arg for arg in env.preinstall if "==" in arg))


def test_the_lowest_environment_runs_exactly_the_declared_lower_bounds():
    lowest = preinstalled(compat_matrix.environments()["lowest"])
    for req in RUNTIME:
        name = normalize(req.name)
        if name == "torch":  # only 2.13.0 is at hand; the README says the bound is untested
            assert name not in lowest
            continue
        (bound,) = [spec.version for spec in req.specifier if spec.operator == ">="]
        assert lowest[name] == bound, f"{name}: declared >={bound}, matrix runs {lowest[name]}"
    assert compat_matrix.TORCH == read_lock()["torch"] == "2.13.0"


def test_the_colab_environment_has_colabs_versions():
    colab = preinstalled(compat_matrix.environments()["colab"])
    assert colab["numpy"] == "2.1.3"
    assert colab["matplotlib"] == "3.10.0"
    assert colab["ipython"] == "7.34.0"


@pytest.mark.parametrize("env", ["colab", "lowest"])
def test_every_preinstalled_runtime_version_is_inside_hw8s_ranges(env):
    versions = preinstalled(compat_matrix.environments()[env])
    for req in RUNTIME:
        name = normalize(req.name)
        if name in versions:
            assert req.specifier.contains(Version(versions[name])), (env, name, versions[name])


def test_the_default_run_covers_colab_and_lowest():
    assert set(compat_matrix.DEFAULT) == {"colab", "lowest"}
    assert set(compat_matrix.environments()) == {"lock", "colab", "lowest"}


def test_only_tests_of_the_course_room_are_left_out():
    left_out = compat_matrix.course_test_files()
    for path in left_out:
        assert re.search(r"hw8\.course|from hw8 import course", path.read_text()), path
    assert ROOT / "tests" / "test_anomaly.py" not in left_out
    assert ROOT / "tests" / "test_compat_matrix.py" not in left_out


def test_every_test_file_that_imports_the_course_room_at_module_level_is_left_out():
    """Found in any folder under tests/ (tests/course/ moved there once and the matrix's
    student environments, which have no nbgrader, failed to collect them)."""
    left_out = set(compat_matrix.course_test_files())
    top_level = re.compile(
        r"^(from hw8\.course|from hw8 import course|import nbgrader|from nbgrader)", re.M
    )
    needing = {p for p in (ROOT / "tests").rglob("test_*.py") if top_level.search(p.read_text())}
    assert ROOT / "tests" / "course" / "test_autograde.py" in needing
    assert needing <= left_out, sorted(map(str, needing - left_out))
    assert ROOT / "tests" / "test_compat_matrix.py" not in left_out


def test_differences_finds_moved_missing_and_unexpected_packages():
    expected = {"numpy": "2.1.3", "torch": "2.13.0", "tqdm": "4.67.1"}
    found = {"numpy": "2.4.6", "torch": "2.13.0+cpu", "dask": "1.0"}
    assert differences(expected, found) == [
        "numpy: expected 2.1.3, found 2.4.6",
        "tqdm==4.67.1: missing",
        "dask==1.0: not expected",
    ]
    assert differences(expected, found, extra=False)[-1] == "tqdm==4.67.1: missing"
    assert differences({"torch": "2.13.0"}, {"torch": "2.13.0+cpu"}) == []


def test_a_lock_line_that_is_not_an_exact_pin_is_refused():
    assert parse_pins("# comment\nScikit_Learn==1.9.1  # note\n") == {"scikit-learn": "1.9.1"}
    with pytest.raises(ValueError, match="not an exact pin"):
        parse_pins("numpy>=2.0\n")
