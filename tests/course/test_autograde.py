"""``hw8 course grade``: parallel, sandboxed autograding gives exactly nbgrader's grades.

A tiny nbgrader course is built in a temporary folder (two notebooks, three autograded
exercises and one written answer, cells that run in milliseconds), with one submission of
each kind: correct, blank (the release), a planted mistake, an endless loop (cut by the
cell timeout), a memory bomb, a corrupt notebook, a kernel crash, and a folder without
notebooks. The same submissions are graded three ways, each in its own copy of the
course: sequentially by ``nbgrader autograde`` (the reference), by ``hw8 course grade
--workers 2``, and by ``hw8 course grade --scheduler`` on a real Dask scheduler with two
worker processes; the gradebooks and grades.csv must agree exactly. Then an attacker
hands in a notebook that reads the other submissions, rewrites the gradebook, writes
outside its folder and opens a network connection: unsandboxed (the reference) it zeroes
everyone's points; under ``hw8 course grade`` it changes no one's grade and is flagged.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hw8.cli import main
from hw8.course import autograde, sandbox
from hw8.errors import GradeError

pytestmark = pytest.mark.slow

ASSIGNMENT = "ps1"
CELL_TIMEOUT_S = 4
CONFIG = f"""import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades,
)

from hw8.course.preprocessors import ExecuteWithVerdicts

c = get_config()  # noqa: F821
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "tiny"
c.Execute.timeout = {CELL_TIMEOUT_S}
# as the course's own config: the tests run in the grader, never in the kernel
c.Autograde.autograde_preprocessors = [
    ExecuteWithVerdicts, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]
"""
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def cell_meta(grade_id, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3}
    meta |= {"solution": solution, "task": False}
    return {"nbgrader": meta | ({"points": points} if points else {})}


def solution(grade_id: str, body: str):
    return new_code_cell(
        f"### BEGIN SOLUTION\n{body}\n### END SOLUTION", metadata=cell_meta(grade_id, solution=True)
    )


def graded_test_cell(grade_id: str, visible: str, hidden: str, points: int):
    source = f"{visible}\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS"
    return new_code_cell(
        source, metadata=cell_meta(grade_id, grade=True, locked=True, points=points)
    )


def source_notebooks(square="return x * x", add="return a + b", cube="return x ** 3") -> dict:
    """The instructor's notebooks, with the given solution bodies."""
    p1 = new_notebook(metadata=KERNEL)
    p1.cells = [
        new_code_cell("import math", metadata=cell_meta("setup", locked=True)),
        solution("square", f"def square(x):\n    {square}"),
        graded_test_cell("test-square", "assert square(3) == 9", "assert square(-2) == 4", 2),
        new_markdown_cell(
            "Squares are positive.", metadata=cell_meta("why", grade=True, solution=True, points=1)
        ),
        solution("add", f"def add(a, b):\n    {add}"),
        graded_test_cell("test-add", "assert add(1, 2) == 3", "assert add(-1, 1) == 0", 1),
    ]
    p2 = new_notebook(metadata=KERNEL)
    p2.cells = [
        solution("cube", f"def cube(x):\n    {cube}"),
        graded_test_cell("test-cube", "assert cube(2) == 8", "assert cube(-1) == -1", 1),
    ]
    return {"p1": p1, "p2": p2}


HANG = "import time\n    while True:\n        time.sleep(0.05)"
MEMORY_BOMB = "bytearray(2**46)  # 64 TiB: fails on any machine\n    return x * x"
CRASH = "return x ** 3\nimport os\nos._exit(1)  # the kernel dies at this cell"


def submit(course: Path, student: str, notebooks: dict) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    for name, nb in notebooks.items():
        if isinstance(nb, str):
            (folder / f"{name}.ipynb").write_text(nb)
        else:
            nbformat.write(nb, folder / f"{name}.ipynb")


