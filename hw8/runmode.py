"""How the notebooks are being run: by a student, by the course's tests, or by nbgrader.

- ``$HW8_QUICK=1`` is the course's test switch: training is cut to one epoch on a few
  hundred images so that the test suite stays fast.
- ``$NBGRADER_EXECUTION=autograde`` is set by ``nbgrader autograde`` while it runs a
  submission. No test cell needs a long training run, so grading shortens training the
  same way: a grade never waits on the notebooks' demonstrations.

- The notebooks' install cell (``pip install --no-deps`` of the wheel, then
  :func:`prepare_runtime`): what hw8 needs and the runtime lacks is installed with every
  installed package held at its version; what cannot be installed that way is named in
  one line with the command to run.

The module imports the standard library only (and pip's vendored ``packaging`` where
``packaging`` itself is missing), so that the install cell can import it before any of
hw8's requirements is there, and the leaderboard and the test cells can ask without
loading the training code.
"""

from __future__ import annotations

import os
import re
import sys
import warnings

from hw8.errors import RequirementsError
from hw8.settings import QUICK_TRAIN_IMAGES

QUICK_ENV = "HW8_QUICK"

# tqdm.auto in a kernel without ipywidgets warns "IProgress not found. Please update jupyter
# and ipywidgets", which asks a student to change the runtime's packages; hw8's bars
# (progress_bar) never need it, and any tqdm.auto imported later falls back quietly.
warnings.filterwarnings("ignore", message="IProgress not found", category=Warning)


def quick_mode() -> bool:
    """True when ``$HW8_QUICK`` is set to 1: tests shorten training with it."""
    return os.environ.get(QUICK_ENV, "") == "1"


def autograding() -> bool:
    """True while ``nbgrader autograde`` runs the notebook."""
    return os.environ.get("NBGRADER_EXECUTION") == "autograde"


def short_training() -> bool:
    """True under ``$HW8_QUICK=1`` or while nbgrader autogrades: train briefly."""
    return quick_mode() or autograding()


def scaled_epochs(epochs: int) -> int:
    """``epochs``, or 1 when training is short (:func:`short_training`)."""
    return 1 if short_training() else epochs


def quick_slice(count: int, quick_count: int = QUICK_TRAIN_IMAGES) -> int:
    """``count``, or at most ``quick_count`` when training is short."""
    return min(count, quick_count) if short_training() else count


# ----------------------------------------------------------------------------- progress bars

PROGRESS_LINES = 5  # about this many updates per bar where the output is not a terminal
QUIET_INTERVAL_S = 60.0  # a bar of unknown length there: at most one line a minute


