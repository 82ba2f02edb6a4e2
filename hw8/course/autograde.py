"""``hw8 course grade ASSIGNMENT``: autograde a whole class in parallel, each submission
in a sandbox, into one gradebook and one grades.csv.

``nbgrader autograde`` grades one submission after another, in the instructor's course
folder, with the instructor's rights. Here each submission is one job
(``hw8.course.job``): ``nbgrader autograde ASSIGNMENT --student ID`` in a private scratch
course (the config, the assignment's files, that student's files, a gradebook holding the
assignment only), inside a sandbox (``hw8.course.sandbox``), with its own time limit and
the kernel held to its share of CPU threads and memory. Jobs run ``--workers`` at a time
on this machine, each in its own process tree, or on a Dask cluster (``--scheduler
tcp://HOST:8786``). Only
this process, outside any sandbox, writes to the course: as each job ends it records the
student's grades in the course gradebook through nbgrader's API
(``hw8.course.gradebook``) and puts the autograded notebooks in
``autograded/STUDENT/ASSIGNMENT/``; at the end ``nbgrader export`` writes grades.csv.

Every submission is also scanned for suspicious code (``hw8.course.scan``); flags go into
the summary and the report (``grade_reports/ASSIGNMENT/report.json``), never into points.
A re-run grades only new or changed submissions (``--force``: all). A lock file keeps a
second run off the same course.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from hw8.course import gradebook as gradebooks
from hw8.course import sandbox as sandboxes
from hw8.course.cells import STUB
from hw8.course.job import FAILED, GRADED, NBGRADER, STOP, TIMED_OUT, Job, Outcome, run_job
from hw8.course.nbgrader_command import skip_iri_grammar
from hw8.course.scan import course_code, shadowing_files, suspicious_code
from hw8.errors import GradeError
from hw8.files import write_json
from hw8.runmode import progress_bar
from hw8.settings import CELL_TIMEOUT_S, DISK_LIMIT_GIB, SUBMISSION_TIMEOUT_S

REPORTS = "grade_reports"  # under the course root: the lock, and per assignment state/report
DEFAULT_EXCHANGE = "/srv/nbgrader/exchange"  # nbgrader's, where every student's work passes
CONNECT_TIMEOUT_S = 30
SLOWEST = 5
WHEEL = "hw8-*.whl"
SANDBOXES = ("bwrap", "docker", "none")
NO_SANDBOX_WARNING = (
    "WARNING: grading WITHOUT a sandbox (--no-sandbox). Every submission runs with your "
    "rights: it can read the other submissions and rewrite the gradebook."
)


@dataclass(frozen=True)
class Course:
    """An nbgrader course: its folder, configuration (as loaded and as text) and layout."""

    folder: Path
    config: object
    config_text: str
    coursedir: object

    @property
    def root(self) -> Path:
        return Path(self.coursedir.root)

    def folder_of(self, step: str, student: str, assignment: str) -> Path:
        """``root/STEP/STUDENT/ASSIGNMENT`` as nbgrader lays it out (``step`` a directory)."""
        return Path(self.coursedir.format_path(step, student, assignment))


@dataclass
class Plan:
    """What a run grades: the assignment, its submissions (student -> folder), those
    without a notebook, the flags, the state of earlier runs and each submission's
    fingerprint, and the students to grade now."""

    assignment: str
    spec: dict
    submissions: dict[str, Path]
    without_notebooks: list[str]
    flags: dict[str, list[str]]
    state_path: Path
    state: dict
    fingerprints: dict[str, str]
    todo: list[str]


@dataclass(frozen=True)
class GradeOptions:
    """How a run grades (``hw8 course grade``'s options; the defaults are its defaults).

    ``workers``: local jobs at a time (None: one per core); ``scheduler``: a Dask address
    to grade on instead; ``threads``: CPU threads per kernel (None: cores / workers);
    ``timeout``: seconds per submission; ``cell_timeout``: seconds per cell (None: the
    course's); ``memory_limit`` and ``disk_limit``: GiB per process (memory None: a share
    of the machine's); ``sandbox``: "bwrap", "docker" (with ``image``) or "none" (grade
    unconfined, not advised); ``force``: regrade unchanged submissions too.
    """

    workers: int | None = None
    scheduler: str | None = None
    threads: int | None = None
    timeout: float = SUBMISSION_TIMEOUT_S
    cell_timeout: int | None = None
    memory_limit: float | None = None
    disk_limit: float = DISK_LIMIT_GIB
    sandbox: str = "bwrap"
    image: str = ""
    force: bool = False

    def __post_init__(self) -> None:
        if self.sandbox not in SANDBOXES:
            raise GradeError(
                f"unknown sandbox {self.sandbox!r}; choose one of {', '.join(SANDBOXES)}."
            )


def grade(course_dir: Path, assignment: str, options: GradeOptions = GradeOptions()) -> int:
    """Autograde every submission of ``assignment`` in the nbgrader course at
    ``course_dir``; 0 if every submission was graded, 1 if any failed or timed out."""
    skip_iri_grammar()
    put_this_python_on_path()
    course = load_course(Path(course_dir))
    sandbox = choose_sandbox(options, course)
    reports = course.root / REPORTS
    reports.mkdir(exist_ok=True)
    with course_lock(reports / ".lock"):
        plan = make_plan(course, assignment, options)
        started = time.perf_counter()
        outcomes, where = grade_all(course, plan, sandbox, options)
        report = make_report(plan, outcomes, where, time.perf_counter() - started)
        path = reports / plan.assignment / "report.json"
        write_json(report, path)
        print(summary(report, path))
        if outcomes:
            export_grades(course)
    return 1 if report[FAILED] or report[TIMED_OUT] else 0


def make_plan(course: Course, assignment: str, options: GradeOptions) -> Plan:
    """Check the assignment and its submissions, scan them, and pick those to grade."""
    spec = course_assignment(course, assignment)
    submissions, without_notebooks = find_submissions(course, assignment)
    state_path = course.root / REPORTS / assignment / "state.json"
    state_path.parent.mkdir(exist_ok=True)
    state = read_state(state_path)
    shared = shared_fingerprint(course, assignment, spec, options)
    fingerprints = {s: fingerprint(shared, folder) for s, folder in submissions.items()}
    todo = [
        student
        for student in sorted(submissions)
        if options.force or changed(course, assignment, student, fingerprints[student], state)
    ]
    known = course_code(course.folder_of(course.coursedir.source_directory, ".", assignment))
    flags = {student: scan_submission(folder, known) for student, folder in submissions.items()}
    return Plan(
        assignment,
        spec,
        submissions,
        without_notebooks,
        flags,
        state_path,
        state,
        fingerprints,
        todo,
    )


def grade_all(
    course: Course, plan: Plan, sandbox, options: GradeOptions
) -> tuple[dict[str, Outcome], str]:
    """Grade the plan's students on the pool, recording each as it ends; the outcomes and
    where they ran."""
    outcomes = {}
    with open_pool(options, sandbox) as (pool, threads, where):
        base = base_job(course, plan.assignment, plan.spec, sandbox, threads, options)
        futures = {}
        for student in plan.todo:
            job = student_job(base, course, student, plan.submissions[student])
            futures[pool.submit(run_job, job)] = student
        progress = progress_bar(as_completed(futures), total=len(futures), unit="submission")
        for future in progress:
            outcome = save(course, plan.assignment, plan.spec, finish(future, futures[future]))
            outcomes[outcome.student] = outcome
            plan.state[outcome.student] = {
                "fingerprint": plan.fingerprints[outcome.student],
                "status": outcome.status,
            }
            write_json(plan.state, plan.state_path)
            progress.set_postfix_str(f"{outcome.student}: {outcome.status}")
    return outcomes, where


# ----------------------------------------------------------------------------- the course


def put_this_python_on_path() -> None:
    """nbgrader runs ``alembic`` (and this module runs ``nbgrader``) from PATH."""
    here = str(Path(sys.executable).parent)
    if here not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PATH")]))


def load_course(folder: Path) -> Course:
    """The course whose ``nbgrader_config.py`` is in ``folder``, loaded as nbgrader does."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    folder = Path(folder).resolve()
    path = folder / "nbgrader_config.py"
    if not path.is_file():
        raise GradeError(
            f"{folder}: no nbgrader_config.py here. Run hw8 course grade in the course "
            "folder, or name it with --course DIR."
        )
    config = PyFileConfigLoader(path.name, path=str(folder)).load_config()
    if "root" not in config.CourseDirectory:
        config.CourseDirectory.root = str(folder)
    coursedir = CourseDirectory(config=config)
    return Course(folder, config, path.read_text(), coursedir)


def course_assignment(course: Course, assignment: str) -> dict:
    """The assignment's cells and points from the course gradebook (GradeError if none)."""
    db_url = course.coursedir.db_url
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///") :]).is_file():
        raise GradeError(
            f"no gradebook at {db_url[len('sqlite:///') :]}: run `nbgrader generate_assignment "
            f"{assignment}` in {course.folder} first."
        )
    return gradebooks.assignment_spec(db_url, course.coursedir.course_id, assignment)


def find_submissions(course: Course, assignment: str) -> tuple[dict[str, Path], list[str]]:
    """Students with notebooks in ``submitted/STUDENT/ASSIGNMENT/`` (student -> folder), and
    those whose folder holds no notebook (nbgrader skips them too)."""
    step = course.coursedir.submitted_directory
    pattern = course.folder_of(step, "*", assignment)
    student_of = re.compile(
        course.coursedir.format_path(step, "(?P<student>[^/]+)", assignment, escape=True)
    )
    excluded = set(filter(None, course.coursedir.student_id_exclude.split(",")))
    found, empty = {}, []
    for folder in sorted(Path(p) for p in glob.glob(str(pattern)) if Path(p).is_dir()):
        match = student_of.fullmatch(str(folder))
        if not match or match.group("student") in excluded:
            continue
        if any(folder.glob("*.ipynb")):
            found[match.group("student")] = folder
        else:
            empty.append(match.group("student"))
    if not found:
        detail = f" ({', '.join(empty)} handed in no notebook)" if empty else ""
        raise GradeError(
            f"no submissions of {assignment!r} to grade: {pattern} holds no notebook{detail}. "
            f"Collect them first (nbgrader collect or zip_collect, or by hand into "
            f"{course.folder_of(step, 'STUDENT', assignment)})."
        )
    return found, empty


def scan_submission(folder: Path, known: frozenset[str] = frozenset()) -> list[str]:
    """The suspicious-code findings of every notebook handed in, prefixed by its name
    (the course's own locked code, ``known``, is not scanned), and the modules handed in
    that hide installed ones."""
    flags = shadowing_files(folder)
    for path in sorted(folder.glob("*.ipynb")):
        try:
            flags += [f"{path.name}: {finding}" for finding in suspicious_code(path, known)]
        except (OSError, ValueError):
            continue  # an unreadable notebook fails its grading and is reported there
    return flags


def submission_files(course: Course, folder: Path) -> dict[str, bytes]:
    """What nbgrader takes from a folder: its notebooks and the files its ignore list lets
    through (regular files only: a symbolic link is never followed), hw8's wheel left out."""
    from nbgrader.utils import find_all_files

    paths = {*folder.glob("*.ipynb")}
    # hw8's wheel (handed out beside the notebooks) is never graded: it stays out of the
    # autograded and feedback folders
    skip = [*course.coursedir.ignore, "*.ipynb", WHEEL]
    paths |= {Path(p) for p in find_all_files(str(folder), skip)}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(paths)
        if path.is_file() and not path.is_symlink()
    }