def environment() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(course: Path, *command: str, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        list(command), cwd=course, env=environment(), capture_output=True, text=True, timeout=600
    )
    if check:
        assert result.returncode == 0, (
            f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return result


def nbgrader(course: Path, *args: str, check=True) -> subprocess.CompletedProcess:
    return run(course, sys.executable, "-m", "nbgrader", *args, check=check)


def hw8_grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run(
        course, sys.executable, "-m", "hw8.cli", "course", "grade", ASSIGNMENT, *args, check=False
    )


def gradebook_state(course: Path) -> dict:
    """student -> notebook -> grade id -> (auto_score, needs_manual_grade), + late penalty."""
    from nbgrader.api import Gradebook

    os.environ["PATH"] = environment()["PATH"]
    found = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "tiny") as gradebook:
        for submission in gradebook.find_assignment(ASSIGNMENT).submissions:
            found[submission.student.id] = {
                nb.name: {
                    "grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                    "comments": {c.name: c.auto_comment for c in nb.comments},
                    "late": nb.late_submission_penalty,
                }
                for nb in submission.notebooks
            }
    return found


def grades_csv(course: Path) -> dict:
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def autograded_files(course: Path) -> dict:
    folder = course / "autograded"
    return {
        student.name: sorted(p.name for p in (student / ASSIGNMENT).iterdir())
        for student in sorted(folder.iterdir())
        if (student / ASSIGNMENT).is_dir()
    }


def report(course: Path) -> dict:
    return json.loads((course / "grade_reports" / ASSIGNMENT / "report.json").read_text())


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bwrap():
    """Skip where bubblewrap cannot run (CI installs it: .ci/run)."""
    try:
        sandbox.check(sandbox.Sandbox("bwrap"))
    except GradeError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The tiny course after generate_assignment, with every kind of submission."""
    course = tmp_path_factory.mktemp("template")
    (course / "nbgrader_config.py").write_text(CONFIG)
    for name, nb in source_notebooks().items():
        (course / "source" / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, course / "source" / ASSIGNMENT / f"{name}.ipynb")
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    release = course / "release" / ASSIGNMENT
    submit(course, "correct", source_notebooks())
    submit(course, "blank", {n: nbformat.read(release / f"{n}.ipynb", 4) for n in ("p1", "p2")})
    submit(course, "planted", source_notebooks(square="return 2 * x"))
    submit(course, "hanging", source_notebooks(add=HANG))
    submit(course, "memory", source_notebooks(square=MEMORY_BOMB))
    corrupt = source_notebooks()
    corrupt["p2"] = '{"cells": [ this is not json'
    submit(course, "corrupt", corrupt)
    submit(course, "crashing", source_notebooks(cube=CRASH))
    (course / "submitted" / "nobook" / ASSIGNMENT).mkdir(parents=True)
    (course / "submitted" / "nobook" / ASSIGNMENT / "notes.txt").write_text("forgot")
    return course


def copy_course(template: Path, tmp_path_factory, name: str) -> Path:
    course = tmp_path_factory.mktemp(name) / "course"
    shutil.copytree(template, course)
    return course


@pytest.fixture(scope="module")
def sequential(template, tmp_path_factory) -> Path:
    """The reference: nbgrader autograde, one submission after another, then export."""
    course = copy_course(template, tmp_path_factory, "sequential")
    nbgrader(course, "autograde", ASSIGNMENT, check=False)  # exits 1: a corrupt notebook
    nbgrader(course, "export")
    return course


@pytest.fixture(scope="module")
def reference(sequential) -> dict:
    """Gradebook, grades.csv and autograded files of the sequential run."""
    return {
        "gradebook": gradebook_state(sequential),
        "csv": grades_csv(sequential),
        "files": autograded_files(sequential),
    }


@pytest.fixture(scope="module")
def parallel(bwrap, template, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    course = copy_course(template, tmp_path_factory, "parallel")
    return course, hw8_grade(course, "--workers", "2")


# ----------------------------------------------------------------------------- equality


def test_reference_grades_make_sense(reference):
    """The sequential run grades as the submissions deserve (so the comparison bites)."""
    csv_rows = reference["csv"]
    points = {student: float(row["raw_score"]) for student, row in csv_rows.items()}
    assert points == {
        "correct": 4,
        "blank": 0,
        "planted": 2,
        "hanging": 3,
        "memory": 2,
        "corrupt": 3,
        "crashing": 3,
    }
    assert "nobook" not in reference["gradebook"]


def test_parallel_grades_equal_sequential(parallel, reference):
    course, result = parallel
    assert result.returncode == 1, result.stderr  # a corrupt notebook failed, and said so
    assert gradebook_state(course) == reference["gradebook"]
    assert grades_csv(course) == reference["csv"]
    assert autograded_files(course) == reference["files"]


def test_summary_reports_failures_flags_and_skips(parallel):
    course, result = parallel
    found = report(course)
    statuses = {student: entry["status"] for student, entry in found["students"].items()}
    assert statuses.pop("corrupt") == "failed"
    assert set(statuses.values()) == {"graded"}  # a dead kernel only ends the outputs
    assert found["no notebooks"] == ["nobook"]
    assert found["students"]["corrupt"]["message"].startswith("p2.ipynb: ")
    assert "NotJSONError" in found["students"]["corrupt"]["message"]
    flagged = {s for s, entry in found["students"].items() if entry["flags"]}
    assert flagged == {"crashing"}, found
    assert "calls os._exit()" in " ".join(found["students"]["crashing"]["flags"])
    out = result.stdout
    assert "6 graded, 1 failed, 0 timed out, 1 flagged" in out, out
    assert "failed: corrupt:" in out and "slowest:" in out and "nobook" in out


# ----------------------------------------------------------------------------- the attack

ATTACK = """return a + b  # the attack runs at the top of the cell, in every process
import glob, os, socket, sqlite3
found = []
others = glob.glob("../../../submitted/*/*/*.ipynb")
others += glob.glob("{course}/submitted/*/*/*.ipynb")
found.append(f"others={{len([p for p in others if '/attacker/' not in p])}}")
for db in ("../../../gradebook.db", "{course}/gradebook.db"):
    try:
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE grade SET auto_score = 0")
        found.append(f"zeroed {{db}}")
    except Exception as error:
        found.append(f"gradebook {{db}}: {{type(error).__name__}}")
