"""The course gradebook's side of parallel grading, through nbgrader's own Gradebook API.

- ``assignment_spec``: what the course gradebook holds of an assignment (its notebooks,
  graded, solution, task and locked cells, points, due date), as plain data;
- ``template``: a new gradebook that holds that assignment and nothing else, the private
  gradebook every job's sandbox starts from (no student, no grade, each test cell a stub:
  a submission that reads it learns nothing about anyone, nor any test); nothing is ever
  read back from it;
- ``record``: one job's outcome written into the course gradebook exactly as ``nbgrader
  autograde`` would have written it: the student and the submission (with the time stamp
  of ``timestamp.txt``), zero for every notebook not handed in, the automatic score and
  comment of every cell nbgrader graded (``needs_manual_grade`` by nbgrader's own rule,
  so a manual grade given earlier is kept and flagged for review), and the late penalty
  from nbgrader's own ``AssignLatePenalties`` with the course's configuration. Every
  value is first checked against the course's cells and points.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from hw8.errors import GradeError

NO_RESPONSE = "No response."  # the only automatic comment nbgrader writes


def assignment_spec(db_url: str, course_id: str, assignment: str) -> dict:
    """The assignment as the course gradebook holds it; GradeError if it holds none."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course_id) as gradebook:
        try:
            found = gradebook.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(sorted(a.name for a in gradebook.assignments)) or "none"
            raise GradeError(
                f"the gradebook {db_url} has no assignment {assignment!r} (it has: {known}). "
                f"Check the name, or run `nbgrader generate_assignment {assignment}` first."
            ) from None
        return {
            "duedate": found.duedate,
            "notebooks": [
                {
                    "name": nb.name,
                    "kernelspec": nb.kernelspec,
                    "grade_cells": [[c.name, c.max_score, c.cell_type] for c in nb.grade_cells],
                    "solution_cells": [c.name for c in nb.solution_cells],
                    "task_cells": [[c.name, c.max_score, c.cell_type] for c in nb.task_cells],
                    "source_cells": [
                        [c.name, c.cell_type, c.locked, c.source, c.checksum]
                        for c in nb.source_cells
                    ],
                }
                for nb in found.notebooks
            ],
        }


def template(spec: dict, course_id: str, assignment: str, test_source: str) -> bytes:
    """The bytes of a new SQLite gradebook holding only ``assignment`` as ``spec`` says,
    every test cell's source replaced by ``test_source`` (the gradebook lies in the
    sandbox, where the student's code may read it: no test reaches it)."""
    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory(prefix="hw8-gradebook-") as folder:
        path = Path(folder) / "gradebook.db"
        create_tables(f"sqlite:///{path}", Path(folder) / "alembic.ini")
        with Gradebook(f"sqlite:///{path}", course_id) as gradebook:
            gradebook.add_assignment(assignment, duedate=spec["duedate"])
            for nb in spec["notebooks"]:
                name = nb["name"]
                gradebook.add_notebook(name, assignment, kernelspec=nb["kernelspec"])
                for cell, points, kind in nb["grade_cells"]:
                    gradebook.add_grade_cell(
                        cell, name, assignment, max_score=points, cell_type=kind
                    )
                for cell in nb["solution_cells"]:
                    gradebook.add_solution_cell(cell, name, assignment)
                for cell, points, kind in nb["task_cells"]:
                    gradebook.add_task_cell(
                        cell, name, assignment, max_score=points, cell_type=kind
                    )
                tests = {cell: points for cell, points, _ in nb["grade_cells"]}
                tests = {c: p for c, p in tests.items() if c not in nb["solution_cells"]}
                for cell, kind, locked, source, checksum in nb["source_cells"]:
                    if cell in tests:
                        source = test_source
                        checksum = test_checksum(cell, tests[cell], test_source)
                    gradebook.add_source_cell(
                        cell,
                        name,
                        assignment,
                        cell_type=kind,
                        locked=locked,
                        source=source,
                        checksum=checksum,
                    )
        return path.read_bytes()


def test_checksum(grade_id: str, points: float, source: str) -> str:
    """nbgrader's checksum of a locked test cell holding ``source``."""
    import nbformat
    from nbgrader.utils import compute_checksum

    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.nbgrader = {
        "grade": True,
        "solution": False,
        "locked": True,
        "grade_id": grade_id,
        "points": points,
    }
    return compute_checksum(cell)


VERSION_COLUMN = "version_num VARCHAR(32) NOT NULL"  # as nbgrader's Gradebook creates it


