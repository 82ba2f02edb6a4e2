"""The grader's re-check (hw8.course.recheck) on small notebooks built here.

Each test runs the re-check for real (a process of its own, as in autograde) on a
notebook of three kinds of cell: locked instructor code, a student solution and a test
cell. The full nbgrader round trip (tests/test_nbgrader.py) covers the course notebooks;
these cover the re-check's own promises, in seconds.
"""

from __future__ import annotations

import textwrap
import time

import nbformat
import pytest

import hw8.course.recheck as recheck_module
from hw8.course.recheck import recheck

SETUP = "import torch\nfrom hw8 import grading\n"
HONEST = "def double(x):\n    return 2 * x\n"
TEST = 'grading.assert_close(double(torch.tensor(1.5)), torch.tensor(3.0), name="double");\n'


def cell(source: str, role: str):
    """A code cell: ``locked`` instructor code, a ``solution`` or a ``test`` cell."""
    nbgrader = {
        "locked": {"locked": True, "solution": False, "grade": False, "grade_id": "setup"},
        "solution": {"locked": False, "solution": True, "grade": False, "grade_id": "answer"},
        "test": {"locked": True, "solution": False, "grade": True, "grade_id": "check"},
    }[role]
    return nbformat.v4.new_code_cell(textwrap.dedent(source), metadata={"nbgrader": nbgrader})


def notebook(solution: str, test: str = TEST, setup: str = SETUP):
    """Setup, the student's solution, then the test cell ``check``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell(setup, "locked"), cell(solution, "solution"), cell(test, "test")]
    return nb


def run(tmp_path, nb, files: dict[str, str] | None = None) -> dict[str, str]:
    """The re-check's failures for ``nb`` handed in with ``files`` beside it."""
    folder = tmp_path / "submission"
    for name, text in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    folder.mkdir(parents=True, exist_ok=True)
    return recheck(nb, folder, cell_timeout=60, total_timeout=120)


def test_an_honest_answer_is_confirmed(tmp_path):
    assert run(tmp_path, notebook(HONEST)) == {}


def test_a_wrong_answer_fails(tmp_path):
    failures = run(tmp_path, notebook("def double(x):\n    return 3 * x\n"))
    assert list(failures) == ["check"]
    assert "double" in failures["check"]


@pytest.mark.parametrize(
    "switch_off",
    ["sys.settrace(None)", "sys.setprofile(None)", "sys.settrace(None); sys.setprofile(None)"],
)
def test_switching_the_hooks_off_inside_the_tested_function_buys_nothing(tmp_path, switch_off):
    solution = f"""
    import sys

    import hw8.grading


    def double(x):
        {switch_off}
        hw8.grading.assert_close = lambda *args, **kwargs: None
        return 3 * x
    """
    failures = run(tmp_path, notebook(solution))
    assert list(failures) == ["check"]


def test_a_module_the_tests_import_late_is_guarded_from_the_start(tmp_path):
    """The test cell imports hw8.anomaly only after the student's cell patched it."""
    solution = """
    import hw8.anomaly

    hw8.anomaly.roc_auc = lambda labels, scores: 1.0
    """
    test = "from hw8.anomaly import roc_auc\n\nassert roc_auc([0, 1], [1, 0]) == 1.0\n"
    failures = run(tmp_path, notebook(solution, test))
    assert list(failures) == ["check"]


def test_modules_handed_in_beside_the_notebook_shadow_nothing(tmp_path):
    """A fake ``hw8`` package (a re-check that confirms everything, checks that pass
    anything) and a fake ``numpy.py``: the re-check runs the installed ones."""
    always_ok = """
    import json
    import sys

    token = sys.stdin.readline().strip()
    print(token, json.dumps(["check", True, ""]))
    print(token, "done")
    """
    files = {
        "hw8/__init__.py": "",
        "hw8/grading.py": "def assert_close(*args, **kwargs):\n    pass\n",
        "hw8/course/__init__.py": "",
        "hw8/course/recheck.py": always_ok,
        "numpy.py": "raise SystemExit('the fake numpy ran')\n",
    }
    failures = run(tmp_path, notebook("def double(x):\n    return 3 * x\n"), files)
    assert list(failures) == ["check"]
    assert "double" in failures["check"]


def test_a_students_own_helper_module_still_imports(tmp_path):
    solution = "from helper import twice\n\n\ndef double(x):\n    return twice(x)\n"
    files = {"helper.py": "def twice(x):\n    return x + x\n"}
    assert run(tmp_path, notebook(solution), files) == {}


def test_the_graders_environment_of_the_moment_reaches_the_cells(tmp_path, monkeypatch):
    """A forked re-check gets the environment of the grader when it starts (nbgrader sets
    NBGRADER_EXECUTION just before the kernel run), not the zygote's."""
    run(tmp_path, notebook(HONEST))  # the zygote is running before the variable is set
    monkeypatch.setenv("HW8_PROBE", "set late")
    test = 'import os\n\nassert os.environ.get("HW8_PROBE") == "set late"\n'
    assert run(tmp_path, notebook(HONEST, test)) == {}


def test_a_recheck_that_kills_the_zygote_stops_no_later_recheck(tmp_path):
    killer = "import os\nimport signal\n\nos.kill(os.getppid(), signal.SIGKILL)\n" + HONEST
    run(tmp_path / "first", notebook(killer))
    assert run(tmp_path / "second", notebook(HONEST)) == {}
    assert list(run(tmp_path / "third", notebook("def double(x):\n    return x\n"))) == ["check"]


def test_a_recheck_past_its_total_time_is_stopped(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    started = time.monotonic()
    sleeper = "import time\n\ntime.sleep(60)\n" + HONEST
    failures = recheck(notebook(sleeper), folder, cell_timeout=60, total_timeout=3)
    assert time.monotonic() - started < 30
    assert failures == {"check": "the re-check did not reach this cell (stopped or timed out)"}


@pytest.mark.parametrize(
    "answer, failed", [(HONEST, []), ("def double(x):\n    return x\n", ["check"])]
)
def test_a_fresh_process_where_forking_is_not_available(tmp_path, monkeypatch, answer, failed):
    monkeypatch.setattr(recheck_module, "FORK", False)
    assert list(run(tmp_path, notebook(answer))) == failed
