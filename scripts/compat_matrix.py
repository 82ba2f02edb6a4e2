"""Compatibility matrix: hw8 installed where other versions are already there, as on Colab.

    python scripts/compat_matrix.py                  # colab and lowest (what make test runs)
    python scripts/compat_matrix.py --env lock       # one environment (repeat --env for more)
    python scripts/compat_matrix.py --list           # what each environment preinstalls

For each environment: a fresh virtual environment in a temporary folder; torch==2.13.0
first (the CPU build this machine has on disk; any other build is a multi-GB CUDA
download), then the environment's own versions and the test tools (pytest, ruff, nbclient,
nbformat, ipykernel: what a notebook image has anyway); ``pip freeze``; then hw8 itself, the
wheel built from this checkout, installed the way a student on Colab or Kaggle gets it: by
the install cell that opens every notebook, run in a kernel with the wheel beside it (no
lock, no extras); then

1. every preinstalled package must still have the version it had (hw8's ranges admitted
   it: nothing was upgraded, downgraded or replaced),
2. the package tests that are not ``slow`` run against the installed wheel,
3. all five source notebooks (the instructor version, with solutions) run top to bottom
   with nbclient and ``HW8_QUICK=1`` in a scratch copy of notebooks/hw8, in a kernel of
   that environment (checked: the kernel's sys.prefix is the environment's).

The environments:

- ``lock``: requirements/lock.txt, the course environment. ``make test`` covers it already
  (make installs the lock and checks the result, the whole suite runs in it), so it is not
  in the default set.
- ``colab``: Python 3.11 with Colab's numpy 2.1.3, matplotlib 3.10.0 and IPython 7.34.0,
  torch preinstalled first, and the older Jupyter kernel stack that goes with IPython 7.
- ``lowest``: the lowest version pyproject.toml declares for each runtime dependency (read
  from it, so the two cannot drift), torch 2.13.0 being the only build at hand.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lock import LOCK, differences, freeze, normalize, read_lock

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks" / "hw8"
TORCH = "2.13.0"  # the only torch build on this machine's disk (CPU); others are CUDA downloads
TEST_TOOLS = ("pytest", "ruff", "nbclient", "nbformat", "ipykernel")
CELL_TIMEOUT_S = 300
DEFAULT = ("colab", "lowest")


@dataclass(frozen=True)
class Environment:
    name: str
    about: str
    preinstall: tuple[str, ...]  # pip arguments, installed after torch==TORCH
    course: bool = False  # the course extra's tools are there: run hw8.course's tests too


def lowest_pins(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """{name: lowest declared version} for hw8's runtime dependencies (their ``>=`` bound)."""
    from packaging.requirements import Requirement

    pins = {}
    for line in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        req = Requirement(line)
        lows = [spec.version for spec in req.specifier if spec.operator == ">="]
        if not lows:
            raise ValueError(f"pyproject.toml: {line!r} declares no lower bound (>=)")
        pins[normalize(req.name)] = lows[0]
    return pins


def tools_from_lock(names=TEST_TOOLS) -> list[str]:
    lock = read_lock()
    return [f"{name}=={lock[name]}" for name in names]


def environments() -> dict[str, Environment]:
    lowest = lowest_pins()
    lowest_runtime = [f"{name}=={v}" for name, v in lowest.items() if name != "torch"]
    colab = (
        # the versions Colab ships that the issue names
        "numpy==2.1.3",
        "matplotlib==3.10.0",
        "ipython==7.34.0",
        # an ipykernel and jupyter-client that work with IPython 7
        "ipykernel==6.17.1",
        "jupyter-client==7.4.9",
        "nbclient==0.10.2",
        "nbformat==5.10.4",
        # one release line behind the lock, as a preinstalled notebook image is
        "scikit-learn==1.6.1",
        "scipy==1.15.3",
        "tqdm==4.67.1",
        *tools_from_lock(("pytest", "ruff")),
    )
    return {
        "lock": Environment(
            "lock",
            "requirements/lock.txt (the course environment)",
            ("-r", str(LOCK)),
            course=True,
        ),
        "colab": Environment(
            "colab",
            "Colab-like: numpy 2.1.3, matplotlib 3.10.0, IPython 7.34.0, ipykernel 6.17.1",
            colab,
        ),
        "lowest": Environment(
            "lowest",
            "the lowest versions pyproject.toml declares: "
            + ", ".join(f"{n} {v}" for n, v in lowest.items() if n != "torch"),
            (*lowest_runtime, *tools_from_lock([n for n in TEST_TOOLS if n not in lowest])),
        ),
    }