def create_tables(db_url: str, alembic_ini: Path) -> None:
    """Create nbgrader's tables in a new database, stamped with the newest schema version.

    nbgrader's ``Gradebook`` does the same for a new database, but runs the ``alembic``
    command to learn the version, in a new Python process of its own. Here alembic's own API
    reads it from nbgrader's migration scripts, and ``Gradebook`` then opens the database
    as an existing one.
    """
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.api import Base
    from nbgrader.dbutil import write_alembic_ini
    from sqlalchemy import create_engine, text

    write_alembic_ini(str(alembic_ini), db_url)
    head = ScriptDirectory.from_config(Config(str(alembic_ini))).get_current_head()
    engine = create_engine(db_url)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as connection:
            connection.execute(text(f"CREATE TABLE alembic_version ({VERSION_COLUMN})"))
            connection.execute(text("INSERT INTO alembic_version VALUES (:head)"), {"head": head})
    finally:
        engine.dispose()


def check_grades(grades: dict, spec: dict) -> None:
    """Raise ValueError unless every notebook, cell and value of a job's grades could have
    come from nbgrader grading this assignment."""
    notebooks = {nb["name"]: nb for nb in spec["notebooks"]}
    problems = []
    for name, found in grades.items():
        if name not in notebooks:
            problems.append(f"unknown notebook {name!r}")
            continue
        points = {cell: p for cell, p, _ in notebooks[name]["grade_cells"]}
        commented = set(notebooks[name]["solution_cells"])
        commented |= {cell for cell, _, _ in notebooks[name]["task_cells"]}
        for cell, (score, needs_manual) in found["grades"].items():
            if cell not in points:
                problems.append(f"{name}: unknown graded cell {cell!r}")
            elif score is not None and not (
                isinstance(score, int | float) and 0 <= score <= points[cell]
            ):
                problems.append(f"{name}, {cell}: {score} points of {points[cell]}")
            elif not isinstance(needs_manual, bool):
                problems.append(f"{name}, {cell}: needs_manual_grade {needs_manual!r}")
        for cell, comment in found["comments"].items():
            if cell not in commented or comment not in (None, NO_RESPONSE):
                problems.append(f"{name}, {cell}: comment {str(comment)[:40]!r}")
    if problems:
        raise ValueError(
            f"a job's grades hold values nbgrader cannot have written: {'; '.join(problems[:5])}"
        )


def record(
    db_url: str,
    course_id: str,
    assignment: str,
    student: str,
    grades: dict,
    *,
    spec: dict,
    submitted: Path,
    timestamp,
    config,
) -> None:
    """Write one student's autograde result into the course gradebook, as nbgrader would.

    ``grades`` is a job's ``Outcome.grades``, ``submitted`` the student's submitted
    assignment folder, ``timestamp`` its time stamp (or None), ``config`` the course's
    nbgrader configuration. ValueError (and nothing written) if a value is impossible.
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    check_grades(grades, spec)
    graded = []
    with warnings.catch_warnings(), Gradebook(db_url, course_id) as gradebook:
        # nbgrader's add_submission warns about its own autoflush (autograde does too)
        warnings.simplefilter("ignore", SAWarning)
        gradebook.update_or_create_student(student)
        stamp = {"timestamp": timestamp} if timestamp else {}
        gradebook.update_or_create_submission(assignment, student, **stamp)
        for nb in spec["notebooks"]:
            name = nb["name"]
            if not (submitted / f"{name}.ipynb").exists():
                notebook = gradebook.find_submission_notebook(name, assignment, student)
                for grade in notebook.grades:
                    grade.auto_score, grade.needs_manual_grade = 0, False
            elif copy_grades(gradebook, grades.get(name), name, assignment, student):
                graded.append(name)
        gradebook.db.commit()
    for name in graded:
        assign_late_penalty(db_url, config, name, assignment, student)


def copy_grades(gradebook, found: dict | None, notebook: str, assignment: str, student) -> bool:
    """Copy the scores and comments of the cells nbgrader graded in one notebook; whether
    it graded any (a notebook it never reached keeps what the course gradebook holds)."""
    graded = {
        cell: score
        for cell, (score, needs_manual) in (found or {"grades": {}})["grades"].items()
        if score is not None or needs_manual
    }
    for cell, score in graded.items():
        grade = gradebook.find_grade(cell, notebook, assignment, student)
        grade.auto_score = score
        grade.needs_manual_grade = grade.manual_score is not None or score is None
    if graded:
        for cell, comment in found["comments"].items():
            gradebook.find_comment(cell, notebook, assignment, student).auto_comment = comment
    return bool(graded)


def assign_late_penalty(db_url: str, config, notebook: str, assignment: str, student) -> None:
    """Run nbgrader's AssignLatePenalties for one notebook against the course gradebook."""
    import nbformat
    from nbgrader.preprocessors import AssignLatePenalties

    resources = {
        "nbgrader": {
            "notebook": notebook,
            "assignment": assignment,
            "student": student,
            "db_url": db_url,
        }
    }
    AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)


