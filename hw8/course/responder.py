"""The process that runs a student's code for the grader, and decides nothing.

``python -m hw8.course.responder`` is started by the grader (:mod:`hw8.course.verdict`),
inside the sandbox, in a copy of the submission's folder. It talks to the grader over its
standard input and output (:mod:`hw8.course.wire`) and writes nothing else anywhere the
grader reads: whatever the student's code prints goes to ``/dev/null``. It runs the cells
the grader sends, one at a time, in one namespace (as a kernel would), and answers the
grader's requests about what they defined: call this function on these values, read this
attribute, iterate, differentiate. Every answer is plain data (or a reference to an
object that stays here); every verdict is made by the grader.
"""

from __future__ import annotations

import os
import stat
import sys

import numpy as np

from hw8.course.wire import Endpoint, open_pipes


class Responder(Endpoint):
    """The student's side: runs cells and answers the grader's requests."""

    def __init__(self, reader, writer, namespace: dict, shell):
        super().__init__("child", reader, writer)
        self.namespace = namespace
        self.shell = shell

    def op_run(self, source: str, label: str) -> str | None:
        """Run one cell; None, or its error in one line."""
        try:
            code = compile(self.shell.transform_cell(source), f"<cell {label}>", "exec")
            exec(code, self.namespace)
        except BaseException as error:  # noqa: BLE001 - SystemExit and the like included
            return f"{type(error).__name__}: {error}"[:2000]
        return None

    def op_fetch(self, names: list) -> dict:
        """The current values of the names that are defined."""
        return {name: self.namespace[name] for name in names if name in self.namespace}

    def op_bind(self, values: dict) -> None:
        """Bind names in the notebook's namespace (values the grader computed)."""
        self.namespace.update(values)

    def op_listing(self) -> dict:
        """The regular files at the top of the working folder: name -> [size, mtime]."""
        found = {}
        for entry in os.scandir("."):
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                found[entry.name] = [info.st_size, info.st_mtime_ns]
        return found

    def op_read(self, name: str, limit: int):
        """The first ``limit`` bytes of a file of the working folder, as bytes."""
        with open(os.path.join(".", os.path.basename(name)), "rb") as handle:
            return np.frombuffer(handle.read(limit), dtype=np.uint8)

    def op_call(self, target, args, kwargs, grad=None, overrides=None):
        """Call ``target``; ``overrides`` bind names of the namespace for the call only
        (a test's stand-in for an earlier exercise)."""
        saved = {name: self.namespace.get(name, _MISSING) for name in overrides or {}}
        self.namespace.update(overrides or {})
        try:
            return super().op_call(target, args, kwargs, grad)
        finally:
            for name, value in saved.items():
                if value is _MISSING:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value


_MISSING = object()


def main(argv: list[str] | None = None) -> int:
    """``python -m hw8.course.responder FOLDER``: serve the grader on stdin and stdout,
    in FOLDER (started elsewhere, so that ``-m`` finds this module and not a ``hw8``
    handed in beside the notebook), until the grader closes the pipe."""
    import builtins

    folder = (argv or sys.argv[1:])[0]
    os.environ.setdefault("MPLBACKEND", "Agg")
    reader, writer = open_pipes(os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - for the life of the process
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    shell = InteractiveShell.instance()
    builtins.get_ipython, builtins.display = shell.get_ipython, display
    os.chdir(folder)
    sys.path.insert(0, os.getcwd())  # a student's own helper module imports
    responder = Responder(reader, writer, shell.user_ns, shell)
    try:
        while True:
            message, buffers = responder.receive()
            responder.answer(message, buffers)
    except Exception:  # noqa: BLE001 - the pipe closed: the grader is done
        pass
    os._exit(0)  # no finaliser of the student's code runs


if __name__ == "__main__":
    sys.exit(main())
