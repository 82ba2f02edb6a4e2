"""One grading job: one student's submission, graded in private scratch folders.

A job is plain data, so it runs as well in a local worker process as on a Dask worker on
another machine: the course's ``nbgrader_config.py``, the assignment as the course
gradebook holds it and the instructor's notebooks, the assignment's non-notebook files,
the student's submitted files and a gradebook that holds the assignment and nothing else
(no other student, no grade, no test's code). ``run_job`` runs two things side by side:

- ``nbgrader autograde ASSIGNMENT --student ID`` in a scratch course, inside the sandbox,
  for the autograded notebooks the students read in their feedback: the kernel runs the
  notebook with its test cells emptied;
- the grader (``python -m hw8.course.verdict``), outside the sandbox, which runs the
  instructor's test cells against a second sandboxed process running the student's code
  (``hw8.course.responder``, in a scratch of its own).

Then, outside the sandbox, it computes the student's grades itself: each test cell's from
the grader's verdict, each written answer's by nbgrader's own rule on the submitted
notebook (no response: 0; an answer: for a person to grade). Nothing the sandboxed
processes wrote is read as a grade. A job never touches the course: the grader records
what it returns (``hw8.course.gradebook``).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import psutil

from hw8.course import sandbox as sandboxes
from hw8.course.cells import TEST, grade_id_of, role_of
from hw8.course.confine import read_tar
from hw8.course.verdict import notebook_request, read_verdicts, run_verdicts, verdict_outputs
from hw8.settings import CELL_TIMEOUT_S

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
DEFAULT_DISK = 2**30  # bytes each sandboxed process of a job may write (bwrap, docker)
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
    (``HW8_QUICK``, say) for the kernel; ``spec`` the assignment as the course gradebook
    holds it (``hw8.course.gradebook.assignment_spec``) and ``instructor`` the source
    notebooks (name -> notebook JSON), neither ever written where the sandbox can see it;
    ``disk`` the bytes each sandboxed process may write, ``cell_timeout`` the seconds each
    cell and each test may take (the course's ``Execute.timeout``).
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
    spec: dict = field(default_factory=dict)
    instructor: dict[str, dict] = field(default_factory=dict)
    disk: int = DEFAULT_DISK
    cell_timeout: float = float(CELL_TIMEOUT_S)


@dataclass
class Outcome:
    """What one job found: ``status`` (GRADED, FAILED or TIMED_OUT), why when it failed,
    the grades the job computed (notebook handed in -> ``{"grades": {grade id:
    [auto_score, needs_manual_grade]}, "comments": {grade id: auto_comment}}``), the
    autograded files (path -> (bytes, mode)) and what the grader flagged for a person."""

    student: str
    status: str
    seconds: float
    message: str = ""
    grades: dict | None = None
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def run_job(job: Job) -> Outcome:
    """Grade one submission (see the module notes); never raises for what the submission
    does (a crash, a hang, a corrupt notebook give a FAILED or TIMED_OUT outcome)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hw8-grade-", ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        scratch = tmp / "course"
        write_scratch(job, scratch)
        trusted = tmp / "trusted"
        write_files(trusted / "grader", job.submission)
        deadline = time.monotonic() + job.timeout
        grader = run_verdicts(verdict_request(job, tmp / "child"), trusted / "grader", trusted)
        try:
            returncode, files = run_confined(job, scratch, tmp / "nbgrader.log", deadline)
            decided = wait(grader, deadline)
        finally:
            kill_tree(grader.pid)
            grader.wait()
        verdicts = read_verdicts(trusted)
        log = log_tail(tmp / "nbgrader.log")
        outcome = Outcome(job.student, GRADED, 0.0)
        if returncode is None or decided is None:
            outcome.status = TIMED_OUT
            outcome.message = f"stopped after the time limit of {job.timeout:g} s"
        elif decided != 0 or set(verdicts) != set(verdict_notebooks(job)):
            outcome.status = FAILED
            grader_log = log_tail(trusted / "verdict.log").strip().splitlines()
            outcome.message = f"the grader failed: {' | '.join(grader_log[-2:])[:400]}"
        elif returncode != 0:
            outcome.status = FAILED
            outcome.message = error_summary(log) or f"nbgrader exited with {returncode}"
        outcome.grades = submission_grades(job, verdicts)
        outcome.flags = [
            f"{name}: {flag}" for name, found in verdicts.items() for flag in found.get("flags", [])
        ]
        if outcome.status == GRADED:
            try:
                if files is None:  # no sandbox: the folder is on this machine's disk
                    files = read_files(scratch / job.folders["autograded"])
                outcome.files = with_verdicts(files, job, verdicts)
            except ValueError as error:
                outcome.status, outcome.message = FAILED, str(error)
    outcome.seconds = time.perf_counter() - started
    return outcome