# ----------------------------------------------------------------------------- grades.csv

EXTRA_COLUMNS = ("awaiting_hand_grading", "awaiting_points", "not_handed_in")


def _export_plugin():
    from nbgrader.plugins.export import CsvExportPlugin

    return CsvExportPlugin


class GradesExport(_export_plugin()):
    """``nbgrader export``'s grades.csv (``c.ExportApp.plugin_class``), with nbgrader's
    columns first and unchanged, then three more per student and assignment:

    - ``awaiting_hand_grading``: the written answers autograde left to a person that
      nobody has graded yet, as ``notebook:cell`` separated by spaces (their points are
      not in ``score`` until then);
    - ``awaiting_points``: how many points those are;
    - ``not_handed_in``: the notebooks of the assignment the student did not hand in
      (every one when there is no submission at all).

    A notebook counts as handed in when it is in the student's submitted folder; when that
    folder is gone, when the gradebook shows autograde found it (a graded answer, an
    answer left to a person, or a cell's automatic comment). Fields are quoted as CSV
    needs, which nbgrader's own exporter does not do.
    """

    def export(self, gradebook) -> None:
        import csv

        from nbgrader.api import MissingEntry

        dest = self.to or "grades.csv"
        keys = [
            "assignment",
            "duedate",
            "timestamp",
            "student_id",
            "last_name",
            "first_name",
            "email",
            "raw_score",
            "late_submission_penalty",
            "score",
            "max_score",
            *EXTRA_COLUMNS,
        ]
        wanted_students = {str(s) for s in self.student}
        wanted_assignments = {str(a) for a in self.assignment}
        self.log.info("Exporting grades to %s", dest)
        with open(dest, "w", newline="") as handle:
            writer = csv.DictWriter(handle, keys)
            writer.writeheader()
            for assignment in gradebook.assignments:
                if wanted_assignments and assignment.name not in wanted_assignments:
                    continue
                notebooks = [nb.name for nb in assignment.notebooks]
                for student in gradebook.students:
                    if wanted_students and student.id not in wanted_students:
                        continue
                    row = {
                        "assignment": assignment.name,
                        "duedate": assignment.duedate,
                        "student_id": student.id,
                        "last_name": student.last_name,
                        "first_name": student.first_name,
                        "email": student.email,
                        "max_score": assignment.max_score,
                    }
                    try:
                        submission = gradebook.find_submission(assignment.name, student.id)
                    except MissingEntry:
                        row |= {"timestamp": "", "raw_score": 0.0, "score": 0.0}
                        row |= {"late_submission_penalty": 0.0, "awaiting_points": 0.0}
                        row |= {"awaiting_hand_grading": "", "not_handed_in": " ".join(notebooks)}
                    else:
                        penalty = submission.late_submission_penalty
                        row |= {
                            "timestamp": submission.timestamp,
                            "raw_score": submission.score,
                            "late_submission_penalty": penalty,
                            "score": max(0.0, submission.score - penalty),
                        }
                        row |= self.hand_grading_and_missing(submission, student.id)
                    writer.writerow({k: "" if v is None else str(v) for k, v in row.items()})

    def hand_grading_and_missing(self, submission, student: str) -> dict:
        """The three extra columns of one submission."""
        from hw8.course.preprocessors import awaiting_hand_grading

        folder = self.submitted_folder(student, submission.assignment.name)
        awaiting, points, missing = [], 0.0, []
        for notebook in submission.notebooks:
            name = notebook.notebook.name
            for grade in notebook.grades:
                if awaiting_hand_grading(grade):
                    awaiting.append(f"{name}:{grade.cell.name}")
                    points += float(grade.max_score)
            if folder is not None and folder.is_dir():
                handed_in = (folder / f"{name}.ipynb").is_file()
            else:
                handed_in = autograde_found(notebook)
            if not handed_in:
                missing.append(name)
        return {
            "awaiting_hand_grading": " ".join(awaiting),
            "awaiting_points": points,
            "not_handed_in": " ".join(missing),
        }

    def submitted_folder(self, student: str, assignment: str) -> Path | None:
        coursedir = getattr(self.parent, "coursedir", None)
        if coursedir is None:
            return None
        return Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))


def autograde_found(notebook) -> bool:
    """Whether autograde found a notebook in the submission, read from the gradebook alone:
    it gives a missing notebook 0 in every cell and no comment, while a notebook handed
    in has an answer left to a person, a score given by hand, or an automatic comment
    ("No response." for an exercise left as it was handed out)."""
    if any(g.needs_manual_grade or g.manual_score is not None for g in notebook.grades):
        return True
    if any(g.auto_score for g in notebook.grades):
        return True
    return any(c.auto_comment or c.manual_comment for c in notebook.comments)
