"""The course's own nbgrader steps, named in ``nbgrader_config.py``.

- :class:`ExecuteAndRecheck` (autograde, in place of ``Execute``): while the kernel runs
  the notebook, every test cell runs again outside the student's kernel
  (:mod:`hw8.course.recheck`); a test cell that fails there loses its points even though
  it passed in the kernel.
- :class:`HideHiddenTests` (generate_feedback): the feedback a student receives names
  each test cell and shows its message, but never the hidden tests' code: their lines
  are cut from the test cells and error tracebacks are cut to their last line.
"""

from __future__ import annotations

import re

import nbformat
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from hw8.course.recheck import Recheck, cell_role

FAILED = "RecheckFailed"
HIDDEN = re.compile(r"^([ \t]*)### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[^\n]*", re.S | re.M)
HIDDEN_NOTE = "# (hidden tests ran here: their code is not shown)"


def failed_in_kernel(cell) -> bool:
    """True when the kernel run already marked the test cell as failed."""
    return any(
        output.output_type == "error"
        or (output.output_type == "stream" and output.get("name") == "stderr")
        for output in cell.get("outputs", [])
    )


def recheck_error(message: str):
    """The error output added to a test cell the re-check did not confirm."""
    return nbformat.v4.new_output(
        "error",
        ename=FAILED,
        evalue=message,
        traceback=[
            f"{FAILED}: this test passed in your notebook's kernel but failed when the grader "
            f"ran it again on its own: {message}"
        ],
    )


class ExecuteAndRecheck(Execute):
    """Autograde step in place of nbgrader's ``Execute``: the kernel run, with the re-check
    running beside it in its own process; test cells the re-check does not confirm lose
    their points."""

    def preprocess(self, nb, resources):
        """Start the re-check, run the notebook in the kernel, then mark what failed."""
        timeout = self.timeout or 300
        code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
        folder = resources.get("metadata", {}).get("path") or "."
        running = Recheck(nb, folder, timeout, timeout * max(code_cells, 1))
        try:
            nb, resources = super().preprocess(nb, resources)
        finally:
            failures = running.failures()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell_role(cell) == "test" and grade_id in failures and not failed_in_kernel(cell):
                cell.outputs.append(recheck_error(failures[grade_id]))
                self.log.warning("re-check: %s failed: %s", grade_id, failures[grade_id])
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback step: cut hidden tests from test cells and tracebacks to their last line."""

    def preprocess_cell(self, cell, resources, index):
        """Strip one cell."""
        if cell.cell_type != "code":
            return cell, resources
        if cell_role(cell) == "test":
            cell.source = HIDDEN.sub(lambda m: f"{m.group(1)}{HIDDEN_NOTE}", cell.source)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
