"""hw8.errors: every user-facing error derives from one base, defined in one place."""

import ast
import inspect
from pathlib import Path

import pytest

from hw8 import errors
from hw8.cli import main

PACKAGE = Path(__file__).resolve().parents[1] / "hw8"
# Not user errors: the grader's wire protocol signals (BaseException on purpose).
INTERNAL = {"WireError", "Timeout"}


def defined_exceptions() -> dict[str, list[str]]:
    """Module path -> the classes it defines whose name ends in Error or that subclass an
    exception by name (read from the source, nothing imported)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = [
            node.name
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and (
                node.name.endswith("Error")
                or any(getattr(b, "id", "").endswith(("Error", "Exception")) for b in node.bases)
            )
        ]
        if names:
            found[path.relative_to(PACKAGE).as_posix()] = names
    return found


def test_error_classes_live_in_hw8_errors_only():
    elsewhere = {
        module: [n for n in names if n not in INTERNAL]
        for module, names in defined_exceptions().items()
        if module != "errors.py"
    }
    assert not any(elsewhere.values()), (
        f"define user errors in hw8/errors.py (deriving from UserError): {elsewhere}"
    )


def test_every_error_in_hw8_errors_is_a_user_error():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, errors.UserError), cls


def test_modules_raise_the_shared_classes():
    from hw8 import anomaly, datasets, device, train

    assert datasets.DataError is errors.DataError
    assert train.CheckpointError is errors.CheckpointError
    assert anomaly.SubmissionError is errors.SubmissionError
    assert device.DeviceError is errors.DeviceError
    # the built-in base each has always had still catches it
    assert issubclass(errors.DataError, ValueError)
    assert issubclass(errors.TrainingError, RuntimeError)


@pytest.mark.parametrize("error", [errors.GradeError, errors.DataError, errors.RequirementsError])
def test_the_command_line_prints_any_user_error_as_one_line(monkeypatch, capsys, error):
    def fail(args):
        raise error("what was wrong; what to do")

    monkeypatch.setattr("hw8.cli.command_validate", fail)
    assert main(["validate", "x.ipynb"]) == 2
    assert capsys.readouterr().err == "hw8 validate: error: what was wrong; what to do\n"


def test_the_command_line_names_no_error_class_as_a_string():
    source = (PACKAGE / "cli.py").read_text()
    for name in ("DataError", "CheckpointError", "SubmissionError", "ValidateError"):
        assert f'"{name}"' not in source
