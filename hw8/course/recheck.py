"""The grader's re-check: every test cell run again, outside the student's kernel.

``nbgrader autograde`` runs a submission in a Jupyter kernel, and there the student's code
shares the process with the test cells: a student cell can replace ``hw8.grading``'s
checks, torch or numpy functions, or IPython's error display, and a test then passes that
should fail. So beside the kernel run, :class:`Recheck` (started by an autograde
preprocessor, set in ``nbgrader_config.py``) runs the notebook once more in a process of
its own: on Linux a fork of a :class:`Zygote` that has imported torch and the rest once
and never runs student code, elsewhere a fresh ``python -m hw8.course.recheck``. There:

1. before any student code, the runner imports every module the course's cells import
   (installed modules only: a ``numpy.py`` or ``hw8/`` handed in beside the notebook is
   never imported) and records those the tests use (``builtins``, ``math``, ``numpy``,
   ``torch`` and its ``nn.functional``, ``Tensor``, ``distributions``, ``sklearn.metrics``
   where loaded, and every ``hw8`` module: their attributes and the code of their Python
   functions) and the names the locked cells define;
2. student code (solution cells, the free cell, any cell the student added) runs as in the
   kernel, but each time it finishes (its cell ends, or a function the student wrote
   returns to the tests' code) everything recorded is put back as it was;
3. the test cells run as written. A test cell that fails here loses its points even if it
   passed in the kernel; one that fails in the kernel stays failed. The re-check never
   adds points, and the kernel's output (what the student reads) is kept.

Each verdict carries a one-time token the runner reads before any student code runs. A
kernel cannot be a sandbox: code written to read the runner's memory (frames, ``gc``) or
to patch C extensions can still cheat; ``hw8.course.scan`` flags such code for a person.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

GUARDED_MODULES = (
    "builtins",
    "math",
    "sys",
    "numpy",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.distributions",
    "torch.distributions.kl",
    "torch.linalg",
    "torch.testing",
    "sklearn.metrics",
)
# What the zygote loads once for all re-checks (with every module of hw8). torch._dynamo
# is not loaded by ``import torch``, but by the tests' meta-device checks.
PRELOADED = (
    "numpy",
    "torch",
    "torch._dynamo",
    "matplotlib.pyplot",
    "sklearn.metrics",
    "IPython.core.interactiveshell",
)
SKIP_TAG = "skip-recheck"
STUDENT = "<student"


# ----------------------------------------------------------------------------- the guard


class Guard:
    """Records the state student code could tamper with, and puts it back on demand."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.modules = [sys.modules[name] for name in self._guarded_names()]
        self.classes = [cls for cls in self._guarded_classes() if _mutable(cls)]
        self.saved_modules = {name: sys.modules[name] for name in self._guarded_names()}
        self.attributes = [(owner, dict(vars(owner))) for owner in self.modules + self.classes]
        self.codes = [
            (function, function.__code__, function.__defaults__, function.__kwdefaults__)
            for _owner, values in self.attributes
            for function in values.values()
            if isinstance(function, types.FunctionType)
        ]
        self.locked: dict = {}
        self.hook = None

    @staticmethod
    def _guarded_names() -> list[str]:
        names = [name for name in GUARDED_MODULES if name in sys.modules]
        return names + sorted(name for name in sys.modules if name.split(".")[0] == "hw8")

    @staticmethod
    def _guarded_classes() -> list[type]:
        import numpy as np
        import torch

        return [torch.Tensor, torch.nn.Module, torch.nn.Parameter, np.ndarray]

    def lock_names(self) -> None:
        """Record the notebook's names that instructor code (not student code) defined."""
        for name, value in self.namespace.items():
            if not _from_student(value):
                self.locked[name] = value

    def restore(self) -> None:
        """Put back every recorded module, attribute, function body and locked name."""
        self.restore_modules()
        self.namespace.update(self.locked)
        sys.settrace(self.hook)

    def restore_modules(self) -> None:
        """Put back the recorded modules, their attributes and their functions' code."""
        sys.modules.update(self.saved_modules)
        for owner, values in self.attributes:
            current = vars(owner)
            for name in [n for n in current if n not in values and not n.startswith("__")]:
                _delete(owner, name)
            for name, value in values.items():
                if current.get(name, _MISSING) is not value:
                    _assign(owner, name, value)
        for function, code, defaults, kwdefaults in self.codes:
            if function.__code__ is not code:
                function.__code__ = code
            function.__defaults__, function.__kwdefaults__ = defaults, kwdefaults

    def install(self) -> None:
        """Undo what student code changed, each time it returns to the course's code.

        On entering student code from course code the locked names are noted; on the way
        back the modules are restored and the locked names put back as they were at entry
        (so a test cell's own names survive, and a student's ``global grading`` does not).
        The hook is a trace function: it runs once per Python call, and only the frames
        where student code is entered get a return hook (a profile hook would also run
        for every C call and every return, and cost up to a second per notebook). The
        return hook belongs to the frame, so it fires even after student code has called
        ``sys.settrace(None)``, and it sets the hook again.
        """
        entries: list[dict] = []

        def on_return(_frame, event, _arg):
            if event != "return":
                return on_return
            self.restore_modules()
            for name, value in (entries.pop() if entries else {}).items():
                if value is _MISSING:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value
            sys.settrace(on_call)
            return None

        def on_call(frame, _event, _arg):
            if not frame.f_code.co_filename.startswith(STUDENT):
                return None
            caller = frame.f_back
            if caller is not None and caller.f_code.co_filename.startswith(STUDENT):
                return None
            entries.append({name: self.namespace.get(name, _MISSING) for name in self.locked})
            frame.f_trace_lines = False
            return on_return

        self.hook = on_call
        sys.settrace(on_call)

    def intact(self) -> bool:
        """True while the runner's own hook is still in place."""
        return sys.gettrace() is self.hook


