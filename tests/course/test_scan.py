"""The suspicious-code scan (``hw8.course.scan``): what it flags, and what it leaves alone."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hw8.course.scan import course_code, shadowing_files, suspicious_code

SOURCE = Path(__file__).resolve().parents[2] / "notebooks" / "hw8"


def notebook(tmp_path: Path, *sources: str) -> Path:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("import os  (prose is not code)")]
    nb.cells += [new_code_cell(source, id=f"c{i}") for i, source in enumerate(sources)]
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("path", sorted(SOURCE.glob("*.ipynb")), ids=lambda p: p.name)
def test_the_course_notebooks_are_not_flagged(path):
    """A correct submission (the instructor's notebooks) raises no flag; the course's own
    locked cells (the install cell imports subprocess) are not the student's code."""
    assert suspicious_code(path, course_code(SOURCE)) == []


def test_a_changed_course_cell_is_scanned(tmp_path):
    (install,) = [s for s in course_code(SOURCE) if "pip" in s and s.startswith("# Installs")][:1]
    assert suspicious_code(notebook(tmp_path, install), course_code(SOURCE)) == []
    changed = install + "\nimport os\nos.remove('../gradebook.db')"
    assert suspicious_code(notebook(tmp_path, changed), course_code(SOURCE)) != []


FLAGGED = {
    "import subprocess": "imports subprocess",
    "from os import path": "imports from os",
    "import socket as s": "imports socket",
    "import ctypes": "imports ctypes",
    "import builtins\nbuiltins.print = None": "monkeypatches builtins.print",
    "__builtins__.len = None": "uses __builtins__",
    "exec('x = 1')": "calls exec()",
    "__import__('os')": "calls __import__()",
    "sys.exit(0)": "calls sys.exit()",
    "os._exit(0)": "calls os._exit()",
    "raise SystemExit": "raises SystemExit",
    "open('/etc/passwd').read()": "open() on a path outside '.': '/etc/passwd'",
    "open('../../../gradebook.db', 'rb')": "open() on a path outside '.'",
    "glob.glob('../../submitted/*')": "glob.glob() on a path outside '.'",
    "torch.allclose = lambda *a, **k: True": "monkeypatches torch.allclose",
    "import numpy as np\nnp.testing.assert_allclose = print": (
        "monkeypatches np.testing.assert_allclose"
    ),
    "assertions.check_close = None": "monkeypatches assertions.check_close",
    "setattr(torch, 'equal', None)": "calls setattr(torch)",
    "get_ipython().showtraceback = lambda *a: None": "touches IPython's showtraceback",
    "ip = get_ipython()\nip.set_custom_exc((Exception,), None)": "calls get_ipython()",
    "def print(*args):\n    pass": "redefines print",
    "AssertionError = Exception": "rebinds AssertionError",
    "globals()['assertions'] = None": "writes into globals()",
    "globals().update(assertions=None)": "changes globals() with .update()",
    "!cat /etc/passwd": "runs a shell command: !cat /etc/passwd",
    "%%bash\nls ..": "runs a shell or file magic: %%bash",
}


@pytest.mark.parametrize("source", FLAGGED, ids=range(len(FLAGGED)))
def test_suspicious_code_is_flagged(tmp_path, source):
    findings = suspicious_code(notebook(tmp_path, "x = 1", source))
    assert findings, f"not flagged: {source!r}"
    assert all(finding.startswith("cell c1: ") for finding in findings), findings
    assert any(FLAGGED[source] in finding for finding in findings), findings


BENIGN = [
    "import numpy as np\nimport torch\nfrom torch import nn",
    "model.weight = nn.Parameter(torch.zeros(3))",
    "self_check = globals().get('square')",
    "with open('prediction.csv', 'w') as handle:\n    handle.write('ID,score')",
    "path = Path('runs') / 'model.pt'",
    "text = 'a/b'.split('/')",
    "%matplotlib inline\nplt.plot([1, 2])",
    "def broken(:\n    pass",  # does not parse: cannot run either
]


@pytest.mark.parametrize("source", BENIGN, ids=range(len(BENIGN)))
def test_ordinary_code_is_not_flagged(tmp_path, source):
    assert suspicious_code(notebook(tmp_path, source)) == []


def test_a_module_imported_in_another_cell_counts(tmp_path):
    path = notebook(tmp_path, "import hw8.checks.leaderboard as lb", "lb.assert_level = print")
    assert suspicious_code(path) == ["cell c1: monkeypatches lb.assert_level"]


def test_a_file_that_is_not_a_notebook_is_an_error(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [ not json')
    with pytest.raises(ValueError, match="not a notebook"):
        suspicious_code(path)


def test_modules_that_hide_installed_ones_are_flagged(tmp_path):
    (tmp_path / "numpy.py").write_text("")
    (tmp_path / "json.py").write_text("")
    (tmp_path / "hw8" / "course").mkdir(parents=True)
    (tmp_path / "hw8" / "__init__.py").write_text("")
    (tmp_path / "my_helpers.py").write_text("")
    (tmp_path / "assets").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert shadowing_files(tmp_path) == [
        "hw8 handed in: it hides the installed module hw8",
        "json.py handed in: it hides the installed module json",
        "numpy.py handed in: it hides the installed module numpy",
    ]