def sh(cmd: list, log, **kwargs) -> None:
    """Run ``cmd``, its output to ``log``; raise RuntimeError if it fails."""
    log.write(f"\n$ {' '.join(map(str, cmd))}\n")
    log.flush()
    result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, **kwargs)
    if result.returncode:
        raise RuntimeError(f"exit {result.returncode}: {' '.join(map(str, cmd))}")


def build_wheel(work: Path, log) -> Path:
    """hw8's wheel from this checkout (a copy of the files the build needs)."""
    src = work / "src"
    shutil.copytree(
        ROOT / "hw8", src / "hw8", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = work / "dist"
    sh([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, src], log)
    (wheel,) = dist.glob("hw8-*.whl")
    return wheel


def course_test_files() -> list[Path]:
    """Tests of hw8.course, the instructor's room: they need the ``course`` extra (nbgrader),
    which a student's environment does not have, so the matrix leaves them out: every test
    file, in any folder under tests/, that imports hw8.course, or nbgrader at module level."""
    uses_course = re.compile(
        r"^(\s*(from hw8\.course\b|import hw8\.course\b|from hw8 import course\b)"
        r"|(from nbgrader\b|import nbgrader\b))",
        re.M,
    )
    return sorted(
        path for path in (ROOT / "tests").rglob("test_*.py") if uses_course.search(path.read_text())
    )


# Every student-facing module imports with the course tools absent (hw8.course excepted).
STUDENT_IMPORTS = r"""
import importlib, pkgutil, sys
for name in ("nbformat", "nbclient", "nbgrader", "jupyterlab", "jupyter_server", "dask"):
    sys.modules[name] = None  # import fails, as on a student's machine without hw8[course]
import hw8
names = sorted(m.name for m in pkgutil.iter_modules(hw8.__path__, "hw8.") if m.name != "hw8.course")
for name in names:
    importlib.import_module(name)
print("imports without the course tools:", " ".join(names))
"""

# hw8 installed as a student on Colab or Kaggle gets it: the install cell that opens every
# notebook, run in a kernel of the environment, with the release's wheel beside it.
INSTALL_RUNNER = r"""
import sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_notebook

folder = Path(sys.argv[1])
source = nbformat.read(folder / "05_anomaly_detection.ipynb", as_version=4)
(cell,) = [c for c in source.cells if c.get("id", "").endswith("-code-install")]
nb = new_notebook(cells=[cell])
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": str(folder)}}).execute()
text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
print(text.strip())
assert text.strip().splitlines()[-1].startswith("hw8 "), text
"""

NOTEBOOK_RUNNER = r"""
import sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

folder, timeout, prefix = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def run(nb):
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb

probe = run(new_notebook(cells=[new_code_cell(
    "import sys, hw8, numpy, torch, matplotlib, sklearn\n"
    "print(sys.prefix, hw8.__file__, numpy.__version__, matplotlib.__version__, sep='|')")]))
kernel_prefix, hw8_file, *versions = probe.cells[0].outputs[0]["text"].strip().split("|")
assert Path(kernel_prefix).resolve() == Path(prefix).resolve(), (kernel_prefix, prefix)
assert Path(hw8_file).resolve().is_relative_to(Path(prefix).resolve()), hw8_file
print(f"kernel: {kernel_prefix}; hw8 from {hw8_file}; numpy, matplotlib {versions}", flush=True)
failed = []
for path in sorted(folder.glob("*.ipynb")):
    start = time.perf_counter()
    try:
        run(nbformat.read(path, as_version=4))
        status = "ok"
    except Exception as error:  # CellExecutionError names the cell and the traceback
        failed.append(path.name)
        status = f"FAILED\n{error}"
    print(f"{path.name}: {time.perf_counter() - start:.1f} s {status}", flush=True)
sys.exit(1 if failed else 0)
"""


def run_environment(env: Environment, wheel: Path, work: Path, record: dict) -> None:
    """Build ``env``, install hw8, check and test it; fills ``record`` (times in s) as it goes."""
    home = work / env.name
    home.mkdir()
    venv = home / "venv"
    py = venv / "bin" / "python"
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    isolated = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_CONSTRAINT", "JUPYTER_PATH")
    }
    isolated.update(
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        HW8_QUICK="1",
        JUPYTER_PATH=str(venv / "share" / "jupyter"),  # this env's python3 kernel, first
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "matplotlib"),
    )
    record.update(name=env.name, about=env.about, ok=False, seconds={})
    log_path = home / "log.txt"
    record["log"] = str(log_path)
    with open(log_path, "w") as log:

        def step(name, cmd, **kwargs):
            start = time.perf_counter()
            try:
                sh(cmd, log, env=isolated, **kwargs)
            finally:
                record["seconds"][name] = round(time.perf_counter() - start, 1)

        start = time.perf_counter()
        sh([sys.executable, "-m", "venv", venv], log)
        sh([*pip, f"torch=={TORCH}"], log, env=isolated)
        sh([*pip, f"torch=={TORCH}", *env.preinstall], log, env=isolated)
        sh([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], log)
        record["seconds"]["preinstall"] = round(time.perf_counter() - start, 1)
        before = freeze(py)
        record["preinstalled"] = before

        notebooks = home / "notebooks"
        notebooks.mkdir()
        for path in sorted(NOTEBOOKS.glob("*.ipynb")):
            shutil.copy2(path, notebooks / path.name)
        record["notebooks"] = sorted(p.name for p in notebooks.glob("*.ipynb"))
        shutil.copy2(wheel, notebooks / wheel.name)
        step("install hw8", [py, "-c", INSTALL_RUNNER, notebooks], cwd=notebooks)
        after = freeze(py)
        moved = differences(before, after, extra=False)
        record["added by hw8"] = {k: v for k, v in after.items() if k not in before}
        if moved:
            record["moved"] = moved
            raise AssertionError(
                f"{env.name}: installing hw8 changed preinstalled packages: {'; '.join(moved)}"
            )
        check = "import hw8, sys; assert hw8.__file__.startswith(sys.prefix), hw8.__file__"
        sh([py, "-c", check], log, cwd=home)
        step("student imports", [py, "-c", STUDENT_IMPORTS], cwd=home)

        # the console script, not `python -m`: the checkout must not shadow the installed hw8
        test_cmd = [venv / "bin" / "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"]
        if not env.course:
            test_cmd += [f"--ignore={p.relative_to(ROOT)}" for p in course_test_files()]
        step("package tests", test_cmd, cwd=ROOT)

        runner = [py, "-c", NOTEBOOK_RUNNER, notebooks, str(CELL_TIMEOUT_S), venv]
        step("notebooks", runner, cwd=notebooks)
    record["ok"] = True