for path in ("{course}/pwned.txt", "../../../../pwned.txt"):
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        found.append(f"wrote {{path}}")
    except OSError as error:
        found.append(f"write {{path}}: {{type(error).__name__}}")
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    found.append("network reached")
except OSError as error:
    found.append(f"network: {{type(error).__name__}}")
print("ATTACK", found)"""


class Listener:
    """A TCP server on localhost that counts connections."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


def submit_attacker(course: Path, port: int) -> None:
    attack = ATTACK.format(course=course, port=port)
    submit(course, "attacker", source_notebooks(add=attack))


def attack_output(course: Path) -> str:
    nb = nbformat.read(course / "autograded" / "attacker" / ASSIGNMENT / "p1.ipynb", 4)
    texts = [o.get("text", "") for cell in nb.cells for o in cell.get("outputs", [])]
    return next(text for text in texts if text.startswith("ATTACK"))


@pytest.fixture(scope="module")
def attacked(parallel, sequential, reference):
    """The attacker hands in late, after everyone else is graded, in both courses."""
    course, _ = parallel
    listener = Listener()
    submit_attacker(sequential, listener.port)
    nbgrader(sequential, "autograde", ASSIGNMENT, "--student=attacker")
    unsandboxed = listener.connections
    submit_attacker(course, listener.port)
    result = hw8_grade(course, "--workers", "2")
    return course, result, unsandboxed, listener.connections - unsandboxed


def test_the_attack_works_without_a_sandbox(attacked, sequential, reference):
    _, _, unsandboxed_connections, _ = attacked
    output = attack_output(sequential)
    assert "others=0" not in output and f"zeroed {sequential}/gradebook.db" in output, output
    assert unsandboxed_connections >= 1
    zeroed = gradebook_state(sequential)["correct"]["p1"]["grades"]["test-square"]
    assert zeroed == (0.0, False), "the unsandboxed attack should have zeroed others' points"
    (sequential / "pwned.txt").unlink()


def test_sandboxed_attack_changes_no_grade_and_is_flagged(attacked, reference):
    course, result, _, connections = attacked
    assert result.returncode == 0, result.stdout + result.stderr
    state = gradebook_state(course)
    attacker = state.pop("attacker")
    assert state == reference["gradebook"], "the attack changed someone's grades"
    assert attacker["p1"]["grades"]["test-add"] == (1.0, False)
    assert attacker["p1"]["grades"]["test-square"] == (2.0, False)
    assert float(grades_csv(course)["attacker"]["raw_score"]) == 4
    output = attack_output(course)
    assert "others=0" in output, output
    assert f"zeroed {course}/gradebook.db" not in output, output
    assert not (course / "pwned.txt").exists() and not (course.parent / "pwned.txt").exists()
    assert connections == 0 and "network: " in output, output
    found = report(course)
    assert found["unchanged"] == 7 and found["graded"] == 1, "only the new submission is graded"
    assert "unchanged since they failed (--force retries): corrupt\n" in result.stdout
    flags = " ".join(found["students"]["attacker"]["flags"])
    for expected in ("imports socket", "imports sqlite3", "imports os", "outside '.'"):
        assert expected in flags, flags
    assert "flagged: attacker: p1.ipynb: cell" in result.stdout