def progress_bar(iterable=None, **options):
    """A tqdm progress bar that suits where it is shown (``options`` are tqdm's).

    In a Jupyter kernel with working ipywidgets: the notebook's widget bar. In a terminal:
    tqdm's own bar. Anywhere else (a log file, a pipe, a kernel without ipywidgets) a few
    lines per bar, not one per step: an update every ``total / PROGRESS_LINES`` steps (or
    once a minute when the length is unknown), and ``set_postfix`` never prints by itself.
    """
    if options.get("disable"):
        from tqdm.std import tqdm

        return tqdm(iterable, **options)
    if notebook_widgets():
        from tqdm.notebook import tqdm

        return tqdm(iterable, **options)
    from tqdm.std import tqdm

    stream = options.get("file") or sys.stderr
    if not _isatty(stream):
        total = options.get("total")
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        if total:
            options.setdefault("miniters", max(1, -(-int(total) // PROGRESS_LINES)))
        else:
            options.setdefault("mininterval", QUIET_INTERVAL_S)
        options.setdefault("maxinterval", float("inf"))  # tqdm's monitor never forces lines
        bar = tqdm(iterable, **options)
        bar.set_postfix = _quiet(bar.set_postfix)
        bar.set_postfix_str = _quiet(bar.set_postfix_str)
        return bar
    return tqdm(iterable, **options)


def _quiet(method):
    """``set_postfix`` that waits for the bar's next update instead of printing at once."""

    def call(*args, **kwargs):
        kwargs["refresh"] = False
        return method(*args, **kwargs)

    return call


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def notebook_widgets() -> bool:
    """Whether this is a Jupyter kernel where tqdm's widget bar works (ipywidgets there)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # noqa: BLE001 - an IPython without a shell
        return False
    if shell is None or "IPKernelApp" not in getattr(shell, "config", {}):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from tqdm.notebook import IProgress
    except Exception:  # noqa: BLE001 - any failure: no widgets
        return False
    return IProgress is not None


def platform() -> str:
    """Where the notebook runs: ``"colab"``, ``"kaggle"`` or ``"local"`` (anything else:
    a laptop, a course JupyterHub)."""
    if "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or os.path.isdir("/kaggle/input"):
        return "kaggle"
    return "local"


def describe_runtime() -> str:
    """One line for a notebook's first cell: hw8's version, the platform, Python, torch.

    What the first release's install cell calls: it first does what
    :func:`prepare_runtime` does (installs the requirements this runtime lacks, or stops
    with one line saying what to run)."""
    import platform as python_platform

    install_missing_requirements()

    import torch

    import hw8

    where = {"colab": "Google Colab", "kaggle": "Kaggle", "local": "a local Jupyter"}[platform()]
    return (
        f"hw8 {hw8.__version__} on {where} (Python {python_platform.python_version()}, "
        f"PyTorch {torch.__version__})"
    )


def prepare_runtime() -> str:
    """The install cell's call, right after ``pip install --no-deps`` of the wheel: install
    what hw8 needs and this runtime lacks, moving no installed package
    (:func:`install_missing_requirements`), then return the line that says what runs here
    (:func:`describe_runtime`). Stops with a one-line :class:`RequirementsError` that says
    what to run when that cannot be done."""
    return describe_runtime()


# ----------------------------------------------------------------------------- requirements
# Everything below needs the standard library only (and pip, which installed the wheel):
# the install cell imports this module before any of hw8's requirements may be there.

# PyTorch's right build depends on the machine (CPU, CUDA version, Apple): never installed
# here, only named.
INSTALL_YOURSELF = {
    "torch": "install PyTorch as https://pytorch.org/get-started says for this machine"
}
RESTART = "then restart the kernel (Colab: Runtime > Restart session)"


def _packaging():
    """``(Requirement, Version, InvalidVersion)`` from packaging, or from the copy pip
    vendors (a runtime that lacks packaging still has pip)."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.version import InvalidVersion, Version
    return Requirement, Version, InvalidVersion


def _normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_requirements() -> list[str]:
    """hw8's runtime requirements as its installed metadata declares them (extras left
    out); empty when hw8 runs from a checkout without installed metadata."""
    from importlib import metadata

    try:
        declared = metadata.requires("hw8") or []
    except metadata.PackageNotFoundError:
        return []
    Requirement = _packaging()[0]
    return [
        line
        for line in declared
        if Requirement(line).marker is None or Requirement(line).marker.evaluate({"extra": ""})
    ]


def requirement_problems(declared: list[str] | None = None) -> list[tuple[str, str | None]]:
    """``(requirement, installed version or None)`` for each requirement of hw8 (or
    ``declared``) this Python does not meet, in the order declared."""
    from importlib import metadata

    Requirement = _packaging()[0]
    problems = []
    for line in declared_requirements() if declared is None else declared:
        requirement = Requirement(line)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append((str(requirement), None))
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append((str(requirement), version))
    return problems


def requirement_status(declared: list[str] | None = None) -> tuple[list[str], list[str]]:
    """``(missing, wrong)``: the requirements not installed at all, e.g. ``"scipy>=1.13.0"``,
    and those installed at a version outside their range, e.g. ``"torch>=2.11 (this
    runtime has 2.10.0)"``. ``declared`` defaults to hw8's own."""
    problems = requirement_problems(declared)
    missing = [item for item, version in problems if version is None]
    wrong = [f"{item} (this runtime has {version})" for item, version in problems if version]
    return missing, wrong


def unmet_requirements(declared: list[str] | None = None) -> list[str]:
    """hw8's runtime requirements this Python does not meet, e.g. ``"torch>=2.11 (this
    runtime has 2.10.0)"`` or ``"tqdm>=4.63.0 (not installed)"``; empty when all are met
    or hw8 runs from a checkout (no installed metadata to read)."""
    return [
        f"{item} ({'not installed' if version is None else f'this runtime has {version}'})"
        for item, version in requirement_problems(declared)
    ]


def pip_fix(requirements: list[str]) -> str:
    """What to run for ``requirements`` ("name>=x (...)" items), as one instruction."""
    quoted = " ".join(f"'{item.split(' (')[0]}'" for item in requirements)
    return f"run `%pip install {quoted}` in a cell, {RESTART}"


def check_requirements(declared: list[str] | None = None) -> None:
    """Raise a one-line :class:`RequirementsError` with the fix when a requirement is unmet."""
    unmet = unmet_requirements(declared)
    if unmet:
        raise RequirementsError(f"hw8 needs {'; '.join(unmet)}. Fix: {pip_fix(unmet)}.")


def installed_pins() -> list[str]:
    """``name==version`` for every distribution installed here (the first one Python
    finds of each name; versions pip could not read are left out): pip constraints that
    keep every installed package where it is."""
    from importlib import metadata

    Version, InvalidVersion = _packaging()[1:]
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if not name or not version or _normalize(name) in pins:
            continue
        try:
            Version(version)
        except InvalidVersion:
            continue
        pins[_normalize(name)] = f"{_normalize(name)}=={version}"
    return sorted(pins.values())


def install_missing_requirements(
    declared: list[str] | None = None, *, python: str | None = None, quiet: bool = True
) -> list[str]:
    """Install the requirements of hw8 (or ``declared``) that are not installed at all,
    and return them; every installed distribution is held at its version (pip
    constraints ``name==version``), so pip picks releases that fit what is there and
    upgrades, downgrades or replaces nothing.

    Raises a one-line :class:`RequirementsError` saying what to run when a requirement is
    installed at a version outside its range (only changing that package would meet it),
    when PyTorch itself is missing (its build depends on the machine), or when pip finds no
    release that fits the installed packages.
    """
    import importlib
    import subprocess
    import sys
    import tempfile

    missing, wrong = requirement_status(declared)
    if wrong:
        check_requirements(declared)
    Requirement = _packaging()[0]
    yourself = [item for item in missing if _normalize(Requirement(item).name) in INSTALL_YOURSELF]
    if yourself:
        name = _normalize(Requirement(yourself[0]).name)
        raise RequirementsError(
            f"hw8 needs {yourself[0]}, which this runtime does not have: "
            f"{INSTALL_YOURSELF[name]}, {RESTART}."
        )
    if not missing:
        return []
    print(f"hw8 needs {', '.join(missing)}: installing (no installed package changes)", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="hw8-pins-") as pins:
        pins.write("\n".join(installed_pins()) + "\n")
        pins.flush()
        command = [python or sys.executable, "-m", "pip", "install", "-c", pins.name, *missing]
        if quiet:
            command.insert(4, "--quiet")
        result = subprocess.run(command)
    if result.returncode != 0:
        raise RequirementsError(
            f"pip could not install {', '.join(missing)} next to this runtime's packages "
            f"without changing them (pip's message is above). Fix: {pip_fix(missing)}."
        )
    importlib.invalidate_caches()
    _add_user_site()
    still, _ = requirement_status(declared)
    if still:
        raise RequirementsError(
            f"pip installed {', '.join(still)}, but this kernel does not see it yet: {RESTART}."
        )
    return missing


def _add_user_site() -> None:
    """pip installs into the user's site folder where the system's is read-only (a
    JupyterHub); a kernel started before that folder existed does not look there yet."""
    import site
    import sys

    user_site = site.getusersitepackages()
    if site.ENABLE_USER_SITE and os.path.isdir(user_site) and user_site not in sys.path:
        site.addsitedir(user_site)