def summary_lines(path: str) -> list[str]:
    """The lines of an environment's log worth showing: pytest's closing line, the kernel
    check, and one line per notebook."""
    keep = re.compile(r"^(\d+ (passed|failed)|kernel: |imports without|\S+\.ipynb: [\d.]+ s )")
    return [line for line in Path(path).read_text().splitlines() if keep.match(line)]


def tail(path: str, lines: int = 40) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", choices=["lock", "colab", "lowest"])
    parser.add_argument("--list", action="store_true", help="show the environments and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", type=Path, help="write the records here")
    args = parser.parse_args(argv)
    envs = environments()
    chosen = args.env or list(DEFAULT)
    if args.list:
        for name in chosen:
            print(f"{name}: {envs[name].about}\n  torch=={TORCH} {' '.join(envs[name].preinstall)}")
        return 0

    work = Path(tempfile.mkdtemp(prefix="hw8-compat-"))
    records, total = [], time.perf_counter()
    try:
        with open(work / "build.log", "w") as log:
            start = time.perf_counter()
            wheel = build_wheel(work, log)
            print(f"built {wheel.name} in {time.perf_counter() - start:.1f} s", flush=True)
        for name in chosen:
            env = envs[name]
            print(f"== {name}: {env.about}", flush=True)
            start = time.perf_counter()
            record: dict = {"name": name, "ok": False}
            try:
                run_environment(env, wheel, work, record)
            except (RuntimeError, AssertionError) as error:
                record["error"] = str(error)
                log = work / name / "log.txt"
                print(f"   FAILED: {error}\n{tail(str(log)) if log.exists() else ''}", flush=True)
            record["total_s"] = round(time.perf_counter() - start, 1)
            records.append(record)
            steps = ", ".join(f"{k} {v} s" for k, v in record.get("seconds", {}).items())
            print(f"   {'ok' if record['ok'] else 'FAILED'} in {record['total_s']} s ({steps})")
            if record.get("ok"):
                added = ", ".join(f"{k}=={v}" for k, v in sorted(record["added by hw8"].items()))
                print(f"   preinstalled versions unchanged; hw8 added: {added or 'nothing'}")
                for line in summary_lines(record["log"]):
                    print(f"   {line}", flush=True)
    finally:
        if args.json:
            args.json.write_text(json.dumps(records, indent=2) + "\n")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r["name"] for r in records if not r["ok"]]
    seconds = time.perf_counter() - total
    print(
        f"compatibility matrix: {len(records) - len(failed)} of {len(records)} environments"
        f" passed in {seconds:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
