"""The notebook lint: what must hold of the source notebooks before a release.

``hw8 course check`` (and ``tests/course/test_lint.py``) run it on ``notebooks/hw8/``:

- the notebooks are committed clean: valid nbformat, the ``python3`` kernel, no outputs,
  no execution counts, no attachments or inline base64 images (figures are files in
  ``notebooks/hw8/assets/``, referenced by path);
- every cell has an explicit id that follows the one naming rule, ``aeNN-ROLE-NAME``
  (``NN`` the notebook's number, ``ROLE`` what the cell is, ``NAME`` lowercase words
  joined by ``-``), unique across the assignment; a cell with nbgrader metadata has its
  ``grade_id`` equal to its id;
- the role agrees with the nbgrader metadata (see ``ROLES``): test cells are locked and
  graded, written answers graded, every graded cell worth points, solution cells hold the
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers and no other cell does, hidden-test
  markers come in pairs;
- no released id has disappeared (``notebooks/released_ids.json``: autograde restores
  locked cells and records grades by id, so a renamed or removed id breaks the grading of
  notebooks already handed out);
- what nbgrader's release removes is gone: the notebooks are put through nbgrader's own
  ``ClearSolutions`` and ``ClearHiddenTests`` and the result is searched for solutions,
  hidden tests and their markers.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4.rwbase import rejoin_lines

ID_RULE = re.compile(
    r"^ae(?P<number>\d\d)-(?P<role>text|code|solution|test|answer|free)-[a-z0-9]+(-[a-z0-9]+)*$"
)
# role: (cell type, grade, solution, locked); "free" cells carry no nbgrader metadata.
ROLES = {
    "text": ("markdown", False, False, True),
    "code": ("code", False, False, True),
    "solution": ("code", False, True, False),
    "test": ("code", True, False, True),
    "answer": ("markdown", True, True, False),
    "free": ("code", None, None, None),
}
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
INLINE_IMAGE = re.compile(r"data:image/[a-z+]+;base64,")
ID_PROMISE = (
    "released ids never change: autograde puts locked cells back and records points by "
    "grade id, so a renamed or removed id breaks the grading of notebooks already handed out"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one cell (or a whole notebook when ``cell`` is empty)."""

    notebook: str
    cell: str
    message: str

    def __str__(self) -> str:
        where = f"{self.notebook}, cell {self.cell}" if self.cell else self.notebook
        return f"{where}: {self.message}"


def notebook_number(path: Path) -> str:
    """The two-digit number a notebook's file name starts with (``03_vae.ipynb`` -> ``03``)."""
    match = re.match(r"^(\d\d)_", path.name)
    return match.group(1) if match else ""


def read_notebooks(source_dir: Path) -> dict[str, nbformat.NotebookNode]:
    """Every ``*.ipynb`` of the assignment folder, by file name, exactly as stored on disk.

    (``nbformat.read`` would quietly rename duplicate cell ids; the lint must see them.)
    """
    return {
        path.name: rejoin_lines(nbformat.from_dict(json.loads(path.read_text())))
        for path in sorted(Path(source_dir).glob("*.ipynb"))
    }


# ----------------------------------------------------------------------------- one notebook


def check_clean(name: str, nb) -> list[Problem]:
    """Valid nbformat, the python3 kernel, no outputs, no attachments or inline images."""
    problems = []
    try:
        nbformat.validate(copy.deepcopy(nb))  # validation repairs duplicate ids in place
    except nbformat.ValidationError as error:
        problems.append(Problem(name, "", f"not a valid notebook ({error.message})."))
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append(Problem(name, "", "the kernel must be python3 (nbgrader_config.py)."))
    for cell in nb.cells:
        cell_id = cell.get("id", "?")
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(
                Problem(name, cell_id, "has outputs: clear them (Edit > Clear Outputs of All).")
            )
        if cell.get("attachments") or INLINE_IMAGE.search(cell.source):
            problems.append(
                Problem(
                    name,
                    cell_id,
                    "holds an embedded image: save it under notebooks/hw8/assets/ and "
                    "link it, ![description](assets/NAME.png).",
                )
            )
    return problems


