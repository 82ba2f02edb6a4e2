"""The notebook lint (``hw8 course check``): the committed notebooks pass, and each rule bites.

Each failing case starts from a copy of the real notebooks and breaks exactly one thing.
The last test is what a new instructor does: edit a sentence and a hidden test, lint,
``nbgrader generate_assignment``, and find the change where it belongs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from hw8.cli import main
from hw8.course import lint

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "notebooks" / "hw8"
RELEASED = ROOT / "notebooks" / "released_ids.json"
NB03 = "03_variational_autoencoder.ipynb"


@pytest.fixture
def course(tmp_path):
    """A copy of the source notebooks and the released-id list."""
    shutil.copytree(SOURCE, tmp_path / "hw8", ignore=shutil.ignore_patterns("*.csv", "*.pt"))
    shutil.copy(RELEASED, tmp_path / "released_ids.json")
    return tmp_path


def edit(course: Path, name: str, change) -> None:
    """Apply ``change(notebook)`` to one notebook of the copy."""
    path = course / "hw8" / name
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    change(nb)
    path.write_text(json.dumps(nb, indent=1))  # as saved, without nbformat's repairs


def cell(nb, cell_id: str):
    return next(c for c in nb.cells if c.id == cell_id)


def problems(course: Path) -> list[str]:
    return [str(p) for p in lint.check_course(course / "hw8", course / "released_ids.json")]


def test_the_committed_notebooks_pass(capsys):
    assert main(["course", "check", "--source", str(SOURCE), "--released", str(RELEASED)]) == 0
    assert "every notebook passes the lint" in capsys.readouterr().out


def test_every_graded_and_locked_cell_is_released():
    record = lint.read_released(RELEASED)
    current = lint.released_ids(lint.read_notebooks(SOURCE))
    for name, ids in current.items():
        assert set(ids) <= set(record.get(name, [])), (
            f"{name}: ids not yet in notebooks/released_ids.json; run "
            "`hw8 course check --record-release` when you release them"
        )


def test_no_builder_scripts_hold_notebook_text():
    for script in (ROOT / "scripts").glob("*.py"):
        assert "BEGIN SOLUTION" not in script.read_text(), script


def _set_output(nb):
    cell(nb, "ae03-code-setup").outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hi")
    ]


def _attach(nb):
    text = cell(nb, "ae03-text-title")
    text.source += "\n![x](data:image/png;base64,iVBORw0KGgo=)"


def _rename(nb):
    target = cell(nb, "ae03-test-reparameterize")
    target.id = target.metadata["nbgrader"]["grade_id"] = "ae03-test-reparam-v2"


def _no_points(nb):
    del cell(nb, "ae03-test-gaussian-kl").metadata["nbgrader"]["points"]


def _unlock(nb):
    cell(nb, "ae03-test-vae-loss").metadata["nbgrader"]["locked"] = False


def _no_markers(nb):
    target = cell(nb, "ae03-solution-vae-loss")
    target.source = target.source.replace("### BEGIN SOLUTION", "")


def _hidden_in_text(nb):
    cell(nb, "ae03-text-training").source += "\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"


def _positional_id(nb):
    target = cell(nb, "ae03-text-training")
    target.id = target.metadata["nbgrader"]["grade_id"] = "ae03-cell-15"


def _duplicate(nb):
    target = cell(nb, "ae03-text-training")
    target.id = target.metadata["nbgrader"]["grade_id"] = "ae03-text-title"


def _grade_id_differs(nb):
    cell(nb, "ae03-code-setup").metadata["nbgrader"]["grade_id"] = "ae03-code-other"


def _solution_in_test(nb):
    cell(nb, "ae03-test-vae-loss").source += "\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"


def _unshared(nb):
    cell(nb, "ae03-text-how-to").source += "\nOnly in notebook 03."


def _shows_a_value(nb):
    cell(nb, "ae03-test-vae-loss").source += "\n0.5  # nbgrader would read 0.5 as the score"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set_output, "has outputs"),
        (_attach, "embedded image"),
        (_rename, "already handed out"),
        (_no_points, "needs points > 0"),
        (_unlock, "locked=True"),
        (_no_markers, "needs ### BEGIN SOLUTION"),
        (_hidden_in_text, "must come in pairs, in test cells"),
        (_positional_id, "already handed out"),
        (_duplicate, "the id is also used"),
        (_grade_id_differs, "must equal the cell id"),
        (_solution_in_test, "solution markers outside a solution cell"),
        (_shows_a_value, "reads a test cell's displayed value as its score"),
        (_unshared, "the block is shared"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[:24],
)
def test_each_rule_catches_its_mistake(course, change, message):
    edit(course, NB03, change)
    found = problems(course)
    assert any(message in p for p in found), found


def test_ids_must_follow_the_naming_rule(course):
    def rename(nb):
        target = cell(nb, "ae03-text-training")
        target.id = target.metadata["nbgrader"]["grade_id"] = "Training"

    edit(course, NB03, rename)
    assert any("the id must read ae03-ROLE-NAME" in p for p in problems(course))


def test_adding_a_cell_is_fine_and_can_be_recorded(course):
    def add(nb):
        new = nbformat.v4.new_markdown_cell("A new paragraph.")
        new.id = "ae03-text-new-paragraph"
        new.metadata["nbgrader"] = {
            "grade": False,
            "grade_id": new.id,
            "locked": True,
            "schema_version": 3,
            "solution": False,
            "task": False,
        }
        nb.cells.insert(5, new)

    edit(course, NB03, add)
    assert problems(course) == []
    assert lint.record_release(course / "hw8", course / "released_ids.json") == 1
    record = json.loads((course / "released_ids.json").read_text())
    assert "ae03-text-new-paragraph" in record[NB03]
    assert lint.record_release(course / "hw8", course / "released_ids.json") == 0


def test_a_failing_check_exits_non_zero(course, capsys):
    edit(course, NB03, _unlock)
    code = main(
        ["course", "check", "--source", str(course / "hw8"), "--released", str(course / "x.json")]
    )
    assert code == 1
    assert "ae03-test-vae-loss" in capsys.readouterr().out


@pytest.mark.slow
def test_an_instructors_edit_reaches_the_release(tmp_path):
    """Edit one sentence and one hidden test, lint, generate the release: both land right."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    sentence = "This sentence was edited by the instructor."
    hidden = "assert 'edited hidden test'"

    def change(nb):
        cell(nb, "ae03-text-training").source += f"\n\n{sentence}"
        test = cell(nb, "ae03-test-gaussian-kl")
        test.source = test.source.replace(
            "### BEGIN HIDDEN TESTS", f"### BEGIN HIDDEN TESTS\n{hidden}"
        )

    edit(tmp_path / "notebooks", NB03, change)
    assert main(["course", "check", "--source", str(tmp_path / "notebooks" / "hw8")]) == 0
    nbgrader = Path(sys.executable).with_name("nbgrader")
    subprocess.run(
        [str(nbgrader), "generate_assignment", "hw8"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    released = (tmp_path / "release" / "hw8" / NB03).read_text()
    assert sentence in released and "edited hidden test" not in released
    assert (tmp_path / "release" / "hw8" / "assets" / "autoencoder.png").is_file()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        source = gradebook.find_source_cell("ae03-test-gaussian-kl", NB03[:-6], "hw8").source
    assert hidden in source  # autograde restores the edited hidden test