# ----------------------------------------------------------------------------- the lock


@contextmanager
def course_lock(path: Path):
    """Hold the course's grading lock; GradeError if another run holds it."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise GradeError(
                f"another hw8 course grade is grading this course ({owner}); wait for it to "
                f"finish. (Lock: {path}; it is released when that process ends.)"
            ) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {now()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- what changed


def read_state(path: Path) -> dict:
    """What the last runs graded: student -> {"fingerprint", "status"}."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise GradeError(
            f"{path}: not a state file ({error}). Delete it to regrade everything."
        ) from error


def shared_fingerprint(course: Course, assignment: str, spec: dict, options: GradeOptions) -> str:
    """A digest of what every submission is graded against: cells, config, files, options."""
    digest = hashlib.sha256(json.dumps(spec, default=str, sort_keys=True).encode())
    digest.update(course.config_text.encode())
    digest.update(repr(nbgrader_options(options)).encode())
    source = course.folder_of(course.coursedir.source_directory, ".", assignment)
    for name, content in source_files(course, source).items():
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()


def fingerprint(shared: str, folder: Path) -> str:
    """A digest of one submission's files and what it is graded against."""
    digest = hashlib.sha256(shared.encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def changed(course: Course, assignment: str, student: str, print_: str, state: dict) -> bool:
    """Whether a submission needs grading: new, handed in again, graded against another
    version of the assignment, or graded but its autograded folder is gone. (One that
    failed and did not change is not tried again: --force does.)"""
    last = state.get(student, {})
    if last.get("fingerprint") != print_:
        return True
    autograded = course.folder_of(course.coursedir.autograded_directory, student, assignment)
    return last.get("status") == GRADED and not autograded.is_dir()


# ----------------------------------------------------------------------------- the jobs


def choose_sandbox(options: GradeOptions, course: Course) -> sandboxes.Sandbox:
    """The sandbox the jobs run in, checked here unless the jobs run on a Dask cluster."""
    if options.sandbox == "none":
        print(NO_SANDBOX_WARNING, file=sys.stderr)
        return sandboxes.Sandbox("none")
    hidden = {course.folder, course.root}
    db_url = course.coursedir.db_url
    if db_url.startswith("sqlite:///"):
        hidden.add(Path(db_url[len("sqlite:///") :]).parent)
    hidden.add(Path(course.config.get("Exchange", {}).get("root", DEFAULT_EXCHANGE)))
    sandbox = sandboxes.Sandbox(options.sandbox, tuple(sorted(map(str, hidden))), options.image)
    if not options.scheduler:
        sandboxes.check(sandbox)
    return sandbox


def nbgrader_options(options: GradeOptions) -> tuple[str, ...]:
    """Options every ``nbgrader autograde`` of the run gets: in the sandbox the kernel
    only runs the notebook; the verdicts are decided by the job, outside."""
    cell_timeout = options.cell_timeout
    timeout = (f"--Execute.timeout={cell_timeout}",) if cell_timeout else ()
    return ("--ExecuteWithVerdicts.decide=False", *timeout)


def source_files(course: Course, source: Path) -> dict[str, bytes]:
    """The assignment's non-notebook files, which autograde copies over each submission."""
    from nbgrader.utils import find_all_files

    files = find_all_files(str(source), [*course.coursedir.ignore, "*.ipynb", WHEEL])
    return {Path(p).relative_to(source).as_posix(): Path(p).read_bytes() for p in sorted(files)}


def base_job(
    course: Course, assignment: str, spec: dict, sandbox, threads: int, options: GradeOptions
) -> Job:
    """What every job of the run shares (the student's part is filled in per job)."""
    source = course.folder_of(course.coursedir.source_directory, ".", assignment)
    memory = None if options.memory_limit is None else int(options.memory_limit * 2**30)
    return Job(
        assignment=assignment,
        student="",
        config=course.config_text,
        folders={},
        source_files=source_files(course, source),
        submission={},
        gradebook=gradebooks.template(spec, course.coursedir.course_id, assignment, STUB),
        sandbox=sandbox,
        timeout=options.timeout,
        threads=threads,
        memory=memory,
        options=nbgrader_options(options),
        env={key: value for key, value in os.environ.items() if key.startswith("HW8_")},
        spec=spec,
        instructor=instructor_notebooks(source),
        disk=int(options.disk_limit * 2**30),
        cell_timeout=float(options.cell_timeout or course_cell_timeout(course)),
    )


def course_cell_timeout(course: Course) -> float:
    """The course's ``Execute.timeout`` (the preset cell timeout when it sets none)."""
    value = course.config.get("Execute", {}).get("timeout")
    return float(value) if isinstance(value, int | float) and value > 0 else float(CELL_TIMEOUT_S)


def instructor_notebooks(source: Path) -> dict[str, dict]:
    """The assignment's source notebooks (solutions and hidden tests), name -> JSON: read
    by the grader outside the sandbox, never written where a submission runs."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(source.glob("*.ipynb"))}


def student_job(base: Job, course: Course, student: str, folder: Path) -> Job:
    """The job that grades one student's submission."""
    steps = {
        "source": (course.coursedir.source_directory, "."),
        "submitted": (course.coursedir.submitted_directory, student),
        "autograded": (course.coursedir.autograded_directory, student),
    }
    folders = {}
    for name, (step, who) in steps.items():
        relative = os.path.relpath(course.folder_of(step, who, base.assignment), course.root)
        if relative.startswith(".."):
            raise GradeError(f"{step}: nbgrader's {name} folder must lie inside the course root.")
        folders[name] = relative
    return replace(
        base, student=student, folders=folders, submission=submission_files(course, folder)
    )


@contextmanager
def open_pool(options: GradeOptions, sandbox: sandboxes.Sandbox):
    """(executor, CPU threads per kernel, description) for the run: local workers, or a
    Dask cluster's.

    Locally each of ``--workers`` slots runs one job at a time, and a job's work is
    ``nbgrader autograde`` in a process of its own (in the sandbox), so the slots are
    threads that start those processes and wait: no extra interpreter per slot, and the
    same job function as on Dask. Interrupted (Ctrl-C), the running jobs are stopped.
    """
    if options.scheduler:
        with dask_pool(options.scheduler, sandbox) as pool:
            yield pool, options.threads or 1, f"Dask scheduler {options.scheduler}"
        return
    cores = len(os.sched_getaffinity(0))
    workers = options.workers or cores
    threads = options.threads or max(1, cores // workers)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="hw8-grade")
    try:
        yield pool, threads, f"{workers} local worker(s), {threads} thread(s) each"
    except BaseException:
        STOP.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        STOP.clear()


@contextmanager
def dask_pool(address: str, sandbox: sandboxes.Sandbox):
    """A concurrent.futures executor on the Dask cluster at ``address``, its workers checked
    for the sandbox; GradeError if it cannot be reached or has no workers."""
    from distributed import Client

    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise GradeError(
            f"cannot reach the Dask scheduler at {address} ({error}). Start it with "
            "`dask scheduler` (and workers with `dask worker ADDRESS`), or grade on this "
            "machine without --scheduler. Nothing was graded."
        ) from error
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError as error:
            raise GradeError(
                f"the Dask scheduler at {address} has no workers: start some with "
                f"`dask worker {address} --nthreads N`."
            ) from error
        client.run(sandboxes.check, sandbox)
        executor = client.get_executor(pure=False)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)
    finally:
        client.close()


def finish(future, student: str) -> Outcome:
    """The outcome of a finished job; an error of the job machinery fails that student."""
    try:
        return future.result()
    except Exception as error:  # a worker died, a job could not be sent: that student only
        return Outcome(student, FAILED, 0.0, f"the grading job failed: {error!r}")


# ----------------------------------------------------------------------------- recording


def save(course: Course, assignment: str, spec: dict, outcome: Outcome) -> Outcome:
    """Record a job's outcome in the course: grades in the gradebook, autograded files.

    Like ``nbgrader autograde``, a failed submission keeps the grades of the notebooks
    graded before the failure and loses its autograded folder.
    """
    submitted = course.folder_of(course.coursedir.submitted_directory, outcome.student, assignment)
    if outcome.grades is not None:
        try:
            gradebooks.record(
                course.coursedir.db_url,
                course.coursedir.course_id,
                assignment,
                outcome.student,
                outcome.grades,
                spec=spec,
                submitted=submitted,
                timestamp=course.coursedir.get_existing_timestamp(str(submitted)),
                config=course.config,
            )
        except ValueError as error:
            outcome = replace(outcome, status=FAILED, message=str(error), files={})
    autograded = course.folder_of(
        course.coursedir.autograded_directory, outcome.student, assignment
    )
    install_folder(autograded, outcome.files if outcome.status == GRADED else None)
    return outcome


def install_folder(folder: Path, files: dict[str, tuple[bytes, int]] | None) -> None:
    """Replace ``folder`` by ``files`` (path -> (bytes, mode)); None removes it."""
    if folder.exists():
        shutil.rmtree(folder)
    if files is None:
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for name, (content, mode) in files.items():
            path = building / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(mode)
        building.chmod(0o755)
        building.rename(folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def export_grades(course: Course) -> None:
    """``nbgrader export``: grades.csv from the course gradebook."""
    result = subprocess.run(
        [sys.executable, "-m", NBGRADER, "export"],
        cwd=course.folder,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise GradeError(
            "the grades are in the gradebook, but `nbgrader export` failed: "
            f"{result.stderr.strip()[-800:]}"
        )


# ----------------------------------------------------------------------------- the report


def make_report(plan: Plan, outcomes: dict, where: str, seconds: float) -> dict:
    """Everything the run found, by student, and the counts the summary shows."""
    students = {}
    for student in sorted(plan.submissions):
        outcome = outcomes.get(student)
        entry = {"status": outcome.status if outcome else "unchanged"}
        entry["flags"] = plan.flags[student] + (outcome.flags if outcome else [])
        if outcome:
            entry |= {"seconds": round(outcome.seconds, 1), "message": outcome.message}
        else:
            entry["last status"] = plan.state[student]["status"]
        students[student] = entry
    statuses = [entry["status"] for entry in students.values()]
    return {
        "assignment": plan.assignment,
        "finished": now(),
        "ran on": where,
        "seconds": round(seconds, 1),
        **{status: statuses.count(status) for status in (GRADED, FAILED, TIMED_OUT)},
        "unchanged": statuses.count("unchanged"),
        "flagged": sum(bool(entry["flags"]) for entry in students.values()),
        "no notebooks": plan.without_notebooks,
        "students": students,
    }


def summary(report: dict, path: Path) -> str:
    """The lines printed at the end of a run."""
    students = report["students"]
    lines = [
        f"{report['assignment']}: {report[GRADED]} graded, {report[FAILED]} failed, "
        f"{report[TIMED_OUT]} timed out, {report['flagged']} flagged, {report['unchanged']} "
        f"unchanged (--force regrades them) in {report['seconds']} s on {report['ran on']}."
    ]
    for student, entry in students.items():
        if entry["status"] in (FAILED, TIMED_OUT):
            lines.append(f"  {entry['status']}: {student}: {entry['message']}")
    stale = [s for s, entry in students.items() if entry.get("last status", GRADED) != GRADED]
    if stale:
        lines.append(f"  unchanged since they failed (--force retries): {', '.join(stale)}")
    if report["no notebooks"]:
        lines.append(f"  no notebook handed in (not graded): {', '.join(report['no notebooks'])}")
    for student, entry in students.items():
        for flag in entry["flags"]:
            lines.append(f"  flagged: {student}: {flag}")
    timed = sorted((e["seconds"], s) for s, e in students.items() if "seconds" in e)
    slowest = ", ".join(f"{s} {seconds:.0f} s" for seconds, s in reversed(timed[-SLOWEST:]))
    if slowest:
        lines.append(f"  slowest: {slowest}")
    lines.append(f"  report: {path}")
    return "\n".join(lines)


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
