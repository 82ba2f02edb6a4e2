"""The nbgrader round trip, with the real apps, in a temporary course directory.

The Instructors section of the README runs these same commands:
``nbgrader generate_assignment hw8``, ``nbgrader autograde hw8``,
``nbgrader generate_feedback hw8`` and ``nbgrader export``. Every notebook found in
notebooks/hw8/ takes part; each must register its planted mistakes in
tests/course/nbgrader_plants.py.

Submissions (all graded in one autograde call, except the hanging one):

- ``correct``: the source notebooks (solutions included): full marks;
- ``empty``: the release as handed out: zero on every autograded cell, and the only errors
  are ``NotImplementedError`` from the empty solutions (and names those cells never set);
- ``wrong``: every planted mistake of every notebook at once: exactly their points lost;
- ``tampered``: a wrong mse_loss plus an edited locked test cell: the original test runs;
- ``hanging``: an endless loop, graded with a short cell timeout: that cell times out, the
  other cells are graded;
- ``different-a``, ``different-b``: correct answers written differently from the model
  solutions (tests/course/nbgrader_variants.py): full marks;
- ``trick-*``: a planted mistake plus code that tries to fool the tests: no more points
  than the mistake alone (the kernel that ends itself is graded in a call of its own).

The feedback the students receive names the failed test cells and their messages, and
holds no hidden test code.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from hw8.anomaly import write_submission
from hw8.checks import leaderboard

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = ROOT / "notebooks" / "hw8"
ASSIGNMENT = "hw8"
HANGING_TIMEOUT_S = 20  # the cell timeout for the hanging submission only


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return sys.modules[name]


plants = _load("nbgrader_plants")
variants = _load("nbgrader_variants")
NOTEBOOKS = sorted(path.stem for path in SOURCE_DIR.glob("*.ipynb"))
PLANT_CASES = [
    (name, index) for name in NOTEBOOKS for index in range(len(plants.PLANTS.get(name, [])))
]


# ----------------------------------------------------------------------------- helpers


def nbgrader_command() -> list[str]:
    """The ``nbgrader`` script of this Python environment (what the README calls)."""
    script = Path(sys.executable).with_name("nbgrader")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nbgrader"]


def with_environment_bin(path: str | None) -> str:
    """PATH with this Python's bin folder first: nbgrader runs `alembic` from PATH."""
    return os.pathsep.join(filter(None, [str(Path(sys.executable).parent), path]))


def run_nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one nbgrader app in the course folder, short training, this checkout importable."""
    env = dict(os.environ, HW8_QUICK="1", HW8_DEVICE="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = with_environment_bin(env.get("PATH"))
    result = subprocess.run(
        [*nbgrader_command(), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0 or not check, (
        f"`nbgrader {' '.join(args)}` failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    )
    return result


def read(path: Path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def cell_by_id(nb, wanted: str):
    matches = [cell for cell in nb.cells if grade_id(cell) == wanted]
    assert len(matches) == 1, f"expected one cell with grade_id {wanted!r}, found {len(matches)}"
    return matches[0]


def with_plants(nb, *planted):
    """A copy of ``nb`` with the solution cell of each plant replaced by its wrong source."""
    nb = nbformat.from_dict(nb)
    for plant in planted:
        cell_by_id(nb, plant.solution).source = plant.source
    return nb


def with_variants(nb, *variants_):
    """A copy of ``nb`` with each variant's solution source, and its extra cell after it."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for variant in variants_:
        cell = cell_by_id(nb, variant.solution)
        cell.source = variant.source
        if variant.cell:
            added = nbformat.v4.new_code_cell(variant.cell)  # a cell of the student's own
            nb.cells.insert(nb.cells.index(cell) + 1, added)
    return nb


def submit(course: Path, student: str, notebooks: dict, leaderboard_file: bool = False) -> None:
    """Hand in ``notebooks``; with ``leaderboard_file``, also a leaderboard scores file.

    The handed-in file holds the true labels as scores (AUC 1): the autograder grades the
    file as saved, never retrains, and never relaxes the thresholds, even with HW8_QUICK=1.
    """
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    if leaderboard_file:
        labels = leaderboard.bundled_labels().astype(float)
        write_submission(labels, folder / leaderboard.DEFAULT_SCORES_FILE)


