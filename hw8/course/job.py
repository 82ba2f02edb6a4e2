"""One grading job: ``nbgrader autograde`` of one student in a private scratch course.

A job is plain data, so it runs as well in a local worker process as on a Dask worker on
another machine: the course's ``nbgrader_config.py``, the assignment's non-notebook files,
the student's submitted files and a gradebook that holds the assignment and nothing else
(no other student, no grade). ``run_job`` lays these out as a scratch course in a
temporary folder and runs ``nbgrader autograde ASSIGNMENT --student ID`` there, inside the
sandbox, with a time limit and the kernel held to its share of CPU threads and memory.
Then, outside the sandbox, it reads the student's grades from the private gradebook and
the autograded files, and returns them. A job never touches the course: the grader
records what it returns (``hw8.course.gradebook``).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import psutil

from hw8.course import sandbox as sandboxes

GRADED, FAILED, TIMED_OUT = "graded", "failed", "timed out"
# Every thread pool a kernel may start (OpenMP, hence torch's intra-op pool; MKL; OpenBLAS;
# numexpr; Apple Accelerate): a kernel uses only its share of the cores.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
# What the kernel inherits from the machine that runs the job (nothing else: no tokens).
INHERITED_VARIABLES = ("LANG", "LC_ALL", "TZ", "PYTHONPATH", "CUDA_VISIBLE_DEVICES")
NBGRADER = "hw8.course.nbgrader_command"  # ``python -m NBGRADER``: nbgrader, faster to start
MAX_RESULT_BYTES = 256 * 2**20  # an autograded folder larger than this is not brought back
MAX_LOG_BYTES = 2**20  # what is read of nbgrader's log, from its end
STOP = threading.Event()  # set by the grader when interrupted: running jobs stop at once
# In nbgrader's log: the last line of a traceback ("nbformat.reader.NotJSONError: ..."),
# and its own error lines except the ones that only say where to look.
EXCEPTION_LINE = re.compile(r"^\s*(?:\w+\.)*(?P<text>\w+(?:Error|Exception|Exit): .+)$")
NOTEBOOK_LINE = re.compile(r"\| INFO\] (?:Sanitizing|Autograding) \S*?(?P<name>[^/\s]+\.ipynb)$")
NBGRADER_ERROR = re.compile(
    r"\| ERROR\] (?!There was an error|Traceback|Please see|While processing)(?P<text>.+)$"
)


@dataclass(frozen=True)
class Job:
    """Everything needed to autograde one student's submission, as plain data.

    ``folders`` holds the course-relative folders of this student's assignment
    (``source``, ``submitted``, ``autograded``); ``source_files`` and ``submission`` map
    paths relative to those folders to contents; ``memory`` is bytes per process (None:
    the memory of the machine that runs the job, shared out by ``threads``; 0: no limit);
    ``options`` are extra ``nbgrader autograde`` options; ``env`` extra variables
    (``HW8_QUICK``, say) for the kernel.
    """

    assignment: str
    student: str
    config: str
    folders: dict[str, str]
    source_files: dict[str, bytes]
    submission: dict[str, bytes]
    gradebook: bytes
    sandbox: sandboxes.Sandbox
    timeout: float
    threads: int
    memory: int | None = None
    options: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What one job found: ``status`` (GRADED, FAILED or TIMED_OUT), why when it failed,
    the grades in the private gradebook (notebook -> ``{"grades": {grade id:
    [auto_score, needs_manual_grade]}, "comments": {grade id: auto_comment}}``; None when
    nbgrader recorded no submission) and the autograded files (path -> (bytes, mode))."""

    student: str
    status: str
    seconds: float
    message: str = ""
    grades: dict | None = None
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)