_MISSING = object()


def _mutable(cls: type) -> bool:
    try:
        cls.__hw8_probe__ = None
        delattr(cls, "__hw8_probe__")
    except TypeError:
        return False
    return True


def _assign(owner, name, value) -> None:
    try:
        setattr(owner, name, value)
    except (AttributeError, TypeError):
        pass


def _delete(owner, name) -> None:
    try:
        delattr(owner, name)
    except (AttributeError, TypeError):
        pass


def _from_student(value) -> bool:
    code = getattr(value, "__code__", None)
    if code is None and isinstance(value, type):
        code = next(
            (f.__code__ for f in vars(value).values() if isinstance(f, types.FunctionType)),
            None,
        )
    return code is not None and code.co_filename.startswith(STUDENT)


# ----------------------------------------------------------------------------- the runner


class CellTimeout(BaseException):
    """A cell ran past its time limit (raised by the alarm, like a kernel interrupt)."""


def _alarm(_signum, _frame):
    raise CellTimeout()


class Node(dict):
    """A JSON object whose keys read as attributes too, as nbformat's cells do."""

    __getattr__ = dict.__getitem__


def cell_role(cell) -> str:
    """test, locked (instructor code), skip, or student."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("locked"):
        return "skip" if SKIP_TAG in cell.metadata.get("tags", []) else "locked"
    return "student"


def run_notebook(nb, cell_timeout: int, emit) -> None:
    """Run every code cell under the guard; ``emit(grade_id, ok, message)`` per test cell."""
    import builtins

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    shell = InteractiveShell.instance()
    builtins.get_ipython, builtins.display = shell.get_ipython, display
    load_course_modules(nb, shell)
    namespace = shell.user_ns
    signal.signal(signal.SIGALRM, _alarm)
    guard = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        role = cell_role(cell)
        if role == "skip":
            continue
        label = cell.get("id", "cell")
        kind = STUDENT if role == "student" else "<course"
        try:
            code = compile(shell.transform_cell(cell.source), f"{kind}:{label}>", "exec")
        except SyntaxError as error:
            if role == "test":
                emit(cell.metadata["nbgrader"]["grade_id"], False, f"SyntaxError: {error}")
            continue
        if guard is None and role != "locked":
            guard = Guard(namespace)
            guard.lock_names()
            guard.install()
        if guard is not None and role != "student":
            guard.restore()
        error = _run(code, namespace, cell_timeout)
        if guard is not None and role == "student":
            guard.restore()
        if role == "test":
            if error is None and guard is not None and not guard.intact():
                error = "the grader's checks were switched off by the code under test"
            emit(cell.metadata["nbgrader"]["grade_id"], error is None, error or "")
        if guard is not None and role != "student":
            guard.lock_names()


def load_course_modules(nb, shell) -> None:
    """Import, before any student code, what the course's cells import and the guarded
    modules of every package loaded by then, so that the guard records them all.

    Only installed modules are loaded here: the submission's folder is taken off
    ``sys.path`` meanwhile, and put back at its end (a student's own helper module still
    imports; a ``numpy.py`` or ``hw8/`` handed in beside the notebook shadows nothing).
    In a fresh process, packages no course cell needs (``sklearn`` in most notebooks) are
    not loaded at all; a zygote's child has them loaded already.
    """
    folder = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if entry not in ("", ".", folder)]
    for name in ("numpy", "torch", *course_imports(nb, shell)):
        _try_import(name)
    for name in GUARDED_MODULES:
        if name.split(".")[0] in sys.modules:
            _try_import(name)
    sys.path.append(folder)


def course_imports(nb, shell) -> list[str]:
    """The modules named by import statements in the locked and test cells that run here;
    for ``from package import name`` also ``package.name``, in case it is a submodule."""
    import ast

    names = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell_role(cell) not in ("locked", "test"):
            continue
        try:
            tree = ast.parse(shell.transform_cell(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


def _try_import(name: str) -> None:
    import importlib

    try:
        importlib.import_module(name)
    except Exception:  # not a module, or not installed: the cell that needs it fails itself
        pass


def _run(code, namespace: dict, cell_timeout: int) -> str | None:
    """Execute one cell; None when it succeeded, else the error in one line."""
    signal.alarm(cell_timeout)
    try:
        exec(code, namespace)
    except CellTimeout:
        return f"the cell ran past its time limit of {cell_timeout} s"
    except BaseException as error:  # SystemExit and KeyboardInterrupt included
        return f"{type(error).__name__}: {error}"
    finally:
        signal.alarm(0)
    return None


def run_cells(path: str, cell_timeout: int, folder: str, token: str) -> None:
    """Re-check the cells in ``path`` (JSON) in ``folder``; verdicts on stdout, then exit."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(folder)

    def emit(grade_id: str, ok: bool, message: str) -> None:
        out.write(f"{token} {json.dumps([grade_id, ok, message])}\n")

    with open(path) as stream:  # the code cells only (``Recheck`` writes them); no nbformat:
        nb = json.load(stream, object_hook=Node)  # importing it costs a second per process
    run_notebook(nb, cell_timeout, emit)
    out.write(f"{token} done\n")
    out.flush()
    os._exit(0)  # no student finaliser runs after the verdicts


