"""Forbidden routes: run a student's function with the library calls that would solve it blocked.

Some exercises ask for something a library already computes (``sklearn.metrics``'
``roc_auc_score``, the package's own ``hw8.anomaly.roc_auc``). The package keeps using
those routes for its own work, so a test cell blocks them only while it calls the
student's function::

    with forbidden_calls(["hw8.anomaly.roc_auc", "sklearn.metrics.roc_auc_score"],
                         message="compute the AUC yourself", namespace=globals()):
        value = roc_auc(labels, scores)

Inside the block each named function is replaced by a stub that raises
:class:`AssertionError` with ``message``: in the module that exports it, in the module
that defines it, and under any name in ``namespace`` (the notebook's globals) that is
bound to it, so ``from sklearn.metrics import roc_auc_score`` at the top of a cell is
caught too. Everything is put back in a ``finally`` block. A stub that was called counts
even when the student's code caught the error: leaving the block then fails as well.

Compute the test's own references *outside* the block: they are blocked inside it too.

Every block also *declares* its rule (:func:`active_rules`): where the grader runs the
tests outside the student's process (``hw8.course.verdict``), blocking a function there
would prove nothing, so the grader reads the student's source instead and fails a call
whose code reaches a forbidden name. ``hw8.checks.assertions.forbid`` declares its rules the same
way: one mechanism, checked in the kernel by stubs and in the grader by the source.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = [
    "Blocked",
    "active_rules",
    "declared",
    "forbidden_calls",
    "resolve",
    "source_reader",
    "use_source_reader",
]

_RULES: ContextVar[tuple[tuple[tuple[str, ...], str], ...]] = ContextVar("hw8_rules", default=())


def active_rules() -> tuple[tuple[tuple[str, ...], str], ...]:
    """The rules of the blocks being run: ``((dotted names, message), ...)``."""
    return _RULES.get()


_READER: ContextVar[object | None] = ContextVar("hw8_source_reader", default=None)


def source_reader():
    """The grader's reader of the student's source (None in a student's kernel): an object
    whose ``recipe_references(function)`` lists where a student's function uses
    ``hw8.house_recipe``, or returns None for an object it does not read."""
    return _READER.get()


def use_source_reader(reader) -> None:
    """Set the grader's source reader for this context (``hw8.course.verdict`` does)."""
    _READER.set(reader)


@contextmanager
def declared(targets: Iterable[str], message: str) -> Iterator[None]:
    """Declare, for the ``with`` block, that the code called must not use ``targets``."""
    token = _RULES.set((*_RULES.get(), (tuple(targets), message)))
    try:
        yield
    finally:
        _RULES.reset(token)


def resolve(dotted: str):
    """The module and attribute named by ``"package.module.name"``: ``(module, name)``."""
    module_name, _, name = dotted.rpartition(".")
    if not module_name:
        raise ValueError(f"{dotted!r}: expected a dotted path such as 'sklearn.metrics.name'.")
    return importlib.import_module(module_name), name


@dataclass
class Blocked:
    """What a ``forbidden_calls`` block saw: the forbidden names that were called."""

    message: str
    calls: list[str] = field(default_factory=list)

    def stub(self, dotted: str):
        """A stand-in for ``dotted`` that records the call and raises ``AssertionError``."""

        def blocked(*args, **kwargs):
            self.calls.append(dotted)
            raise AssertionError(f"do not call {dotted} in this exercise; {self.message}")

        blocked.__name__ = dotted.rpartition(".")[2]
        blocked.__qualname__ = f"forbidden {dotted}"
        return blocked


@contextmanager
def forbidden_calls(
    targets: Iterable[str], *, message: str, namespace: dict | None = None
) -> Iterator[Blocked]:
    """Block each function named in ``targets`` (dotted paths) for the ``with`` block.

    ``message`` says what to do instead; ``namespace`` (usually ``globals()`` of the
    notebook) has its names bound to a blocked function replaced too. Yields a
    :class:`Blocked` record. Raises ``AssertionError`` on leaving the block when a
    blocked function was called, even if the caller swallowed the stub's error.
    """
    record = Blocked(message)
    saved: list[tuple[object, str, object]] = []  # (owner, name, original)

    def replace(owner, name, new) -> None:
        saved.append(
            (owner, name, owner[name] if isinstance(owner, dict) else getattr(owner, name))
        )
        if isinstance(owner, dict):
            owner[name] = new
        else:
            setattr(owner, name, new)

    targets = list(targets)
    try:
        for dotted in targets:
            module, name = resolve(dotted)
            original = getattr(module, name)
            stub = record.stub(dotted)
            replace(module, name, stub)
            home = getattr(original, "__module__", None)
            if home and home != module.__name__:
                defining = importlib.import_module(home)
                if getattr(defining, name, None) is original:
                    replace(defining, name, stub)
            if namespace is not None:
                for key in [k for k, v in namespace.items() if v is original]:
                    replace(namespace, key, stub)
        with declared(targets, message):
            yield record
    finally:
        for owner, name, original in reversed(saved):
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)
    if record.calls:
        raise AssertionError(
            f"your code called {', '.join(sorted(set(record.calls)))}, which this exercise "
            f"forbids; {message}"
        )
