"""The course's own nbgrader steps, named in ``nbgrader_config.py``.

- :class:`ExecuteWithVerdicts` (autograde, in place of ``Execute``): the kernel runs the
  notebook with every test cell emptied (the kernel, where the student's code runs, never
  sees a test, hidden or not), while the grader (:mod:`hw8.course.verdict`) runs the tests
  in its own process against a second process that runs the student's code; each test
  cell then gets the instructor's source back and the grader's verdict as its output, from
  which nbgrader's own rule scores it (an error: no points; none: all points).
  ``hw8 course grade`` sets ``ExecuteWithVerdicts.decide = False`` inside its sandbox:
  there the verdicts are decided outside, by the grading job.
- :class:`HideHiddenTests` (generate_feedback): the feedback a student receives names
  each test cell and shows the grader's verdict, but never the hidden tests' code.
- :class:`MarkHandGrading` and :class:`FeedbackExporter` (generate_feedback): a written
  answer nobody has graded yet reads "awaits hand grading (2 points)", not "Score: 0.0 /
  2.0" (nbgrader shows its missing score as 0), and the notebook's total says how many
  points still await a person.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool

from hw8.course.cells import STUB, TEST, role_of
from hw8.settings import CELL_TIMEOUT_S

HIDDEN = re.compile(r"^([ \t]*)### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[^\n]*", re.S | re.M)
HIDDEN_NOTE = "# (hidden tests ran here: their code is not shown)"


class ExecuteWithVerdicts(Execute):
    """Autograde step in place of nbgrader's ``Execute``: the kernel run without tests,
    and every test cell's verdict decided by the grader outside the kernel."""

    decide = Bool(
        True,
        help="Decide the verdicts here (False inside hw8 course grade's sandbox).",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        """Run the notebook in the kernel with its tests emptied; then put the tests back
        with the grader's verdicts as their outputs."""
        tests = {
            i: c.source
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and role_of(c) == TEST
        }
        running = self.start_verdicts(nb, resources) if self.decide else None
        for index in tests:
            nb.cells[index].source = STUB
        try:
            nb, resources = super().preprocess(nb, resources)
        except DeadKernelError:  # the grade is the grader's: the outputs stop at the crash
            self.log.warning("the kernel died; the cells after it have no output")
        finally:
            for index, source in tests.items():
                nb.cells[index].source = source
            verdicts = self.wait(*running) if running is not None else None
        if verdicts is not None:
            decided = verdicts.get(resources["nbgrader"]["notebook"], {})
            self.apply(nb, decided.get("verdicts", {}))
        return nb, resources

    def start_verdicts(self, nb, resources):
        """Start the grader on this notebook (in copies of the submission's folder)."""
        from nbgrader.coursedir import CourseDirectory

        from hw8.course.verdict import notebook_request, run_verdicts

        name = resources["nbgrader"]["notebook"]
        coursedir = CourseDirectory(config=self.config)
        source = coursedir.format_path(
            coursedir.source_directory, ".", resources["nbgrader"]["assignment"]
        )
        instructor = json.loads((Path(source) / f"{name}.ipynb").read_text())
        submitted = json.loads(nbformat.writes(nb))
        folder = resources.get("metadata", {}).get("path") or "."
        scratch = Path(tempfile.mkdtemp(prefix="hw8-verdict-"))
        for copy in ("grader", "child/submission"):
            shutil.copytree(folder, scratch / copy, symlinks=True)
        child_folder = str(scratch / "child" / "submission")
        request = {
            "notebooks": {name: notebook_request(instructor, submitted)},
            "child": {
                "command": [sys.executable, "-m", "hw8.course.responder", child_folder],
                "cwd": str(scratch / "child"),
                "env": dict(os.environ, NBGRADER_EXECUTION="autograde"),
            },
            "timeout": self.timeout or CELL_TIMEOUT_S,
        }
        code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
        deadline = time.monotonic() + (self.timeout or CELL_TIMEOUT_S) * max(code_cells, 1)
        return (
            run_verdicts(request, scratch / "grader", scratch),
            scratch,
            deadline,
        )

    def wait(self, process, scratch: Path, deadline: float) -> dict:
        """The grader's result, once it has finished (or been stopped at the deadline)."""
        from hw8.course.verdict import read_verdicts

        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - past the deadline: no verdicts, the tests fail
            process.kill()
            process.wait()
        result = read_verdicts(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        return result

    def apply(self, nb, verdicts: dict) -> None:
        """Each test cell's output becomes the grader's verdict."""
        from hw8.course.verdict import verdict_outputs

        for cell in nb.cells:
            if cell.cell_type == "code" and role_of(cell) == TEST:
                grade_id = cell.metadata["nbgrader"]["grade_id"]
                passed, message = verdicts.get(
                    grade_id, [False, "the grader did not reach this test"]
                )
                cell.outputs = [nbformat.from_dict(o) for o in verdict_outputs(passed, message)]
                if not passed:
                    self.log.warning("%s failed: %s", grade_id, message)


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback step: cut hidden tests from test cells and tracebacks to their last line."""

    def preprocess_cell(self, cell, resources, index):
        """Strip one cell."""
        if cell.cell_type != "code":
            return cell, resources
        if role_of(cell) == TEST:
            cell.source = HIDDEN.sub(lambda m: f"{m.group(1)}{HIDDEN_NOTE}", cell.source)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


AWAITING = float("nan")  # the score shown for a cell that awaits hand grading, until replaced
AWAITING_SCORE = re.compile(r"(\()?Score: nan / ([0-9.]+)(\))?")
NOTEBOOK_TOTAL = re.compile(r"(<h4>.*?\(Score: [0-9.]+ / [0-9.]+)\)</h4>")


def awaiting_hand_grading(grade) -> bool:
    """Whether a gradebook grade waits for a person: autograde left it to be graded by
    hand (an answer that was written) and nobody has given it a score yet."""
    return bool(grade.needs_manual_grade) and grade.manual_score is None


class MarkHandGrading(NbGraderPreprocessor):
    """Feedback step, after nbgrader's ``GetGrades``: each cell whose grade awaits a
    person gets a score that is no number (``FeedbackExporter`` writes "awaits hand
    grading" there); their points go to ``resources["nbgrader"]["awaiting"]``."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        awaiting = {}
        with Gradebook(info["db_url"]) as gradebook:
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if not meta.get("grade"):
                    continue
                grade = gradebook.find_grade(
                    meta["grade_id"], info["notebook"], info["assignment"], info["student"]
                )
                if awaiting_hand_grading(grade):
                    meta["score"] = AWAITING
                    awaiting[meta["grade_id"]] = float(grade.max_score)
        info["awaiting"] = awaiting
        return nb, resources


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback page, with each score that awaits hand grading said in words
    and the notebook's total followed by the points still to be graded by hand."""

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        awaiting = resources.get("nbgrader", {}).get("awaiting") or {}
        if not awaiting:
            return output, resources

        def words(match) -> str:
            worth = points(float(match.group(2)))
            if match.group(1):  # the table of contents: "(Score: nan / 2.0)"
                return f"(awaits hand grading, {worth})"
            return f"Awaits hand grading ({worth})"

        output = AWAITING_SCORE.sub(words, output)
        total = points(sum(awaiting.values()))
        note = f"; written answers worth {total} await hand grading)</h4>"
        output = NOTEBOOK_TOTAL.sub(lambda m: m.group(1) + note, output, count=1)
        return output, resources


def points(value: float) -> str:
    """``2 points``, ``1 point``, ``1.5 points``."""
    return f"{value:g} point{'' if value == 1 else 's'}"