def run_job(job: Job) -> Outcome:
    """Autograde one submission in a scratch course inside the sandbox; never raises for
    what the submission does (a crash, a hang, a corrupt notebook give a FAILED or
    TIMED_OUT outcome)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hw8-grade-", ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp) / "course"
        write_scratch(job, scratch)
        returncode = run_confined(job, scratch, Path(tmp) / "nbgrader.log")
        log = log_tail(Path(tmp) / "nbgrader.log")
        outcome = Outcome(job.student, GRADED, 0.0)
        if returncode is None:
            outcome.status = TIMED_OUT
            outcome.message = f"stopped after the time limit of {job.timeout:g} s"
        elif returncode != 0:
            outcome.status = FAILED
            outcome.message = error_summary(log) or f"nbgrader exited with {returncode}"
        try:
            outcome.grades = read_grades(scratch / "gradebook.db", job)
            if outcome.status == GRADED:
                outcome.files = read_files(scratch / job.folders["autograded"])
        except ValueError as error:
            outcome.status, outcome.message, outcome.grades = FAILED, str(error), None
    outcome.seconds = time.perf_counter() - started
    return outcome


def write_scratch(job: Job, scratch: Path) -> None:
    """The scratch course: config, private gradebook, assignment files, the submission."""
    for folder in ("home", "tmp"):
        (scratch / folder).mkdir(parents=True)
    (scratch / "nbgrader_config.py").write_text(job.config)
    (scratch / "gradebook.db").write_bytes(job.gradebook)
    write_files(scratch / job.folders["source"], job.source_files)
    write_files(scratch / job.folders["submitted"], job.submission)


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"{name}: a file of the job lies outside its folder")
        path = folder.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def run_confined(job: Job, scratch: Path, log_path: Path) -> int | None:
    """Run nbgrader autograde in the sandbox; its exit status, or None after the time limit.

    The whole process tree is killed when it ends, runs out of time or is interrupted.
    """
    db = scratch / "gradebook.db"
    command = [sandboxes.python_command(job.sandbox), "-m", NBGRADER, "autograde"]
    command += [job.assignment, f"--student={job.student}", f"--CourseDirectory.root={scratch}"]
    command += [f"--CourseDirectory.db_url=sqlite:///{db}", *job.options]
    env = environment(job, scratch)
    name = f"hw8-grade-{uuid.uuid4().hex[:12]}"
    memory = job.memory if job.memory is not None else memory_share(job.threads)
    wrapped = sandboxes.wrap(
        job.sandbox, command, scratch, env=env, memory=memory, threads=job.threads, name=name
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            wrapped,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return wait(process, time.monotonic() + job.timeout)
        finally:
            kill_tree(process.pid)
            process.wait()
            if job.sandbox.kind == "docker":
                sandboxes.stop_container(name)


def wait(process: subprocess.Popen, deadline: float) -> int | None:
    """The process's exit status, or None at the deadline; KeyboardInterrupt if STOP is set
    (the grader was interrupted) or arrives."""
    while not STOP.is_set():
        try:
            return process.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return None
    raise KeyboardInterrupt


def environment(job: Job, scratch: Path) -> dict[str, str]:
    """The kernel's whole environment: a home and temporary folder in the scratch course,
    this Python first on PATH (nbgrader runs ``alembic`` from it), the thread limits."""
    env = {key: os.environ[key] for key in INHERITED_VARIABLES if key in os.environ}
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), path]),
        HOME=str(scratch / "home"),
        TMPDIR=str(scratch / "tmp"),
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.setdefault("LANG", "C.UTF-8")
    env.update(dict.fromkeys(THREAD_VARIABLES, str(job.threads)))
    env.update(job.env)
    return env


def memory_share(threads: int) -> int:
    """This machine's memory in bytes, times ``threads`` over its number of cores."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total * min(1.0, threads / (os.cpu_count() or 1)))


def kill_tree(pid: int) -> None:
    """Kill a process and every process it started (a kernel runs in its own session)."""
    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def log_tail(path: Path) -> str:
    """The end of nbgrader's log (the kernel may write to it too: it can be huge)."""
    with open(path, "rb") as log:
        log.seek(max(0, path.stat().st_size - MAX_LOG_BYTES))
        return log.read().decode(errors="replace")


def error_summary(log: str) -> str:
    """What went wrong, from an nbgrader log: the notebook it was grading and its last two
    distinct error lines."""
    found, notebook = [], ""
    for line in log.splitlines():
        if not found and (match := NOTEBOOK_LINE.search(line)):
            notebook = f"{match.group('name')}: "
        match = EXCEPTION_LINE.match(line) or NBGRADER_ERROR.search(line)
        if match and match.group("text").strip() not in found:
            found.append(match.group("text").strip())
    return notebook + " | ".join(text[:200] for text in found[-2:]) if found else ""


def read_grades(db: Path, job: Job) -> dict | None:
    """The student's grades and comments in the private gradebook (None if it holds no
    submission). The file was writable by the submission: it is read, never trusted
    (the grader checks every value against the course's own gradebook)."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SQLAlchemyError

    if not stat.S_ISREG(os.lstat(db).st_mode):
        raise ValueError("the private gradebook was replaced by something that is not a file")
    try:
        with Gradebook(f"sqlite:///{db}") as gradebook:
            try:
                submission = gradebook.find_submission(job.assignment, job.student)
            except MissingEntry:
                return None
            return {
                notebook.name: {
                    "grades": {
                        g.name: [g.auto_score, g.needs_manual_grade] for g in notebook.grades
                    },
                    "comments": {c.name: c.auto_comment for c in notebook.comments},
                }
                for notebook in submission.notebooks
            }
    except SQLAlchemyError as error:
        raise ValueError(f"the private gradebook cannot be read ({error})") from error


def read_files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """The regular files under ``folder`` (relative path -> (bytes, mode)); symbolic links
    and other special files are left behind, so nothing outside the scratch is read."""
    files, total = {}, 0
    for directory, _, names in os.walk(folder):
        for name in names:
            path = Path(directory, name)
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                continue
            total += info.st_size
            if total > MAX_RESULT_BYTES:
                raise ValueError(f"the autograded folder is larger than {MAX_RESULT_BYTES} bytes")
            files[path.relative_to(folder).as_posix()] = (path.read_bytes(), info.st_mode & 0o777)
    return files