# ----------------------------------------------------------------------------- hostile jobs

# Top-level code after the solution's function (the body is indented by four spaces):
# each runs both in the kernel and in the process that answers the grader.
FILL_DISK = """return x * x
import itertools
_written = 0
for _i in itertools.count():  # fill the folder, then keep taking every freed block
    try:
        with open(f"fill{_i % 64}", "wb") as _f:
            _f.write(b"x" * 2**22)
        _written += 1
    except OSError:
        pass
    if _written > 2048:  # 8 GiB: a sandbox stops this long before
        break"""
FORK_LOOP = """return a + b
import os, time
for _ in range(200):  # processes that would outlive the job
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)"""
FORGE_GRADES = """return x * x
import glob, sqlite3, subprocess, sys
for _db in glob.glob("../../../gradebook.db") + glob.glob("../../*/gradebook.db"):
    with sqlite3.connect(_db) as _c:
        _c.execute("UPDATE grade SET auto_score = 2")
# a process that outlives the kernel and forges the grades once nbgrader saved them
subprocess.Popen([sys.executable, "-c", "import time, glob, sqlite3; time.sleep(3); "
    "[sqlite3.connect(d).execute('UPDATE grade SET auto_score = 2').connection.commit() "
    "for d in glob.glob('../../../gradebook.db')]"], start_new_session=True)"""
SNOOP = """print(get_ipython().user_ns.get("In"), globals().keys(), x)
    return x * x"""
# a wrong square with the tricks that reached the verdicts of the old grader: an
# execute_result while the test runs, frames and gc walked to rewrite checks, a thread
# re-patching them, the function's code disguised as a library's
TRICKS = """get_ipython().displayhook("full marks")
    import gc, sys
    frame = sys._getframe()
    while frame is not None:
        for key in [k for k in frame.f_locals if k in ("ok", "passed", "error")]:
            frame.f_locals[key] = True
        frame = frame.f_back
    for scope in gc.get_objects():
        if isinstance(scope, dict) and "assert_close" in scope:
            scope["assert_close"] = lambda *args, **kwargs: None
    return 2 * x
import threading, time, builtins
def _keep_patching():
    while True:
        builtins.AssertionError = type("Quiet", (Exception,), {})
        time.sleep(0.001)
threading.Thread(target=_keep_patching, daemon=True).start()
square.__code__ = square.__code__.replace(co_filename=threading.__file__)"""
HOSTILE = {
    "fills-disk": {"square": FILL_DISK},
    "forks": {"add": FORK_LOOP},
    "forges-grades": {"square": "return 2 * x\n" + FORGE_GRADES.split("\n", 1)[1]},
    "snoops": {"square": SNOOP},
    "tricks": {"square": TRICKS},
}


def job_processes() -> list:
    """Processes of grading jobs (their command lines name a job's scratch folder)."""
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if "hw8-grade-" in " ".join(p.info["cmdline"] or []) and p.pid != os.getpid()
    ]


@pytest.fixture(scope="module")
def hostile(bwrap, template, tmp_path_factory):
    """Every submission of the template, plus five hostile ones, in one run of two
    workers with a small disk limit; then feedback for everyone."""
    course = copy_course(template, tmp_path_factory, "hostile")
    for student, bodies in HOSTILE.items():
        submit(course, student, source_notebooks(**bodies))
    result = hw8_grade(course, "--workers", "2", "--disk-limit", "0.25")
    left = job_processes()
    nbgrader(course, "generate_feedback", ASSIGNMENT, check=False)
    return course, result, left


