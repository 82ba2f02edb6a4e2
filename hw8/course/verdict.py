"""The grader: every test cell's verdict, decided in a process that runs no student code.

A submission's code runs in a child process (:mod:`hw8.course.responder`, in the sandbox
when ``hw8 course grade`` starts it) that decides nothing. This process, outside any
sandbox, replays the notebook:

- the student's cells (solutions, and any cell the student added) run in the child, in
  order; so do the instructor's locked cells that need no student name, and the
  demonstrations whose variables a later cell reads;
- the locked cells run here too, from the instructor's source, so the values the tests
  compare against (``LOG_PX``, the bundled task, the sample's settings) are computed here;
  a locked cell that calls the student's code (``train_sample_models(TASK)``) runs only
  here, and what it defines is handed to the child;
- every test cell runs only here, from the instructor's source (hidden tests included),
  with each name the exercises ask for (``mse_loss``, ``VAE``) bound to a
  :class:`~hw8.course.wire.Remote` of the child's object. Calling it sends the inputs the
  test drew here to the child, which answers with plain data; gradients flow back through
  the wire (:class:`_Bridge`). A test that replaces an earlier exercise by a reference
  (``gaussian_kl = ...``) has the child use the reference for that call.

A test cell passes when it runs to its end here. Rules about which functions an exercise
may use are read from the submitted source (:mod:`hw8.course.sources`); what reading cannot
decide is reported as a flag. ``python -P -m hw8.course.verdict REQUEST OUT FOLDER`` reads
a request (JSON) and writes ``{notebook: {"verdicts": {grade_id: [passed, message]},
"flags": [...]}}``.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hw8.checks.forbidden import active_rules, use_source_reader
from hw8.course.cells import (
    DEMO,
    LOCKED,
    SOLUTION,
    STUDENT,
    TEST,
    Cell,
    defined_names,
    demos_needed,
    merge,
    solution_names,
    tests_of,
    used_names,
)
from hw8.course.sources import SourceIndex
from hw8.course.wire import Endpoint, Remote, Timeout, WireError

CHILD_REQUESTS = frozenset(
    {"call", "gcall", "backward", "getattr", "iter", "next", "len", "bool", "getitem", "float"}
)
# Public attributes the student's code may read on the grader's objects (stand-in models,
# references): torch's module API, the course's Autoencoder API; plus anything defined
# by a class of the test cells themselves.
READABLE = frozenset(
    {
        "parameters",
        "named_parameters",
        "buffers",
        "named_buffers",
        "children",
        "modules",
        "eval",
        "train",
        "training",
        "to",
        "cpu",
        "float",
        "double",
        "zero_grad",
        "forward",
        "reconstruct",
        "encode",
        "decode",
        "encode_distribution",
        "image_shape",
        "name",
    }
)
MAX_RESTARTS = 3
MAX_MIRRORED_BYTES = 64 * 2**20
FETCH_TIMEOUT_S = 120
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_MISSING = object()


# ----------------------------------------------------------------------------- the wire


class Grader(Endpoint):
    """The grader's side of the wire: refuses every request but the reads and calls a
    student's code may make of what the grader handed it, and checks the rules of the
    exercise before it calls a student's function."""

    def __init__(self, reader, writer, session: Session):
        super().__init__("grader", reader, writer)
        self.session = session

    def allow(self, op: str, fields: dict) -> bool:
        """Only requests about the grader's own objects, and only public reads."""
        target = fields.get("target", _MISSING)
        if op == "backward":
            return True  # of a graph this side kept: an unknown number is an error
        if op not in CHILD_REQUESTS or target is _MISSING or isinstance(target, Remote):
            return False
        if isinstance(target, types.ModuleType):
            return False
        return op != "getattr" or readable(target, fields.get("name"))

    def call(self, target, args: tuple, kwargs: dict, **extra) -> Any:
        """Call a student's object in the child, after checking the exercise's rules;
        names the running test has rebound are rebound in the child for the call."""
        self.session.check_rules(target)
        try:
            value = super().call(target, args, kwargs, overrides=self.session.overrides())
        except WireError:
            self.session.drop()
            raise
        self.session.mirror()
        return value

    @staticmethod
    def rebuild_error(reply: dict) -> Exception:
        """The child's error, marked as coming from the student's code."""
        error = Endpoint.rebuild_error(reply)
        error.from_student = True
        return error


def readable(target, name) -> bool:
    """Whether a student's code may read attribute ``name`` of the grader's ``target``."""
    if not isinstance(name, str) or name.startswith("_"):
        return False
    if name in READABLE:
        return True
    for kind in type(target).__mro__:
        if kind.__module__ == "__main__" and name in vars(kind):
            return True
    return name in getattr(target, "__dict__", {})