def autograded_scores(course: Path, student: str) -> dict[str, dict[str, tuple]]:
    """notebook -> grade_id -> (auto_score, max_score) of every autograded cell."""
    from nbgrader.api import Gradebook

    found = {}
    os.environ["PATH"] = with_environment_bin(os.environ.get("PATH"))  # for `alembic`
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        for notebook in submission.notebooks:
            grades = [grade.to_dict() for grade in notebook.grades]
            found[notebook.name] = {
                g["name"]: (g["auto_score"], g["max_score"])
                for g in grades
                if g["cell_type"] == "code"
            }
    return found


def error_outputs(nb):
    """(cell index, cell, error output) for every error in an executed notebook."""
    return [
        (index, cell, output)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


MARKERS = {"### BEGIN SOLUTION": True, "### END SOLUTION": False}
MARKERS.update({"### BEGIN HIDDEN TESTS": True, "### END HIDDEN TESTS": False})


def secret_lines(nb) -> tuple[set[str], set[str]]:
    """Lines of solutions and hidden tests, and every other line of the source notebook."""
    secret, public = set(), set()
    for cell in nb.cells:
        lines = [line.strip() for line in cell.source.splitlines()]
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            secret.update(lines)
            continue
        inside = False
        for line in lines:
            if line in MARKERS:
                inside = MARKERS[line]
            else:
                (secret if inside else public).add(line)
    return secret, public


# ----------------------------------------------------------------------------- the course


@pytest.fixture(scope="module")
def course(tmp_path_factory, request):
    """Generate the release, submit every kind of submission, autograde, feed back, export."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(
        ROOT / "notebooks",
        course / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.whl"),
    )
    times = {}
    # as `make release` does: hw8's wheel beside the notebooks, for Colab and Kaggle
    start = time.perf_counter()
    wheel_dir = course / "notebooks" / ASSIGNMENT
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run([*pip_wheel, "--no-build-isolation", "-w", wheel_dir, ROOT], check=True)
    times["wheel"] = time.perf_counter() - start

    def timed(label, *args, check=True):
        start = time.perf_counter()
        result = run_nbgrader(course, *args, check=check)
        times[label] = time.perf_counter() - start
        return result

    timed("generate_assignment", "generate_assignment", ASSIGNMENT)
    source = {name: read(SOURCE_DIR / f"{name}.ipynb") for name in NOTEBOOKS}
    release = {name: read(course / "release" / ASSIGNMENT / f"{name}.ipynb") for name in NOTEBOOKS}

    submit(course, "correct", source, leaderboard_file=True)
    submit(course, "empty", release)
    planted = {name: plants.PLANTS[name] for name in NOTEBOOKS if plants.PLANTS.get(name)}
    wrong = {name: with_plants(source[name], *p) for name, p in planted.items()}
    submit(course, "wrong", wrong, leaderboard_file=True)
    tampered = with_plants(source[plants.TAMPERED_NOTEBOOK], plants.TAMPERED_PLANT)
    cell_by_id(tampered, plants.TAMPERED_PLANT.test).source = plants.TAMPERED_TEST_SOURCE
    submit(course, "tampered", {plants.TAMPERED_NOTEBOOK: tampered})
    hanging = with_plants(source[plants.HANGING_NOTEBOOK], plants.HANGING)
    submit(course, "hanging", {plants.HANGING_NOTEBOOK: hanging})
    for label, alternatives in variants.ALTERNATIVES.items():
        different = {
            name: with_variants(source[name], *alts) for name, alts in alternatives.items()
        }
        submit(course, f"different-{label}", different, leaderboard_file=True)
    for label, (name, _plant, trick) in variants.TRICKS.items():
        submit(course, f"trick-{label}", {name: with_variants(source[name], trick)})

    # the hanging student first, with a short cell timeout; the batch call then skips it
    timed(
        "autograde (hanging, timeout lowered)",
        "autograde",
        ASSIGNMENT,
        "--student=hanging",
        f"--Execute.timeout={HANGING_TIMEOUT_S}",
    )
    timed("autograde (all others)", "autograde", ASSIGNMENT)
    name, _plant, trick = variants.EXIT_TRICK  # after the batch, which it would make fail
    submit(course, "exit", {name: with_variants(source[name], trick)})
    timed("autograde (ends its kernel)", "autograde", ASSIGNMENT, "--student=exit", check=False)
    timed("generate_feedback", "generate_feedback", ASSIGNMENT)
    timed("export", "export")

    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("".join(f"\nnbgrader {label}: {seconds:.1f} s" for label, seconds in times.items()))
    return course


# ----------------------------------------------------------------------------- release


def test_every_notebook_registers_a_planted_mistake():
    assert NOTEBOOKS, f"no notebooks in {SOURCE_DIR}"
    missing = [name for name in NOTEBOOKS if not plants.PLANTS.get(name)]
    assert not missing, (
        f"register planted mistakes in tests/course/nbgrader_plants.py for {missing}"
    )


def test_release_holds_the_notebooks_and_their_figures_and_nothing_else(course):
    """The notebooks, their figures and hw8's wheel (installed by each notebook's first
    cell on Colab or Kaggle), nothing else. Stray files in notebooks/hw8 (a prediction.csv
    left by running a source notebook in place, say) would be handed out, and autograde
    would copy them over every student's own files. The figures the notebooks link
    (assets/) must travel with them."""
    release = course / "release" / ASSIGNMENT
    released = sorted(str(path.relative_to(release)) for path in release.rglob("*"))
    figures = sorted(f"assets/{path.name}" for path in (SOURCE_DIR / "assets").glob("*.png"))
    wheels = [path.name for path in (course / "notebooks" / ASSIGNMENT).glob("hw8-*.whl")]
    assert len(wheels) == 1
    notebooks = [f"{name}.ipynb" for name in NOTEBOOKS]
    assert released == sorted(["assets", *figures, *notebooks, *wheels])
    for name in NOTEBOOKS:
        for link in re.findall(r"\]\((assets/[^)]+)\)", (release / f"{name}.ipynb").read_text()):
            assert (release / link).is_file(), f"{name} links {link}, which is not released"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_holds_no_solution_and_no_hidden_test(course, name):
    released = read(course / "release" / ASSIGNMENT / f"{name}.ipynb")
    text = "\n".join(cell.source for cell in released.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{name}: the release still holds {marker!r}"
    secret, public = secret_lines(read(SOURCE_DIR / f"{name}.ipynb"))
    distinctive = {line for line in secret if len(line) > 3 and line not in public}
    leaked = distinctive & {line.strip() for line in text.splitlines()}
    assert not leaked, f"{name}: solution or hidden-test lines in the release: {sorted(leaked)}"
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            assert "raise NotImplementedError()" in cell.source, grade_id(cell)
        if meta.get("solution") and cell.cell_type == "markdown":
            assert cell.source == "YOUR ANSWER HERE", grade_id(cell)
        assert not cell.get("outputs"), f"{name}: the release has outputs"


# ----------------------------------------------------------------------------- grading


def test_source_notebooks_get_full_marks_without_any_error(course):
    scores = autograded_scores(course, "correct")
    assert sorted(scores) == NOTEBOOKS
    for name, grades in scores.items():
        assert grades, f"{name}: no autograded cells"
        lost = {gid: s for gid, s in grades.items() if s[0] != s[1]}
        assert not lost, f"{name}: the solutions lost points: {lost}"
        errors = error_outputs(
            read(course / "autograded" / "correct" / ASSIGNMENT / f"{name}.ipynb")
        )
        assert not errors, f"{name}: errors in the solution run: {[e[2].ename for e in errors]}"


def test_release_as_submission_scores_zero(course):
    scores = autograded_scores(course, "empty")
    assert sorted(scores) == NOTEBOOKS
    for name, grades in scores.items():
        earned = {gid: s for gid, s in grades.items() if s[0] != 0}
        assert not earned, f"{name}: an empty submission earned points: {earned}"


def _names_set_by(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_released_notebook_fails_only_with_not_implemented_error(course, name):
    """The release, run top to bottom: every error comes from an empty solution.

    Outside the autograded test cells (which are meant to fail on an empty answer, and
    whose right behaviour the full-marks test checks), a cell may only raise
    NotImplementedError, or NameError for a name that a cell stopped by an empty solution
    never set.
    """
    executed = read(course / "autograded" / "empty" / ASSIGNMENT / f"{name}.ipynb")
    unset: set[str] = set()
    unexpected = []
    for index, cell, error in error_outputs(executed):
        missing = re.match(r"name '(\w+)' is not defined", error.evalue or "")
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            unset |= _names_set_by(cell.source)
        elif error.ename == "NotImplementedError":
            unset |= _names_set_by(cell.source)
        elif error.ename == "NameError" and missing and missing.group(1) in unset:
            unset |= _names_set_by(cell.source)
        else:
            unexpected.append(f"cell {index}: {error.ename}: {error.evalue}")
    assert any(True for _ in error_outputs(executed)), f"{name}: the release ran without error"
    assert not unexpected, f"{name}: errors not caused by an empty solution: {unexpected}"


@pytest.mark.parametrize(("name", "index"), PLANT_CASES)
def test_planted_mistake_loses_exactly_its_points(course, name, index):
    plant = plants.PLANTS[name][index]
    grades = autograded_scores(course, "wrong")[name]
    assert plant.test in grades, f"{name}: no autograded cell {plant.test!r}"
    score, maximum = grades[plant.test]
    assert maximum - score == plant.points, (
        f"{name}: planted mistake ({plant.what}) should lose {plant.points} points in "
        f"{plant.test}, lost {maximum - score}"
    )


@pytest.mark.parametrize("name", sorted(n for n in NOTEBOOKS if plants.PLANTS.get(n)))
def test_planted_mistakes_cost_nothing_elsewhere(course, name):
    """All plants of a notebook at once: only their own test cells lose points."""
    caught = {plant.test for plant in plants.PLANTS[name]}
    grades = autograded_scores(course, "wrong")[name]
    others = {gid: s for gid, s in grades.items() if gid not in caught and s[0] != s[1]}
    assert not others, f"{name}: the planted mistakes also cost points in {others}"
    lost = sum(s[1] - s[0] for s in grades.values())
    assert lost == sum(plant.points for plant in plants.PLANTS[name])


def test_endless_loop_times_out_and_the_rest_is_graded(course):
    name, plant = plants.HANGING_NOTEBOOK, plants.HANGING
    grades = autograded_scores(course, "hanging")[name]
    score, maximum = grades[plant.test]
    assert (score, maximum) == (0, plant.points)
    others = {gid: s for gid, s in grades.items() if gid != plant.test and s[0] != s[1]}
    assert not others, f"cells after the endless loop lost points: {others}"
    executed = read(course / "autograded" / "hanging" / ASSIGNMENT / f"{name}.ipynb")
    errors = [(cell, error) for _, cell, error in error_outputs(executed)]
    # the test cell times out; so may an ungraded demonstration that calls the same
    # function (it carries no points), and nothing else
    failed = {grade_id(cell) for cell, _ in errors}
    callers = {grade_id(cell) for cell, _ in errors if "bce_loss(" in cell.source}
    assert plant.test in failed and failed <= callers, failed
    assert all(
        not cell.metadata["nbgrader"].get("points")
        for cell, _ in errors
        if grade_id(cell) != plant.test
    )
    names = {error.ename for _, error in errors}
    assert names & {"CellTimeoutError", "KeyboardInterrupt"}, names


def test_edited_locked_test_cell_is_replaced_by_the_original(course):
    name, plant = plants.TAMPERED_NOTEBOOK, plants.TAMPERED_PLANT
    grades = autograded_scores(course, "tampered")[name]
    score, maximum = grades[plant.test]
    assert maximum - score == plant.points, "the edited test cell was graded, not the original"
    executed = read(course / "autograded" / "tampered" / ASSIGNMENT / f"{name}.ipynb")
    original = cell_by_id(read(SOURCE_DIR / f"{name}.ipynb"), plant.test).source
    assert cell_by_id(executed, plant.test).source == original


@pytest.mark.parametrize("label", sorted(variants.ALTERNATIVES))
def test_correct_but_different_answers_get_full_marks(course, label):
    scores = autograded_scores(course, f"different-{label}")
    for name in variants.ALTERNATIVES[label]:
        grades = scores[name]
        lost = {gid: s for gid, s in grades.items() if s[0] != s[1]}
        assert not lost, f"{name}: a correct alternative answer lost points: {lost}"


def test_every_notebook_has_two_alternative_answers():
    for name in NOTEBOOKS:
        count = sum(len(alts.get(name, [])) for alts in variants.ALTERNATIVES.values())
        assert count >= 2, f"{name}: {count} alternatives"


def _total(grades: dict) -> tuple[float, float]:
    """Points earned (a cell nbgrader could not grade earns none) and points possible."""
    return sum(s[0] or 0 for s in grades.values()), sum(s[1] for s in grades.values())


@pytest.mark.parametrize("label", sorted(variants.TRICKS))
def test_a_trick_buys_nothing(course, label):
    name, plant, trick = variants.TRICKS[label]
    score, maximum = _total(autograded_scores(course, f"trick-{label}")[name])
    assert score <= maximum - plant.points, (
        f"{trick.what}: scored {score} of {maximum}; the mistake alone scores "
        f"{maximum - plant.points}"
    )


def test_ending_the_kernel_buys_nothing(course):
    name, plant, trick = variants.EXIT_TRICK
    scores = autograded_scores(course, "exit").get(name, {})
    score, maximum = _total(scores)
    assert score <= maximum - plant.points, f"{trick.what}: scored {score} of {maximum}"


def test_feedback_names_the_failed_test_but_hides_hidden_tests(course):
    """Every feedback page of every student, the one whose code prints its input history,
    arguments and globals while the grader calls it (different-b) included."""
    pages = sorted((course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    assert len(pages) >= 2 * len(NOTEBOOKS)
    for page in pages:
        hidden = hidden_test_lines(read(SOURCE_DIR / f"{page.stem}.ipynb"))
        text = html_text(page.read_text())
        leaked = sorted(line for line in hidden if line in text)
        assert not leaked, f"{page}: hidden test code in the feedback: {leaked[:5]}"
        assert "HIDDEN TESTS ###" not in text.replace("### BEGIN HIDDEN", "")
        assert "BEGIN HIDDEN TESTS" not in text
    text = html_text(
        (course / "feedback" / "wrong" / ASSIGNMENT / f"{NOTEBOOKS[0]}.html").read_text()
    )
    assert "mse_loss(x_hat, x) on cpu (float32): the values are wrong" in text


def hidden_test_lines(nb) -> set[str]:
    """Distinctive lines that appear only inside hidden tests."""
    hidden, elsewhere = set(), set()
    for cell in nb.cells:
        inside = False
        for line in (line.strip() for line in cell.source.splitlines()):
            if line.startswith("### BEGIN HIDDEN TESTS") or line.startswith("### END HIDDEN"):
                inside = line.startswith("### BEGIN")
                continue
            (hidden if inside else elsewhere).add(line)
    # visible text as the feedback renders it (Markdown's backticks gone): a hidden line that
    # also occurs there, "elbo_estimate," in a sentence say, is not distinctive
    visible = "\n".join(elsewhere).replace("`", "")
    return {line for line in hidden - elsewhere if len(line) > 12 and line not in visible}


def html_text(html: str) -> str:
    """The text of an HTML page, entities decoded, tags removed (good enough to search)."""
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def test_feedback_and_export(course):
    students = ["correct", "empty", "hanging", "tampered", "wrong"]
    for student in students:
        feedback = sorted(
            path.stem for path in (course / "feedback" / student / ASSIGNMENT).glob("*.html")
        )
        submitted = sorted(
            path.stem for path in (course / "submitted" / student / ASSIGNMENT).glob("*.ipynb")
        )
        assert feedback == submitted, f"feedback for {student}: {feedback}"
    html = (course / "feedback" / "correct" / ASSIGNMENT / f"{NOTEBOOKS[0]}.html").read_text()
    assert "Score:" in html or "score" in html.lower()
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert set(students) <= set(rows)
    correct = float(rows["correct"]["raw_score"])
    empty = float(rows["empty"]["raw_score"])
    maximum = float(rows["correct"]["max_score"])
    written = sum(
        float(cell.metadata["nbgrader"]["points"])
        for name in NOTEBOOKS
        for cell in read(SOURCE_DIR / f"{name}.ipynb").cells
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("grade")
    )
    assert correct == pytest.approx(maximum - written), "full marks except hand-graded answers"
    assert empty == 0


def test_validate_tells_a_student_whether_the_tests_pass(course):
    """The Students section's check: `nbgrader validate` on a finished and a wrong notebook."""
    name = plants.HANGING_NOTEBOOK
    source = read(SOURCE_DIR / f"{name}.ipynb")
    nbformat.write(source, course / "finished.ipynb")
    nbformat.write(with_plants(source, plants.PLANTS[name][0]), course / "wrong.ipynb")
    result = run_nbgrader(course, "validate", "finished.ipynb", "wrong.ipynb")
    out = result.stdout  # the report, notebook by notebook, in the order given
    success = out.find("Success! Your notebook passes all the tests.")
    failed = out.find("VALIDATION FAILED ON 1 CELL(S)")
    assert 0 <= success < failed, out
    assert "mse_loss(x_hat, x) on cpu (float32): the values are wrong" in out[failed:], out