def test_hostile_submissions_change_no_one_elses_grade(hostile, reference):
    course, result, _ = hostile
    state = gradebook_state(course)
    found = {student: state.pop(student) for student in HOSTILE}
    assert state == reference["gradebook"], result.stdout + result.stderr
    points = {s: float(row["raw_score"]) for s, row in grades_csv(course).items() if s in HOSTILE}
    # the disk filler's cell never ends (its square is lost), the forks change nothing,
    # the forged gradebook is never read (its wrong square stays wrong), the snoop is right
    # and the tricks buy nothing over the wrong square alone (the planted student: 2)
    expected = {"fills-disk": 2, "forks": 4, "forges-grades": 2, "snoops": 4, "tricks": 2}
    assert points == expected, found


def test_no_process_of_a_job_outlives_it(hostile):
    _, _, left = hostile
    assert not left, [p.info["cmdline"] for p in left]


def test_feedback_holds_no_hidden_test(hostile):
    course, _, _ = hostile
    pages = list((course / "feedback").rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text()
        assert "square(-2) == 4" not in text and "add(-1, 1) == 0" not in text, page


# ----------------------------------------------------------------------------- Dask


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A Dask scheduler and two single-thread workers, each its own process."""
    address = f"tcp://127.0.0.1:{free_port()}"
    folder = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).with_name("dask"))
    port = address.rsplit(":", 1)[1]
    common = ["--no-dashboard"]
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", port, *common],
            cwd=folder,
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--memory-limit", "0", *common],
                cwd=folder,
                env=environment(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def test_dask_grades_equal_sequential(bwrap, dask_cluster, template, reference, tmp_path_factory):
    course = copy_course(template, tmp_path_factory, "dask")
    result = hw8_grade(course, "--scheduler", dask_cluster)
    assert result.returncode == 1, result.stdout + result.stderr
    assert gradebook_state(course) == reference["gradebook"]
    assert grades_csv(course) == reference["csv"]
    assert autograded_files(course) == reference["files"]
    assert f"Dask scheduler {dask_cluster}" in result.stdout


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def small_course(template, tmp_path) -> Path:
    """A copy of the course holding only the correct submission."""
    course = tmp_path / "course"
    shutil.copytree(template, course, ignore=shutil.ignore_patterns("submitted"))
    shutil.copytree(template / "submitted" / "correct", course / "submitted" / "correct")
    return course


def grade_here(course: Path, assignment: str = ASSIGNMENT, **options) -> int:
    """The engine's API, as the command line calls it (one local worker)."""
    return autograde.grade(course, assignment, autograde.GradeOptions(workers=1, **options))


def refusal(course: Path, assignment: str = ASSIGNMENT, **options) -> str:
    """The message of the GradeError that grading ``course`` stops with."""
    with pytest.raises(GradeError) as stopped:
        grade_here(course, assignment, **options)
    return str(stopped.value)


def test_unknown_assignment_is_one_line_on_the_command_line(small_course, capsys):
    command = ["course", "grade", "ps9", "--course", str(small_course), "--workers", "1"]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert error.startswith("hw8 course: error: ") and error.count("\n") == 1
    assert "no assignment 'ps9'" in error
    assert "ps1" in error and "generate_assignment" in error


def test_options_are_checked_when_made():
    with pytest.raises(GradeError, match="unknown sandbox 'podman'; choose one of bwrap"):
        autograde.GradeOptions(sandbox="podman")


def test_no_gradebook_yet(small_course):
    (small_course / "gradebook.db").unlink()
    assert "nbgrader generate_assignment ps1" in refusal(small_course)


def test_empty_submitted(small_course):
    shutil.rmtree(small_course / "submitted" / "correct")
    (small_course / "submitted" / "empty" / ASSIGNMENT).mkdir(parents=True)
    error = refusal(small_course)
    assert "no submissions of 'ps1'" in error and "empty handed in no notebook" in error


def test_unreachable_scheduler_leaves_the_gradebook_alone(small_course, monkeypatch):
    monkeypatch.setattr(autograde, "CONNECT_TIMEOUT_S", 2)
    before = (small_course / "gradebook.db").read_bytes()
    address = f"tcp://127.0.0.1:{free_port()}"
    assert f"cannot reach the Dask scheduler at {address}" in refusal(
        small_course, scheduler=address
    )
    assert (small_course / "gradebook.db").read_bytes() == before
    assert not (small_course / "autograded").exists()


def test_a_second_run_on_the_same_course_is_refused(small_course):
    lock = small_course / "grade_reports" / ".lock"
    lock.parent.mkdir()
    with open(lock, "w") as handle:
        handle.write("pid 1 on elsewhere\n")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_EX)
        error = refusal(small_course)
    assert "another hw8 course grade is grading this course (pid 1 on elsewhere)" in error
    assert not (small_course / "autograded").exists()