# ----------------------------------------------------------------------------- the replay


@dataclass
class Child:
    """The student's process, as started by ``command`` (in the sandbox, or not)."""

    command: list[str]
    cwd: str
    env: dict[str, str]
    process: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self.process

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


class Session:
    """One notebook's grading: the child, this process's namespace, the verdicts."""

    def __init__(
        self,
        cells: list[Cell],
        names: set[str],
        index: SourceIndex,
        child: Child,
        timeout: float,
    ):
        self.cells, self.names, self.index = cells, names, index
        self.child_spec, self.timeout = child, timeout
        self.namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.bound: dict[str, Any] = {}
        self.flags: set[str] = set()
        self.history: list[Cell] = []
        self.stuck: set[str] = set()
        self.restarts = 0
        self.grader: Grader | None = None
        self.mirrored: dict[str, list] = {}
        self.read: set[str] = set()
        self.mirroring = False
        self.instructor = set().union(
            *(defined_names(c.source) for c in cells if c.role in (LOCKED, DEMO, TEST))
        )
        use_source_reader(self)

    # ------------------------------------------------------------------ the child

    def connect(self) -> Grader:
        """The wire to a running child, started (and brought up to date) when needed."""
        if self.grader is not None:
            return self.grader
        if self.restarts > MAX_RESTARTS:
            raise WireError("your code stopped the grader's process too often")
        self.restarts += 1
        process = self.child_spec.start()
        self.grader = Grader(process.stdout, process.stdin, self)
        for cell in list(self.history):
            if cell.label not in self.stuck:
                self.ask("run", self.timeout, source=cell.source, label=cell.label)
        return self.grader

    @contextlib.contextmanager
    def limited(self, timeout: float):
        """The wire to the child, every answer due within ``timeout`` seconds; a child
        that fails to answer is stopped."""
        grader = self.connect()
        grader.deadline = time.monotonic() + timeout
        try:
            yield grader
        except WireError:
            self.drop()
            raise
        finally:
            if self.grader is not None:
                self.grader.deadline = None

    def ask(self, op: str, timeout: float, **fields) -> Any:
        """One request to the child (then the files it wrote are copied here)."""
        with self.limited(timeout) as grader:
            value = grader.request({"op": op, **fields})
        self.mirror()
        return value

    def mirror(self) -> None:
        """Copy the files the student's code wrote at the top of its folder into this
        process's folder, asked over the wire (the child's folder may be a file system
        only the sandbox sees), so a test reads what the code wrote, as in a kernel."""
        if self.grader is None or self.mirroring:
            return
        self.mirroring = True
        saved, self.grader.deadline = self.grader.deadline, time.monotonic() + FETCH_TIMEOUT_S
        try:
            listing = self.grader.request({"op": "listing"})
            for name, stamp in listing.items() if isinstance(listing, dict) else ():
                if not isinstance(name, str) or Path(name).name != name or name in (".", ".."):
                    continue
                if self.mirrored.get(name) != stamp:
                    data = self.grader.request(
                        {"op": "read", "name": name, "limit": MAX_MIRRORED_BYTES}
                    )
                    if isinstance(data, np.ndarray) and data.dtype == np.uint8:
                        Path(name).unlink(missing_ok=True)  # never write through a link
                        Path(name).write_bytes(data.tobytes())
                        self.mirrored[name] = stamp
        except Exception:  # noqa: BLE001 - an unreadable file is a file the test misses
            pass
        except WireError:
            self.drop()
        finally:
            self.mirroring = False
            if self.grader is not None:
                self.grader.deadline = saved

    def drop(self) -> None:
        """Stop the child (the next request starts another)."""
        self.child_spec.stop()
        self.grader = None

    # ------------------------------------------------------------------ names

    def refresh(self) -> None:
        """Bind the names the exercises ask for to the child's current objects."""
        values = self.ask("fetch", FETCH_TIMEOUT_S, names=sorted(self.names))
        for name in self.names:
            if name in values:
                value = values[name]
                if isinstance(value, Remote):
                    object.__setattr__(value, "_label", name)
                self.namespace[name] = self.bound[name] = value
            else:
                self.namespace.pop(name, None)
                self.bound.pop(name, None)

    def fetch_free(self, cell: Cell) -> None:
        """Names a locked or test cell reads that no instructor cell defines (a student's
        ``DATA_DIR``): their values in the child. What an instructor cell defines is
        never read from the child, even where that cell did not run."""
        free = used_names(cell.source) - set(self.namespace) - self.names - self.instructor
        if free:
            self.namespace.update(self.ask("fetch", FETCH_TIMEOUT_S, names=sorted(free)))

    def overrides(self) -> dict:
        """Names of the exercises that the running test has bound to its own values."""
        return {
            name: self.namespace[name]
            for name in self.names
            if name in self.namespace and self.namespace[name] is not self.bound.get(name, _MISSING)
        }

    # ------------------------------------------------------------------ rules

    def check_rules(self, target) -> None:
        """Fail the call when the student's function uses what the block forbids."""
        label = getattr(target, "_label", "") if isinstance(target, Remote) else ""
        if label and label not in self.read:
            self.read.add(label)
            moved = self.index.moves(label)
            if moved:
                self.flags.add(
                    f"{label} moves tensors between devices ({', '.join(moved)}): a CPU-only "
                    "grader's device checks cannot see it"
                )
        rules = active_rules()
        if not rules or not label:
            return
        unread = self.index.unreadable(label)
        if unread:
            self.flags.add(f"{label}: the forbidden-call rules cannot see past {', '.join(unread)}")
        for names, message in rules:
            used = self.index.uses(label, names)
            if used:
                raise AssertionError(f"this exercise must not use {used[0]}: {message}")

    def recipe_references(self, function) -> list[str] | None:
        """``hw8.checks.leaderboard``'s own-method check, read from the student's source."""
        from hw8.checks.leaderboard import RECIPE_TOKEN, _mentions_recipe

        label = getattr(function, "_label", "") if isinstance(function, Remote) else ""
        if not label:
            return None
        unread = self.index.unreadable(label)
        if unread:
            self.flags.add(f"{label}: the own-method rule cannot see past {', '.join(unread)}")
        found = self.index.mentions(label, _mentions_recipe)
        origins = [
            origin
            for name, origin in self.index.imports.items()
            if RECIPE_TOKEN in origin.split(".") and name in self.index.names_read(label)
        ]
        return found + [f"{label} uses {origin}" for origin in origins]

    # ------------------------------------------------------------------ cells

    def run(self) -> dict[str, list]:
        """Replay the notebook; the verdict of every test cell met."""
        verdicts: dict[str, list] = {}
        needed = demos_needed(self.cells)
        try:
            for position, cell in enumerate(self.cells):
                if cell.role in (SOLUTION, STUDENT) or (cell.role == DEMO and position in needed):
                    self.in_child(cell)
                elif cell.role == LOCKED:
                    if used_names(cell.source) & self.names:
                        self.here(cell, hand_over=True)
                    else:
                        self.in_child(cell)
                        self.here(cell)
                elif cell.role == TEST:
                    verdicts[cell.grade_id] = self.test(cell)
        finally:
            self.drop()
        return verdicts

    def in_child(self, cell: Cell) -> None:
        self.history.append(cell)
        try:
            self.ask("run", self.timeout, source=cell.source, label=cell.label)
        except WireError:  # it ran past its time, or ended the process: not run again
            self.stuck.add(cell.label)

    def here(self, cell: Cell, hand_over: bool = False) -> None:
        """Run an instructor cell in this process; hand what it defines to the child."""
        with contextlib.suppress(Exception, WireError):
            self.refresh()
            self.fetch_free(cell)
            self.execute(cell)
            if hand_over:
                names = defined_names(cell.source) & set(self.namespace)
                self.ask("bind", self.timeout, values={n: self.namespace[n] for n in names})

    def execute(self, cell: Cell) -> None:
        code = compile(cell.source, f"<{cell.role} {cell.label}>", "exec")
        with (
            self.limited(self.timeout),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            exec(code, self.namespace)

    def test(self, cell: Cell) -> list:
        """Run one test cell here: [passed, message]."""
        try:
            self.refresh()
            self.fetch_free(cell)
            self.execute(cell)
        except Timeout:
            return [False, f"your code did not finish within the time limit of {self.timeout:g} s"]
        except WireError as error:
            return [False, f"the process running your code stopped ({error})"]
        except BaseException as error:  # noqa: BLE001 - every failure is a verdict
            return [False, failure_message(cell, error)]
        return [True, ""]


def failure_message(cell: Cell, error: BaseException) -> str:
    """What a student reads about a failed test: the whole message when a visible check
    failed; for a hidden check only its first line (an error of the student's own code
    there: its type only), so no hidden input or expected value reaches the feedback."""
    text = f"{type(error).__name__}: {error}".strip()
    if not in_hidden_part(cell, error):
        return text[:2000]
    if getattr(error, "from_student", False):
        return f"a hidden test failed: your code raised {type(error).__name__}"
    return f"a hidden test failed: {text.splitlines()[0][:300]}"


def in_hidden_part(cell: Cell, error: BaseException) -> bool:
    """Whether the statement of the test cell that failed lies between the hidden-test
    markers (the outermost frame of the cell's code in the traceback)."""
    lines = cell.source.splitlines()
    begin = next((i + 1 for i, line in enumerate(lines) if HIDDEN_BEGIN in line), None)
    end = next((i + 1 for i, line in enumerate(lines) if HIDDEN_END in line), len(lines) + 1)
    if begin is None:
        return False
    filename = f"<{cell.role} {cell.label}>"
    for frame, line in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename == filename:
            return begin < line < end
    return True  # no frame of the cell: say nothing specific


# ----------------------------------------------------------------------------- entry points


def notebook_request(instructor: dict, submitted: dict) -> dict:
    """What the grader needs of one notebook: the cells to replay (the submission's, with
    the instructor's locked and test cells), the names the exercises ask for, the tests."""
    return {
        "cells": [cell.__dict__ for cell in merge(submitted, instructor)],
        "names": sorted(solution_names(instructor)),
        "tests": tests_of(instructor),
    }


def decide(notebook: dict, child: Child, timeout: float, folder: Path):
    """The verdicts of one notebook (a :func:`notebook_request`), its child started by
    ``child``: ``{"verdicts": {grade_id: [passed, message]}, "flags": [...]}``."""
    cells = [Cell(**cell) for cell in notebook["cells"]]
    sources = [c.source for c in cells if c.role in (SOLUTION, STUDENT)]
    index = SourceIndex(sources, folder)
    session = Session(cells, set(notebook["names"]), index, child, timeout)
    verdicts = session.run()
    for grade_id in notebook["tests"]:
        verdicts.setdefault(grade_id, [False, "this test cell is missing from your notebook"])
    return {"verdicts": verdicts, "flags": sorted(session.flags)}


def decide_all(request: dict) -> dict:
    """The verdicts of every notebook of a request, one after another in this process:
    ``{"notebooks": {name: notebook_request}, "child": {"command": [...], "cwd": ...,
    "env": {...}}, "timeout": seconds}``; each notebook gets a child of its own, started
    in the submission's folder as it was handed in."""
    spec = request["child"]
    child = Child(spec["command"], spec["cwd"], spec["env"])
    folder = Path.cwd()
    return {
        name: decide(notebook, child, float(request["timeout"]), folder)
        for name, notebook in request["notebooks"].items()
    }


def main(argv: list[str] | None = None) -> int:
    """``python -P -m hw8.course.verdict REQUEST_JSON OUT_JSON FOLDER``: the tests run in
    FOLDER, a copy of the submission (the files the tests read), which is never on
    ``sys.path``: a ``torch.py`` or ``hw8/`` handed in there is never imported here."""
    request_path, out_path, folder = argv or sys.argv[1:4]
    request = json.loads(Path(request_path).read_text())
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    builtins.display = lambda *args, **kwargs: None
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p) != Path(folder)]
    os.chdir(folder)
    result = decide_all(request)
    Path(out_path).write_text(json.dumps(result))
    return 0


