"""``hw8 validate``: a student's check of a notebook without nbgrader.

It must count a test cell as passing only when grading would give it its points, name
each exercise not done yet, put a failure caused by an unfinished exercise down to that
exercise, and exit 0 only on a notebook autograde would score in full. Checked on the
release versions of the notebooks (blank: made here with nbgrader's own ClearSolutions and
ClearHiddenTests), on the instructor notebooks (full), and on one with one exercise wrong.
"""

import ast
import re
import shutil
from pathlib import Path
from textwrap import indent

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from hw8.checks import validate
from hw8.cli import main

SOURCE = Path(__file__).resolve().parents[2] / "notebooks/hw8"
NB01 = SOURCE / "01_vanilla_autoencoder.ipynb"
NB04 = SOURCE / "04_elbo.ipynb"
NB05 = SOURCE / "05_anomaly_detection.ipynb"


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("HW8_QUICK", "1")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def release(path: Path):
    """The student version of a source notebook, as `nbgrader generate_assignment` makes
    it with the course's configuration (solutions replaced by the stub, hidden tests cut)."""
    pytest.importorskip("nbgrader")  # the course extra (not in a student's environment)
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    from traitlets.config import Config

    config = Config()
    config.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    config.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    config.ClearSolutions.enforce_metadata = True
    nb = nbformat.read(path, as_version=4)
    nb, _ = ClearSolutions(config=config).preprocess(nb, {"language": "python"})
    nb, _ = ClearHiddenTests(config=config).preprocess(nb, {})
    return nb


def cells_of(nb, role: str) -> list:
    return [cell for cell in nb.cells if validate.role(cell) == role]


def stubbed_functions(nb) -> list[str]:
    """The function or class each exercise of a release notebook leaves as the stub."""
    names = []
    for cell in cells_of(nb, "exercise"):
        for node in ast.parse(cell.source).body:
            if validate.is_stub(node):
                names.append(node.name)
    return names


def run(path: Path, capsys) -> tuple[int, str]:
    status = main(["validate", str(path)])
    return status, capsys.readouterr().out


# ----------------------------------------------------------------------------- real runs


@pytest.mark.slow  # runs the notebook
def test_a_solved_notebook_is_ready_and_the_kernel_says_nothing(tmp_path, capfd, quick):
    path = tmp_path / NB04.name
    shutil.copy(NB04, path)
    before = path.read_bytes()
    assert main(["validate", str(path)]) == 0
    out, err = capfd.readouterr()
    tests = len(cells_of(nbformat.read(NB04, 4), "test"))
    answers = cells_of(nbformat.read(NB04, 4), "answer")
    assert f"{tests} of {tests} test cells pass" in out
    assert "FAILED" not in out and "not done yet" not in out
    assert f"written answers: {len(answers)} ({2 * len(answers)} points), graded by hand" in out
    assert "  ready: " in out
    assert path.read_bytes() == before  # the student's file is never changed
    # no debugger warning (frozen modules) and no kernel log line reaches the student
    assert "frozen" not in err and "IPKernelApp" not in err and "Debugger" not in err, err


@pytest.mark.slow  # runs the notebook
def test_the_blank_release_of_05_passes_no_test_and_names_every_exercise(tmp_path, capsys, quick):
    """The issue's case: the visible half of the leaderboard cells passes on the blank
    notebook, which grading scores 0; the tests now wait for `improved_scores`."""
    nb = release(NB05)
    path = tmp_path / NB05.name
    nbformat.write(nb, path)
    status, out = run(path, capsys)
    assert status == 1
    tests = cells_of(nb, "test")
    assert f"0 of {len(tests)} test cells pass" in out
    names = stubbed_functions(nb)
    assert "improved_scores" in names and len(names) == len(cells_of(nb, "exercise"))
    for name in names:
        assert f"  `{name}`: not done yet\n" in out
    for level in ("simple", "medium", "strong", "boss"):
        assert (
            f"FAILED  ae05-test-leaderboard-{level}: waits for `improved_scores` (not done yet)"
            in out
        )
    assert "not answered yet: ae05-answer-report" in out
    assert "  not ready: " in out
    assert "error in " not in out  # every locked cell's failure is put down to an exercise


@pytest.mark.slow  # runs the notebook
def test_one_exercise_left_blank_is_named_and_the_others_pass(tmp_path, capsys, quick):
    nb = nbformat.read(NB01, 4)
    blank = release(NB01)
    (stub,) = [c for c in cells_of(blank, "exercise") if c.id == "ae01-solution-mse-loss"]
    (cell,) = [c for c in nb.cells if c.id == stub.id]
    cell.source = stub.source
    path = tmp_path / NB01.name
    nbformat.write(nb, path)
    status, out = run(path, capsys)
    tests = len(cells_of(nb, "test"))
    assert status == 1
    assert f"{tests - 1} of {tests} test cells pass" in out
    assert "  `mse_loss`: not done yet\n" in out
    assert "FAILED  ae01-test-mse-loss: waits for `mse_loss` (not done yet)" in out
    assert out.count("FAILED") == 1