def test_without_bwrap_it_refuses_unless_told(small_course, tmp_path, capsys, monkeypatch):
    """No sandbox: a clear refusal; with --no-sandbox, a loud warning, and a submission that
    runs past --timeout is stopped, its kernel (in a session of its own) included."""
    monkeypatch.setattr(sandbox, "BWRAP", "bwrap-not-installed")
    error = refusal(small_course)
    assert "bwrap command is not installed" in error and "--no-sandbox" in error
    shutil.rmtree(small_course / "submitted" / "correct")
    submit(small_course, "stuck", source_notebooks(add=HANG))
    scratch = tmp_path / "scratch"  # the jobs' scratch courses, to find their processes
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    started = time.perf_counter()
    options = {"sandbox": "none", "timeout": 10, "cell_timeout": 600}
    assert grade_here(small_course, **options) == 1
    assert time.perf_counter() - started < 60
    captured = capsys.readouterr()
    assert "WARNING: grading WITHOUT a sandbox" in captured.err
    assert "0 graded, 0 failed, 1 timed out" in captured.out
    assert "timed out: stuck: stopped after the time limit of 10 s" in captured.out
    left = [p for p in psutil.process_iter(["cmdline"]) if str(scratch) in str(p.info["cmdline"])]
    assert not left, "the stuck submission's processes outlived its time limit"


# ----------------------------------------------------------------------------- pieces


def test_the_private_gradebook_holds_no_test_code(template, tmp_path):
    """The gradebook a job's sandbox sees holds each test cell as the stub, with the
    checksum nbgrader's OverwriteCells expects of it; the course's holds the tests."""
    from nbgrader.api import Gradebook

    from hw8.course import gradebook
    from hw8.course.cells import STUB

    os.environ["PATH"] = environment()["PATH"]
    spec = gradebook.assignment_spec(f"sqlite:///{template / 'gradebook.db'}", "tiny", ASSIGNMENT)
    tests = [c for c in spec["notebooks"][0]["source_cells"] if c[0] == "test-square"]
    assert "square(-2) == 4" in tests[0][3]
    private = tmp_path / "private.db"
    private.write_bytes(gradebook.template(spec, "tiny", ASSIGNMENT, STUB))
    with Gradebook(f"sqlite:///{private}", "tiny") as opened:
        cell = opened.find_source_cell("test-square", "p1", ASSIGNMENT)
        assert cell.source == STUB
        assert cell.checksum == gradebook.test_checksum("test-square", 2, STUB)
    assert "square(-2)" not in private.read_bytes().decode(errors="replace")


# ----------------------------------------------------------------------------- feedback, grades.csv
# The course's own feedback and export steps (nbgrader_config.py): a written answer nobody
# has graded yet awaits hand grading (not "Score: 0.0 / 1.0"), and grades.csv says which
# answers await a person and which notebooks were not handed in.

HAND_GRADING_CONFIG = """
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades

from hw8.course.gradebook import GradesExport
from hw8.course.preprocessors import FeedbackExporter, HideHiddenTests, MarkHandGrading

c.GenerateFeedback.preprocessors = [
    GetGrades, MarkHandGrading, HideHiddenTests, CSSHTMLHeaderPreprocessor,
]
c.GenerateFeedback.exporter_class = FeedbackExporter
c.ExportApp.plugin_class = GradesExport
"""


def test_the_course_config_uses_the_hand_grading_steps():
    """The repository's nbgrader_config.py names the same steps as the tests below."""
    text = (Path(__file__).resolve().parents[2] / "nbgrader_config.py").read_text()
    for name in ("MarkHandGrading", "FeedbackExporter", "GradesExport"):
        assert name in text
    assert "c.ExportApp.plugin_class = GradesExport" in text
    assert "c.GenerateFeedback.exporter_class = FeedbackExporter" in text