def run_verdicts(request: dict, folder: Path, scratch: Path) -> subprocess.Popen:
    """Start the grader on ``request``, its tests running in ``folder`` (a copy of the
    submission nobody else writes), the process itself started in ``scratch`` and with
    Python's ``-P`` (neither folder on ``sys.path``); it writes ``scratch/verdicts.json``.
    The caller waits and reads it with :func:`read_verdicts`."""
    path = scratch / "verdict-request.json"
    path.write_text(json.dumps(request))
    out = scratch / "verdicts.json"
    command = [sys.executable, "-P", "-m", "hw8.course.verdict", str(path), str(out), str(folder)]
    return subprocess.Popen(
        command,
        cwd=scratch,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(scratch / "verdict.log", "wb"),  # noqa: SIM115 - the child owns it
        start_new_session=True,
    )


def verdict_outputs(passed: bool, message: str) -> list[dict]:
    """A test cell's outputs for its verdict, in nbformat's shape: nbgrader scores an
    error output 0 and a cell without one full marks."""
    if passed:
        text = "PASSED (checked by the grader, outside your notebook's kernel)\n"
        return [{"output_type": "stream", "name": "stdout", "text": text}]
    return [
        {
            "output_type": "error",
            "ename": "TestFailed",
            "evalue": message,
            "traceback": [f"TestFailed: {message}"],
        }
    ]


def read_verdicts(scratch: Path) -> dict:
    """What the verdict process wrote ({} when it wrote nothing)."""
    try:
        return json.loads((scratch / "verdicts.json").read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