def verdict_request(job: Job, child_root: Path) -> dict:
    """The grader's request: the notebooks handed in, and how to start the sandboxed
    process that runs the student's code (in ``child_root``, a scratch of its own)."""
    folder = child_root / "submission"
    write_files(folder, job.submission)
    for name in ("home", "tmp"):
        (child_root / name).mkdir()
    env = environment(job, child_root)
    env["NBGRADER_EXECUTION"] = "autograde"
    memory = job.memory if job.memory is not None else memory_share(job.threads)
    command = [sandboxes.python_command(job.sandbox), "-m", "hw8.course.responder", str(folder)]
    name = f"hw8-child-{uuid.uuid4().hex[:12]}"
    wrapped = sandboxes.wrap(
        job.sandbox,
        command,
        child_root,
        env=env,
        memory=memory,
        threads=job.threads,
        name=name,
        disk=job.disk,
    )
    notebooks = {
        notebook: notebook_request(job.instructor[notebook], submitted)
        for notebook, submitted in verdict_notebooks(job).items()
    }
    child = {"command": wrapped, "cwd": str(child_root), "env": env}
    return {"notebooks": notebooks, "child": child, "timeout": job.cell_timeout}


def verdict_notebooks(job: Job) -> dict[str, dict]:
    """The notebooks the grader decides: those of the assignment handed in as notebooks."""
    found = {}
    for name in job.instructor:
        submitted = parse_notebook(job.submission.get(f"{name}.ipynb"))
        if submitted is not None:
            found[name] = submitted
    return found


def parse_notebook(raw: bytes | None) -> dict | None:
    """A submitted notebook as JSON data (None when missing or not a notebook)."""
    if raw is None:
        return None
    try:
        notebook = json.loads(raw)
    except ValueError:
        return None
    return (
        notebook if isinstance(notebook, dict) and isinstance(notebook.get("cells"), list) else None
    )


def submission_grades(job: Job, verdicts: dict) -> dict:
    """The student's grades, by notebook handed in: a test cell's points from its verdict,
    a written answer's by nbgrader's rule on the submitted cell (see :func:`answer_grade`)."""
    grades = {}
    for spec in job.spec.get("notebooks", []):
        submitted = parse_notebook(job.submission.get(f"{spec['name']}.ipynb"))
        if submitted is None:
            continue
        decided = verdicts.get(spec["name"], {}).get("verdicts", {})
        cells = {grade_id_of(c): c for c in submitted["cells"] if grade_id_of(c)}
        sources = {
            name: (kind, locked, checksum)
            for name, kind, locked, _, checksum in spec["source_cells"]
        }
        solutions = set(spec["solution_cells"])
        scores, comments = {}, {}
        for name, points, _kind in spec["grade_cells"]:
            if name not in solutions:
                passed = decided.get(name, [False])[0] is True
                scores[name] = [float(points) if passed else 0.0, False]
            elif name in cells:
                score = answer_grade(cells[name], name, points, sources[name])
                scores[name] = [score, score is None]
        answered = solutions | {name for name, _, _ in spec["task_cells"]}
        for name in sorted(answered & set(cells)):
            unchanged = checksum_of(cells[name], name, None, sources[name]) == sources[name][2]
            comments[name] = "No response." if unchanged and name in solutions else None
        grades[spec["name"]] = {"grades": scores, "comments": comments}
    return grades


