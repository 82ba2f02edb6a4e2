"""hw8.course.gradebook: the private gradebook a job's sandbox sees."""

import os
import sys
from pathlib import Path


def test_the_private_gradebook_is_made_as_nbgrader_makes_one(tmp_path, monkeypatch):
    """``template`` stamps the schema version without the ``alembic`` process nbgrader
    starts: same tables, same version, and nbgrader opens it as its own."""
    import sqlite3

    from nbgrader.api import Gradebook

    from hw8.course import gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    ours = tmp_path / "ours.db"
    ours.write_bytes(
        gradebook.template({"duedate": None, "notebooks": []}, "course", "hw8", "# stub")
    )
    theirs = tmp_path / "theirs.db"
    with Gradebook(f"sqlite:///{theirs}", "course") as made:
        made.add_assignment("hw8")

    def schema(path: Path) -> tuple:
        with sqlite3.connect(path) as db:
            tables = sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall())
            return tables, db.execute("SELECT * FROM alembic_version").fetchall()

    assert schema(ours) == schema(theirs)
    with Gradebook(f"sqlite:///{ours}", "course") as opened:
        assert [a.name for a in opened.assignments] == ["hw8"]
