"""nbgrader set-up for the hw8 course (read by every `nbgrader ...` command run here).

The course root is the folder holding this file (the repository root): the instructor
notebooks live in notebooks/hw8/ (solutions and hidden tests), `nbgrader
generate_assignment hw8` writes the student version to release/hw8/, submissions go to
submitted/<student>/hw8/, and autograde, feedback and export work from there.
"""

import os
import sys

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from hw8.course.gradebook import GradesExport
from hw8.course.preprocessors import (
    ExecuteWithVerdicts,
    FeedbackExporter,
    HideHiddenTests,
    MarkHandGrading,
)
from hw8.settings import CELL_TIMEOUT_S

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file

# nbgrader runs `alembic` from PATH when it makes a new gradebook: the tools of the Python
# that runs nbgrader (.venv/bin) come first, so that no command needs `source
# .venv/bin/activate` first.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join(filter(None, [_bin, os.environ.get("PATH")]))

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.course_id = "ml2023spring-hw8"
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "runs",
    "*.pt",
]

# Every cell of a submission runs with a time limit; a cell that runs past it is
# interrupted and recorded as an error (so an endless loop loses only that cell's
# points) and grading goes on with the next cell. The longest cells train a small model
# for about 30 s on a 2-core CPU; the limit leaves a slow laptop ten times that.
c.Execute.timeout = CELL_TIMEOUT_S
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_name = "python3"

# What a student sees where a solution was removed.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

# Autograde copies every non-notebook file of the source folder over each submission; a
# student's own outputs must never be replaced by the instructor's copies.
c.Autograde.exclude_overwriting = {"hw8": ["prediction.csv", "leaderboard_scores.csv"]}

# Two steps of the course's own (hw8/course/preprocessors.py):
# - autograde: nbgrader's Execute runs the notebook with its test cells emptied, while the
#   grader (hw8/course/verdict.py) runs every test cell in a process of its own against a
#   second process that runs the student's code and only answers with data; each test
#   cell's output is the grader's verdict, which nbgrader scores;
# - feedback: students see which test failed and its message, never the hidden tests' code.
c.Autograde.autograde_preprocessors = [
    ExecuteWithVerdicts,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# - feedback: a written answer nobody has graded yet says "awaits hand grading", not 0.
c.GenerateFeedback.preprocessors = [
    GetGrades,
    MarkHandGrading,
    HideHiddenTests,
    CSSHTMLHeaderPreprocessor,
]
c.GenerateFeedback.exporter_class = FeedbackExporter

# grades.csv: nbgrader's columns, then the written answers still awaiting hand grading
# and the notebooks not handed in (hw8/course/gradebook.py)
c.ExportApp.plugin_class = GradesExport
