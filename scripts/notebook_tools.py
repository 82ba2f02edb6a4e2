"""What both notebook builders share: cell metadata, rendering, and the write/--check CLI.

``scripts/build_notebooks.py`` (01-03) and ``scripts/build_notebooks_04_05.py`` (04-05)
each describe their notebooks with their own ``Builder``; this module turns the result
into the committed files (nbformat JSON without outputs, code formatted by ruff).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "notebooks" / "hw8"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def src(text: str) -> str:
    """Dedent a triple-quoted cell source and strip its surrounding blank lines."""
    return textwrap.dedent(text).strip("\n")


def nbgrader_meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None):
    """The ``nbgrader`` cell metadata (schema 3) for one cell."""
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _ruff() -> str | None:
    """The ruff next to this Python (the project venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    return str(beside) if beside.exists() else shutil.which("ruff")


def render(notebook, path: Path) -> str:
    """The notebook's text as committed: nbformat JSON, code cells formatted by ruff."""
    nbformat.validate(notebook)
    path.write_text(nbformat.writes(notebook, version=4) + "\n")
    ruff = _ruff()
    if ruff is None:
        print("warning: ruff not found; code cells left unformatted", file=sys.stderr)
    else:
        config = ["--config", str(ROOT / "pyproject.toml")]
        subprocess.run([ruff, "format", "--quiet", *config, str(path)], check=True, cwd=ROOT)
    return path.read_text()


def write_or_check(build_all: Callable[[], dict], script: str, description: str, argv=None):
    """The builders' command line: write the notebooks, or with --check report stale ones."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, notebook in build_all().items():
        path = OUT_DIR / name
        with tempfile.TemporaryDirectory() as scratch:
            text = render(notebook, Path(scratch) / name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python scripts/{script}")
        return 1
    return 0