@pytest.fixture(scope="module")
def hand_grading(template, tmp_path_factory) -> Path:
    """ann answers the written question and hands in both notebooks; bob leaves the answer
    as handed out and hands in p1 only; cat is in the gradebook but hands in nothing."""
    course = tmp_path_factory.mktemp("hand") / "course"
    shutil.copytree(template, course, ignore=shutil.ignore_patterns("submitted"))
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(HAND_GRADING_CONFIG)
    release = course / "release" / ASSIGNMENT
    answered = nbformat.read(release / "p1.ipynb", 4)
    (why,) = [cell for cell in answered.cells if cell.metadata["nbgrader"]["grade_id"] == "why"]
    why.source = "Because the square of a real number is never negative."
    submit(course, "ann", {"p1": answered, "p2": nbformat.read(release / "p2.ipynb", 4)})
    submit(course, "bob", {"p1": nbformat.read(release / "p1.ipynb", 4)})
    (course / "submitted" / "ann" / ASSIGNMENT / "hw8-0.1.0-py3-none-any.whl").write_text("x")
    nbgrader(course, "db", "student", "add", "cat")
    nbgrader(course, "autograde", ASSIGNMENT)
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    nbgrader(course, "export")
    return course


def feedback_page(course: Path, student: str, notebook: str) -> str:
    return (course / "feedback" / student / ASSIGNMENT / f"{notebook}.html").read_text()


def test_feedback_says_a_written_answer_awaits_hand_grading(hand_grading):
    page = feedback_page(hand_grading, "ann", "p1")
    assert 'href="#why">Written response</a> (awaits hand grading, 1 point)' in page
    assert "Awaits hand grading (1 point)" in page
    assert "<h4>p1 (Score: 0.0 / 4.0; written answers worth 1 point await hand grading)</h4>" in (
        page
    )
    assert "nan" not in page.replace("nano", "")
    # an answer left as it was handed out is graded (0, "No response."): its score stays
    page = feedback_page(hand_grading, "bob", "p1")
    assert 'href="#why">Written response</a> (Score: 0.0 / 1.0)' in page
    assert "hand grading" not in page


def test_grades_csv_names_answers_awaiting_hand_grading_and_missing_notebooks(hand_grading):
    rows = grades_csv(hand_grading)
    assert (rows["ann"]["awaiting_hand_grading"], rows["ann"]["awaiting_points"]) == (
        "p1:why",
        "1.0",
    )
    assert rows["ann"]["not_handed_in"] == ""
    assert (rows["bob"]["awaiting_hand_grading"], rows["bob"]["not_handed_in"]) == ("", "p2")
    assert rows["cat"]["not_handed_in"] == "p1 p2" and rows["cat"]["timestamp"] == ""
    header = (hand_grading / "grades.csv").read_text().splitlines()[0].split(",")
    assert header[:11] == [
        "assignment",
        "duedate",
        "timestamp",
        "student_id",
        "last_name",
        "first_name",
        "email",
        "raw_score",
        "late_submission_penalty",
        "score",
        "max_score",
    ]  # nbgrader's own columns first, as they were


def test_a_hand_grade_ends_the_wait_and_the_gradebook_alone_knows_what_was_handed_in(
    hand_grading, tmp_path
):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    shutil.copytree(hand_grading, course)
    os.environ["PATH"] = environment()["PATH"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "tiny") as gradebook:
        grade = gradebook.find_grade("why", "p1", ASSIGNMENT, "ann")
        grade.manual_score = 1.0
        grade.needs_manual_grade = False
        gradebook.db.commit()
    shutil.rmtree(course / "submitted")  # cleaned up after grading: the gradebook decides
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    nbgrader(course, "export")
    rows = grades_csv(course)
    assert rows["ann"]["awaiting_hand_grading"] == "" and rows["ann"]["raw_score"] == "1.0"
    assert [rows[s]["not_handed_in"] for s in ("ann", "bob", "cat")] == ["", "p2", "p1 p2"]
    page = feedback_page(course, "ann", "p1")
    assert "hand grading" not in page
    assert 'href="#why">Written response</a> (Score: 1.0 / 1.0)' in page


def test_the_wheel_handed_in_stays_out_of_what_hw8_course_grade_copies(hand_grading):
    course = autograde.load_course(hand_grading)
    files = autograde.submission_files(course, hand_grading / "submitted" / "ann" / ASSIGNMENT)
    assert sorted(files) == ["p1.ipynb", "p2.ipynb"]