def serve_forks() -> None:
    """The zygote's loop: import what every re-check needs once, then fork one child per
    request line on stdin and answer with its process id; end when stdin closes.

    The zygote never runs student code, so every child starts from the same clean state.
    """
    import importlib
    import pkgutil

    import hw8

    os.environ.setdefault("MPLBACKEND", "Agg")  # read when matplotlib is imported
    for name in PRELOADED:
        importlib.import_module(name)
    for module in pkgutil.iter_modules(hw8.__path__):
        if not module.ispkg:
            importlib.import_module(f"hw8.{module.name}")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the system reaps the children
    while line := sys.stdin.readline():
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _forked(request)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


def _forked(request: dict) -> None:
    """In the forked child: its own session, the grader's environment, stdin from
    /dev/null, stdout into the verdict file; then the re-check. Never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDWR)
        verdicts = os.open(request["verdicts"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for target, source in ((0, null), (1, verdicts), (2, null)):
            os.dup2(source, target)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the zygote's read-ahead is dropped
        run_cells(request["cells"], request["timeout"], request["folder"], request["token"])
    finally:
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """``python -m hw8.course.recheck CELLS_JSON CELL_TIMEOUT FOLDER``, the token on stdin;
    or ``python -m hw8.course.recheck --zygote`` (see :class:`Zygote`).

    It is started outside FOLDER (the submission's copy), so that ``-m`` finds this module
    and not a ``hw8`` package handed in beside the notebook; the cells run in FOLDER.
    """
    args = (argv or sys.argv[1:])[:3]
    if args == ["--zygote"]:
        serve_forks()
        return 0
    path, cell_timeout, folder = args
    run_cells(path, int(cell_timeout), folder, sys.stdin.readline().strip())
    return 0


# ----------------------------------------------------------------------------- the grader's side


LINK_ABOVE_BYTES = 50 * 2**20
# Fork re-checks from a zygote where the system can wait for a process that is not a
# child (Linux's pidfd); elsewhere each re-check is a fresh ``python -m`` process.
FORK = sys.platform == "linux" and hasattr(os, "pidfd_open")


class Zygote:
    """A Python process that has imported what re-checks need (``PRELOADED`` and hw8) once
    and forks a child per re-check: a notebook's re-check took about 3 s as a fresh
    process and takes 0.3-0.7 s forked, after the zygote's own start. One serves the
    whole grading process; it is started in an empty private folder, so that ``-m``
    cannot find a module a student wrote.
    """

    def __init__(self):
        self.home = tempfile.TemporaryDirectory(prefix="hw8-recheck-")
        self.process = _start_runner(["--zygote"], self.home.name, subprocess.PIPE)

    def fork(self, request: dict) -> int:
        """Start a re-check; its process id (OSError or ValueError when the zygote died)."""
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        """Stop the zygote (its children, in their own sessions, are not touched)."""
        _kill_group(self.process)
        self.home.cleanup()


_zygote: Zygote | None = None


def fork_recheck(request: dict) -> int | None:
    """A forked re-check's process id, from this process's zygote (started, or started
    again after a re-check killed it, on demand); None where forking is not available."""
    global _zygote
    if not FORK:
        return None
    for _attempt in range(2):
        if _zygote is None or _zygote.process.poll() is not None:
            if _zygote is not None:
                _zygote.close()
            _zygote = Zygote()
        try:
            return _zygote.fork(request)
        except (OSError, ValueError):
            _zygote.close()
            _zygote = None
    return None


class Recheck:
    """The re-check of one notebook, running in its own process and scratch folder.

    It starts before the kernel run and runs beside it (a submission is graded in about
    half the time); :meth:`failures` waits for it. The scratch folder holds a copy of the
    submission's folder, so the two runs never read each other's half-written files; files
    over 50 MB (data sets, weights: read, not written) are linked, not copied. The process
    is forked from the :class:`Zygote` where it can be, else started afresh.
    """

    def __init__(self, nb, folder: Path | str, cell_timeout: int, total_timeout: int):
        self.token = secrets.token_hex(16)
        self.tests = [
            cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells if cell_role(cell) == "test"
        ]
        self.deadline = time.monotonic() + total_timeout
        self.scratch = tempfile.TemporaryDirectory()
        root = Path(self.scratch.name)
        work = root / "submission"
        shutil.copytree(folder, work, symlinks=True, copy_function=_copy_or_link)
        source = root / "cells.json"
        keys = ("id", "cell_type", "metadata", "source")
        code = [{key: cell.get(key, "") for key in keys} for cell in nb.cells]
        code = [cell for cell in code if cell["cell_type"] == "code"]
        source.write_text(json.dumps({"cells": code}))
        self.verdicts = root / "verdicts.txt"
        request = {
            "cells": str(source),
            "timeout": cell_timeout,
            "folder": str(work),
            "token": self.token,
            "verdicts": str(self.verdicts),
            "env": dict(os.environ),
        }
        self.process, self.pid = None, fork_recheck(request)
        if self.pid is None:
            self.process = _spawn(request, cwd=root)
            self.pid = self.process.pid

    def failures(self) -> dict[str, str]:
        """Wait for the re-check; the grade ids it did not confirm, with why."""
        try:
            self._wait(max(0.0, self.deadline - time.monotonic()))
        finally:
            if self.process is not None:
                _kill_group(self.process)
            else:
                _kill_session(self.pid)
        stdout = self.verdicts.read_text(errors="replace") if self.verdicts.exists() else ""
        self.scratch.cleanup()
        return self._read(stdout)

    def _wait(self, timeout: float) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            return
        try:
            handle = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return  # it has ended already
        try:
            select.select([handle], [], [], timeout)
        finally:
            os.close(handle)

    def _read(self, stdout: str) -> dict[str, str]:
        confirmed, failures = set(), {}
        for line in stdout.splitlines():
            if not line.startswith(self.token + " ["):
                continue
            grade_id, ok, message = json.loads(line[len(self.token) + 1 :])
            if ok:
                confirmed.add(grade_id)
            else:
                failures[grade_id] = message
        for grade_id in self.tests:
            if grade_id not in confirmed and grade_id not in failures:
                failures[grade_id] = "the re-check did not reach this cell (stopped or timed out)"
        return failures


def _spawn(request: dict, cwd: Path) -> subprocess.Popen:
    """A fresh ``python -m hw8.course.recheck`` process for ``request``."""
    args = [request["cells"], str(request["timeout"]), request["folder"]]
    with open(request["verdicts"], "w") as out:
        process = _start_runner(args, cwd, out)
    process.stdin.write(request["token"] + "\n")
    process.stdin.close()
    return process


def _start_runner(args: list[str], cwd: Path | str, stdout) -> subprocess.Popen:
    """``python -m hw8.course.recheck ARGS`` in its own session, stdin a pipe, in ``cwd``
    (never the submission's folder: ``-m`` must find this module, not a student's)."""
    return subprocess.Popen(
        [sys.executable, "-m", "hw8.course.recheck", *args],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        text=True,
        start_new_session=True,
    )


def _copy_or_link(source: str, destination: str) -> None:
    if os.path.getsize(source) > LINK_ABOVE_BYTES:
        os.symlink(os.path.abspath(source), destination)
    else:
        shutil.copy2(source, destination)


def _kill_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, and anything it started."""
    _kill_session(process.pid)
    process.wait()


def _kill_session(pid: int) -> None:
    """Kill every process of the session ``pid`` leads (a re-check and what student code
    started from it)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def recheck(nb, folder: Path | str, cell_timeout: int, total_timeout: int) -> dict[str, str]:
    """Run the re-check of ``nb`` in a copy of ``folder``; the grade ids it did not confirm."""
    return Recheck(nb, folder, cell_timeout, total_timeout).failures()


if __name__ == "__main__":
    sys.exit(main())