def checksum_of(cell: dict, name: str, points, source: tuple) -> str:
    """nbgrader's checksum of a submitted cell, its type, lock and points restored from
    the course (as nbgrader's OverwriteCells does before grading)."""
    import nbformat
    from nbgrader.utils import compute_checksum

    kind, locked, _ = source
    node = nbformat.from_dict(
        {
            "cell_type": kind,
            "source": "".join(cell.get("source", ""))
            if isinstance(cell.get("source"), list)
            else str(cell.get("source", "")),
            "metadata": {"nbgrader": dict(cell.get("metadata", {}).get("nbgrader", {}))},
        }
    )
    node.metadata.nbgrader["locked"] = locked
    if points is not None:
        node.metadata.nbgrader["points"] = points
    try:
        return compute_checksum(node)
    except (KeyError, TypeError, ValueError):
        return ""


def answer_grade(cell: dict, name: str, points: float, source: tuple) -> float | None:
    """nbgrader's automatic grade of a manually graded answer: 0 when it is unchanged from
    the release (no response), else None (a person grades it)."""
    return 0.0 if checksum_of(cell, name, points, source) == source[2] else None


def with_verdicts(files: dict, job: Job, verdicts: dict) -> dict:
    """The autograded files, each notebook's test cells holding the instructor's source
    and the grader's verdict as their output."""
    for name, instructor in job.instructor.items():
        path = f"{name}.ipynb"
        if path not in files:
            continue
        content, mode = files[path]
        notebook = parse_notebook(content)
        if notebook is None:
            continue
        tests = {grade_id_of(c): c for c in instructor.get("cells", []) if role_of(c) == TEST}
        decided = verdicts.get(name, {}).get("verdicts", {})
        for cell in notebook["cells"]:
            original = tests.get(grade_id_of(cell))
            if original is not None and cell.get("cell_type") == "code":
                cell["source"] = original["source"]
                passed, message = decided.get(grade_id_of(cell), [False, "not graded"])
                cell["outputs"] = verdict_outputs(passed, message)
        files[path] = (json.dumps(notebook, indent=1).encode(), mode)
    return files


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


def run_confined(job: Job, scratch: Path, log_path: Path, deadline: float):
    """Run nbgrader autograde in the sandbox: (its exit status, or None after the time
    limit; the autograded files, or None when they are on this machine's disk).

    In bwrap or docker the scratch course is a private in-memory file system and the
    autograded folder comes back as a tar on standard output (``hw8.course.confine``).
    The whole process tree is killed when it ends, runs out of time or is interrupted.
    """
    db = scratch / "gradebook.db"
    command = [sandboxes.python_command(job.sandbox), "-m", NBGRADER, "autograde"]
    command += [job.assignment, f"--student={job.student}", f"--CourseDirectory.root={scratch}"]
    command += [f"--CourseDirectory.db_url=sqlite:///{db}", *job.options]
    env = environment(job, scratch)
    name = f"hw8-grade-{uuid.uuid4().hex[:12]}"
    memory = job.memory if job.memory is not None else memory_share(job.threads)
    confined = job.sandbox.kind != "none"
    wrapped = sandboxes.wrap(
        job.sandbox,
        command,
        scratch,
        env=env,
        memory=memory,
        threads=job.threads,
        name=name,
        disk=job.disk if confined else 0,
        out=job.folders["autograded"] if confined else None,
    )
    result = bytearray()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            wrapped,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if confined else log,
            stderr=log if confined else subprocess.STDOUT,
            start_new_session=True,
        )
        reader = None
        if confined:
            reader = threading.Thread(target=_collect, args=(process.stdout, result), daemon=True)
            reader.start()
        try:
            returncode = wait(process, deadline)
        finally:
            kill_tree(process.pid)
            process.wait()
            if job.sandbox.kind == "docker":
                sandboxes.stop_container(name)
            if reader is not None:
                reader.join(timeout=30)
    if not confined:
        return returncode, None
    try:
        return returncode, read_tar(bytes(result), MAX_RESULT_BYTES)
    except (ValueError, OSError, tarfile.TarError):
        return returncode, {}


def _collect(stream, into: bytearray) -> None:
    """Read a pipe to its end, keeping at most ``MAX_RESULT_BYTES`` and one byte more."""
    while chunk := stream.read(1 << 20):
        if len(into) <= MAX_RESULT_BYTES:
            into.extend(chunk)


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