def check_cell(name: str, number: str, cell) -> list[Problem]:
    """The id rule, the role's nbgrader metadata, points and markers for one cell."""
    cell_id = cell.get("id", "")
    match = ID_RULE.match(cell_id)
    if not match:
        return [
            Problem(
                name,
                cell_id or "?",
                f"the id must read ae{number}-ROLE-NAME, ROLE one of {', '.join(ROLES)}, "
                "NAME lowercase words joined by '-' (e.g. ae03-test-reparameterize).",
            )
        ]
    if match.group("number") != number:
        return [Problem(name, cell_id, f"the id must start with ae{number}, this notebook's.")]
    role = match.group("role")
    cell_type, grade, solution, locked = ROLES[role]
    meta = cell.metadata.get("nbgrader")
    problems = []
    if cell.cell_type != cell_type:
        problems.append(Problem(name, cell_id, f"a '{role}' cell must be a {cell_type} cell."))
    if role == "free":
        if meta is not None:
            problems.append(
                Problem(name, cell_id, "a free cell carries no nbgrader metadata; remove it.")
            )
        return problems
    if meta is None:
        return [*problems, Problem(name, cell_id, "has no nbgrader metadata.")]
    if meta.get("grade_id") != cell_id:
        problems.append(
            Problem(name, cell_id, f"grade_id {meta.get('grade_id')!r} must equal the cell id.")
        )
    found = (bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked")))
    if found != (grade, solution, locked):
        wanted = f"grade={grade}, solution={solution}, locked={locked}"
        problems.append(Problem(name, cell_id, f"a '{role}' cell needs {wanted}."))
    if grade and not (isinstance(meta.get("points"), int | float) and meta["points"] > 0):
        problems.append(Problem(name, cell_id, "a graded cell needs points > 0."))
    problems += check_markers(name, cell_id, role, cell.source)
    if role == "test" and shows_a_value(cell.source):
        problems.append(
            Problem(
                name,
                cell_id,
                "the cell ends in an expression whose value is displayed, and nbgrader reads a "
                "test cell's displayed value as its score; end that line with ';'.",
            )
        )
    return problems


def shows_a_value(source: str) -> bool:
    """True when IPython would display the value of the cell's last statement: it is an
    expression, and no ';' ends it (comments after it do not count)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    skipped = {tokenize.COMMENT, tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    last = [token for token in tokens if token.type not in skipped][-1]
    return last.string != ";"


def check_markers(name: str, cell_id: str, role: str, source: str) -> list[Problem]:
    """Solution markers exactly in solution cells; hidden-test markers in pairs."""
    problems = []
    begin, end = (source.count(marker) for marker in SOLUTION_MARKERS)
    if role == "solution" and not begin == end >= 1:
        problems.append(
            Problem(name, cell_id, "a solution cell needs ### BEGIN SOLUTION / ### END SOLUTION.")
        )
    if role != "solution" and role != "answer" and begin + end:
        problems.append(
            Problem(name, cell_id, "solution markers outside a solution cell reach students.")
        )
    begin, end = (source.count(marker) for marker in HIDDEN_MARKERS)
    if begin != end or (begin and role != "test"):
        problems.append(
            Problem(
                name,
                cell_id,
                "### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS must come in pairs, in test cells.",
            )
        )
    return problems


def check_notebook(name: str, nb) -> list[Problem]:
    """Every rule that concerns one notebook alone."""
    number = notebook_number(Path(name))
    if not number:
        return [Problem(name, "", "the file name must start with two digits, e.g. 06_name.")]
    problems = check_clean(name, nb)
    for cell in nb.cells:
        problems += check_cell(name, number, cell)
    return problems


# ----------------------------------------------------------------------------- the assignment


def check_unique(notebooks: dict) -> list[Problem]:
    """No cell id twice in the assignment (nbgrader's grade ids are per assignment)."""
    seen: dict[str, str] = {}
    problems = []
    for name, nb in notebooks.items():
        for cell in nb.cells:
            cell_id = cell.get("id", "")
            if cell_id in seen:
                problems.append(Problem(name, cell_id, f"the id is also used in {seen[cell_id]}."))
            seen.setdefault(cell_id, name)
    return problems


def read_released(path: Path) -> dict[str, list[str]]:
    """The committed list of released ids, by notebook (empty when there is no file yet)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def check_released(notebooks: dict, released: dict[str, list[str]]) -> list[Problem]:
    """Every released id is still in its notebook (adding ids is fine)."""
    problems = []
    for name, ids in released.items():
        if name not in notebooks:
            problems.append(Problem(name, "", f"a released notebook is missing: {ID_PROMISE}."))
            continue
        present = {cell.get("id") for cell in notebooks[name].cells}
        for cell_id in ids:
            if cell_id not in present:
                problems.append(Problem(name, cell_id, f"a released id is gone: {ID_PROMISE}."))
    return problems


def check_release_strips(notebooks: dict) -> list[Problem]:
    """Put each notebook through nbgrader's release preprocessors; nothing secret is left."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions  # the course extra

    problems = []
    for name, nb in notebooks.items():
        release = copy.deepcopy(nb)
        try:
            release, resources = ClearSolutions().preprocess(release, {})
            release, resources = ClearHiddenTests().preprocess(release, resources)
        except Exception as error:  # nbgrader's own refusal, e.g. markers in the wrong cell
            problems.append(Problem(name, "", f"nbgrader cannot release it: {error}"))
            continue
        for before, after in zip(nb.cells, release.cells, strict=True):
            leaked = [m for m in (*SOLUTION_MARKERS, *HIDDEN_MARKERS) if m in after.source]
            if leaked:
                problems.append(Problem(name, after.get("id", "?"), f"the release keeps {leaked}."))
            role = ID_RULE.match(after.get("id", ""))
            if role and role.group("role") == "answer" and after.source == before.source:
                problems.append(
                    Problem(name, after.id, "the model answer would reach the release.")
                )
    return problems


SHARED_CELLS = ("text-how-to", "code-install")  # one block, the same in every notebook


def check_shared(notebooks: dict) -> list[Problem]:
    """Every notebook opens with the same "how this notebook works" block and install
    cell (``aeNN-text-how-to``, ``aeNN-code-install``): edit one, copy it to the others."""
    problems = []
    for suffix in SHARED_CELLS:
        sources = {}
        for name, nb in notebooks.items():
            wanted = f"ae{notebook_number(Path(name))}-{suffix}"
            found = [cell.source for cell in nb.cells if cell.get("id") == wanted]
            if not found:
                problems.append(Problem(name, wanted, "the shared cell is missing."))
            else:
                sources[name] = found[0]
        if len(set(sources.values())) > 1:
            first = next(iter(sources))
            for name, source in sources.items():
                if source != sources[first]:
                    problems.append(
                        Problem(name, suffix, f"differs from {first}'s: the block is shared.")
                    )
    return problems


def check_course(source_dir: Path, released_file: Path) -> list[Problem]:
    """Every rule, on every notebook of the assignment folder."""
    notebooks = read_notebooks(source_dir)
    if not notebooks:
        return [Problem(str(source_dir), "", "no notebooks found.")]
    problems = []
    for name, nb in notebooks.items():
        problems += check_notebook(name, nb)
    problems += check_unique(notebooks)
    problems += check_shared(notebooks)
    problems += check_released(notebooks, read_released(released_file))
    problems += check_release_strips(notebooks)
    return problems


def released_ids(notebooks: dict) -> dict[str, list[str]]:
    """The ids a release fixes: every cell with nbgrader metadata, by notebook."""
    return {
        name: [cell.id for cell in nb.cells if "nbgrader" in cell.metadata]
        for name, nb in notebooks.items()
    }


def record_release(source_dir: Path, released_file: Path) -> int:
    """Add the current notebooks' ids to the released list (never removes one); count added."""
    from hw8.files import write_json

    record = read_released(released_file)
    added = 0
    for name, ids in released_ids(read_notebooks(source_dir)).items():
        known = record.setdefault(name, [])
        new = [cell_id for cell_id in ids if cell_id not in known]
        known.extend(new)
        added += len(new)
    write_json(record, released_file)
    return added