@pytest.mark.slow  # runs the notebook
def test_one_exercise_wrong_fails_its_own_test_only(tmp_path, capsys, quick):
    nb = nbformat.read(NB01, 4)
    (cell,) = [c for c in nb.cells if c.id == "ae01-solution-mse-loss"]
    body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S).group(1)
    margin = re.match(r"\s*", body).group(0)
    cell.source = cell.source.replace(body, f"{margin}return ((x_hat - x) ** 2).sum()\n")
    path = tmp_path / NB01.name
    nbformat.write(nb, path)
    status, out = run(path, capsys)
    tests = len(cells_of(nb, "test"))
    assert status == 1
    assert f"{tests - 1} of {tests} test cells pass" in out
    (failed,) = [line for line in out.splitlines() if "FAILED" in line]
    assert failed.startswith("  FAILED  ae01-test-mse-loss: AssertionError")
    assert "not done yet" not in out and "  not ready: " in out


def test_bad_paths_get_a_clear_error(tmp_path, capsys):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    assert main(["validate", str(broken)]) == 2
    assert "not a notebook file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the reading
# Executed notebooks made by hand (outputs as nbclient records them): milliseconds each.


def meta(grade_id, **flags) -> dict:
    return {"nbgrader": {"grade_id": grade_id, "schema_version": 3, **flags}}


def exercise(grade_id, source, error=None):
    cell = new_code_cell(source, metadata=meta(grade_id, solution=True, grade=False))
    return with_error(cell, error)


def graded(grade_id, source, error=None):
    cell = new_code_cell(source, metadata=meta(grade_id, grade=True, points=1, locked=True))
    return with_error(cell, error)


def locked(source, error=None, grade_id="code"):
    return with_error(new_code_cell(source, metadata=meta(grade_id, locked=True)), error)


def with_error(cell, error):
    if error:
        ename, evalue = error
        cell.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=[])]
    return cell


STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
NOT_DONE = ("NotImplementedError", "")


def test_a_name_error_is_put_down_to_the_exercise_that_should_define_the_name():
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("Write `square(x)`: the square of `x`."),
        exercise("sq", STUB, NOT_DONE),  # the student removed the def, kept the stub
        graded("test-sq", "assert square(3) == 9", ("NameError", "name 'square' is not defined")),
        new_markdown_cell("Write `cube(x)`."),
        exercise("cu", "def cube(x):\n    return x ** 3 +", ("SyntaxError", "invalid syntax")),
        graded("test-cu", "assert cube(2) == 8", ("NameError", "name 'cube' is not defined")),
        new_markdown_cell("Write `half(x)`."),
        exercise("ha", "def half(x):\n    return x / 2"),
        graded("test-ha", "assert half(4) == 2"),
    ]
    report = validate.analyse(nb)
    assert [(e.title, e.unfinished) for e in report.unfinished] == [
        ("`square`", "not done yet"),
        ("`cube`", "SyntaxError: invalid syntax"),
    ]
    assert report.tests == {
        "test-sq": "waits for `square` (not done yet)",
        "test-cu": "waits for `cube` (SyntaxError: invalid syntax)",
        "test-ha": None,
    }
    assert not report.ready


def test_names_are_followed_through_locked_cells_to_the_tests_that_read_them():
    """A test whose own checks pass reads a result made with an unfinished exercise
    (the leaderboard's case): it fails, waiting for that exercise. A test of a finished
    exercise still passes, and a name bound again later no longer waits."""
    nb = new_notebook()
    nb.cells = [
        exercise(
            "train", "SETTINGS = {'epochs': 3}\n\ndef train_all(task):\n" + indent(STUB, "    ")
        ),
        locked("models = train_all('task')\nlabel = 'sample'", NOT_DONE),
        exercise("score", "def score(model):\n    return 1.0"),
        graded("test-score", "assert score(None) == 1.0"),
        graded("test-train", "assert isinstance(SETTINGS, dict)\nprint(len(models))"),
        graded("test-label", "print(label)", ("NameError", "name 'label' is not defined")),
        locked("models = {}"),
        graded("test-after", "assert models == {}"),
    ]
    report = validate.analyse(nb)
    assert [e.title for e in report.unfinished] == ["`train_all`"]
    assert report.tests == {
        "test-score": None,
        "test-train": "waits for `train_all` (not done yet)",
        "test-label": "waits for `train_all` (not done yet)",
        "test-after": None,
    }
    assert report.locked_errors == {}  # the locked cell failed on the exercise, not itself


def test_a_locked_cell_failing_on_its_own_is_reported_and_a_finished_notebook_is_ready():
    nb = new_notebook()
    nb.cells = [
        exercise("ok", "def f():\n    return 1"),
        graded("test-ok", "assert f() == 1"),
        locked("plot(f())", ("NameError", "name 'plot' is not defined"), grade_id="figure"),
        new_markdown_cell(
            "YOUR ANSWER HERE", metadata=meta("why", grade=True, solution=True, points=2)
        ),
    ]
    report = validate.analyse(nb)
    assert report.tests == {"test-ok": None} and not report.unfinished
    assert report.locked_errors == {"figure": "NameError: name 'plot' is not defined"}
    assert report.answers == {"why": (2.0, False)}
    assert report.ready  # written answers are graded by hand: they never block
