"""The errors that mean "the input is wrong", one class per kind, all in one place.

Each derives from :class:`UserError`, whose message says what was wrong and how to fix
it; the ``hw8`` command prints that one line instead of a traceback. Anything else that
goes wrong is a bug and keeps its traceback. Each class also derives from the built-in
error it has always been (``ValueError`` or ``RuntimeError``), so code that catches
those still works. The modules that raise them import them from here.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a setting that cannot work; the message says which and what to do."""


class UsageError(UserError, ValueError):
    """A command-line value is wrong (``hw8.cli``)."""


class DataError(UserError, ValueError):
    """A data file or folder is missing, malformed or inconsistent (``hw8.datasets``)."""


class DeviceError(UserError, ValueError):
    """A device name that is not one, or a device this machine does not have."""


class TrainingError(UserError, RuntimeError):
    """Training cannot go on, for example after a NaN or infinite loss (``hw8.train``)."""


class CheckpointError(UserError, ValueError):
    """A checkpoint file is missing, unreadable, or belongs to another model or shape."""


class SubmissionError(UserError, ValueError):
    """A score array or submission file does not match the expected test set."""


class LeaderboardError(UserError, ValueError):
    """A scores file is missing, malformed or does not belong to the bundled test set."""


class RequirementsError(UserError, RuntimeError):
    """A requirement of hw8 that this runtime cannot meet without changing its packages;
    the message is one line that says what to run (``hw8.runmode``). In a notebook it
    shows as that line alone, without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an error is shown
        return [f"RequirementsError: {self}"]


class ValidateError(UserError, ValueError):
    """A notebook cannot be validated (``hw8 validate``)."""


class GradeError(UserError):
    """Grading cannot start or go on (``hw8 course``)."""
