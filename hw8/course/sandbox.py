"""The sandbox one submission is graded in: bubblewrap, a container, or (by choice) none.

A submission runs the student's code with the grader's rights. Inside the sandbox it sees
its own scratch course (a copy of the assignment, its own files, a private gradebook) and
can write nowhere else:

- ``bwrap`` (Linux, Debian package ``bubblewrap``): the whole file system read-only, a
  private ``/tmp`` and ``/dev``, the course folder, the grader's home and the other
  scratch folders hidden behind empty folders (the Python environment that runs the
  grader, wherever it lives, is mounted back read-only), the scratch folder the only
  writable place, new user, process, network (loopback only), IPC and UTS namespaces, and
  everything killed when the grader goes.
- ``docker`` (or a compatible ``docker`` command such as Podman's): an image holding the
  course environment, no network, a read-only root, only the scratch folder mounted.
- ``none``: the submission runs with the grader's rights; only with ``--no-sandbox``.

Either way each process of a submission gets a memory limit (``RLIMIT_AS``, or the
container's ``--memory``), so a memory-eating cell fails with ``MemoryError`` instead of
taking the machine down, and a limit on its processes (``RLIMIT_NPROC``, or
``--pids-limit``), so a fork bomb stops there. In ``bwrap`` and ``docker`` the folder a
job writes is an in-memory file system of a fixed size (``hw8.course.confine``): a
submission that fills it fills only its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hw8.errors import GradeError

BWRAP = "bwrap"  # the bubblewrap command
PROBE_TIMEOUT_S = 60
BWRAP_PROBE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all"]
BWRAP_PROBE += ["--die-with-parent", "true"]
NO_SANDBOX_HINT = (
    "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), or use --sandbox "
    "docker --image IMAGE, or grade without a sandbox with --no-sandbox (every submission "
    "then runs with your rights in the course folder)."
)
# Run a command with its address space and its number of processes limited and no core
# files (set, then exec).
LIMIT_SNIPPET = (
    "import os, resource, sys; n, p = int(sys.argv[1]), int(sys.argv[2]); "
    "n and resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
    "p and resource.setrlimit(resource.RLIMIT_NPROC, (p, p)); "
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.execvp(sys.argv[3], sys.argv[3:])"
)
MAX_PROCESSES = 256  # per sandbox: a fork bomb meets this instead of the machine's limit
INPUT = "/tmp/hw8-input"  # inside the sandbox: a read-only view of the prepared folder


@dataclass(frozen=True)
class Sandbox:
    """How to confine a submission: ``kind`` (``bwrap``, ``docker`` or ``none``), the
    folders it must not see (the course, the gradebook's folder; the grader's home and
    temporary folder are added on the machine that runs it), and for ``docker`` the image
    to run."""

    kind: str = "bwrap"
    hidden: tuple[str, ...] = field(default_factory=tuple)
    image: str = ""


def check(sandbox: Sandbox) -> None:
    """Raise GradeError, saying how to fix it, unless ``sandbox`` can run on this machine."""
    if sandbox.kind == "none":
        return
    if sandbox.kind == "docker":
        check_docker(sandbox.image)
        return
    if shutil.which(BWRAP) is None:
        raise GradeError(f"no sandbox: the bwrap command is not installed. {NO_SANDBOX_HINT}")
    probe = subprocess.run(
        [BWRAP, *BWRAP_PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
    )
    if probe.returncode != 0:
        raise GradeError(
            f"no sandbox: bwrap is installed but cannot create namespaces here "
            f"({probe.stderr.strip() or probe.returncode}); user namespaces may be disabled "
            f"(sysctl kernel.unprivileged_userns_clone=1) or blocked by the container this "
            f"runs in. {NO_SANDBOX_HINT}"
        )


def check_docker(image: str) -> None:
    """Raise GradeError unless ``docker`` runs and has ``image``."""
    if not image:
        raise GradeError("--sandbox docker needs --image IMAGE: an image with hw8[course].")
    if shutil.which("docker") is None:
        raise GradeError(f"no sandbox: the docker command is not installed. {NO_SANDBOX_HINT}")
    found = subprocess.run(
        ["docker", "image", "inspect", image],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
    )
    if found.returncode != 0:
        raise GradeError(
            f"docker cannot use the image {image!r} ({found.stderr.strip()[:300]}). Build or "
            f"pull it first; it must hold the course environment (pip install 'hw8[course]')."
        )


def python_command(sandbox: Sandbox) -> str:
    """The Python that runs nbgrader: this one, or the image's own."""
    return "python" if sandbox.kind == "docker" else sys.executable


def wrap(
    sandbox: Sandbox,
    command: list[str],
    scratch: Path,
    *,
    env: dict[str, str],
    memory: int,
    threads: int,
    name: str,
    disk: int = 0,
    out: str | None = None,
) -> list[str]:
    """``command`` (run in ``scratch``) confined by ``sandbox``; ``memory`` bytes per process
    (0: no limit); ``name`` names the container. With ``disk`` (bytes; bwrap and docker),
    ``scratch`` is a private in-memory file system of that size holding a copy of what the
    grader prepared there (:mod:`hw8.course.confine`); with ``out`` too, the command's
    standard output is the tar of that folder (relative to ``scratch``) after the run."""
    if disk and sandbox.kind != "none":
        confine = [python_command(sandbox), "-m", "hw8.course.confine", INPUT, str(scratch)]
        command = [*confine, *(["--out", out] if out else []), "--", *command]
    if sandbox.kind == "docker":
        return docker_command(sandbox, command, scratch, env, memory, threads, name, disk)
    # the process limit counts per user: only in bwrap's user namespace is it the job's own
    processes = MAX_PROCESSES if sandbox.kind == "bwrap" else 0
    command = [sys.executable, "-c", LIMIT_SNIPPET, str(memory), str(processes), *command]
    if sandbox.kind == "bwrap":
        local = [str(Path.home()), tempfile.gettempdir()]  # other scratch folders live there
        return bwrap_command(command, scratch, [*sandbox.hidden, *local], disk)
    return command


def bwrap_command(command: list[str], scratch: Path, hidden: list[str], disk: int = 0) -> list[str]:
    """``command`` in bubblewrap: read-only system, ``hidden`` folders replaced by empty
    read-only ones (this Python environment mounted back), a private ``/tmp``, ``scratch``
    the only writable folder (with ``disk``: an in-memory file system of that many bytes,
    what the grader prepared in ``scratch`` shown read-only at ``INPUT``), no network."""
    hidden = sorted({str(Path(h).resolve()) for h in hidden if Path(h).is_dir()}, key=len)
    hidden = [folder for folder in hidden if folder != "/tmp"]  # /tmp is private already
    args = [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for folder in hidden:
        args += ["--tmpfs", folder]
    for path in python_paths([*hidden, "/tmp"]):
        args += ["--ro-bind", path, path]
    if disk:
        args += ["--ro-bind", str(scratch), INPUT, "--size", str(disk), "--tmpfs", str(scratch)]
    else:
        args += ["--bind", str(scratch), str(scratch)]
    args += ["--chdir", str(scratch)]
    for folder in hidden:
        args += ["--remount-ro", folder]
    args += ["--unshare-all", "--die-with-parent", "--new-session", "--"]
    return args + command


def python_paths(hidden: list[str]) -> list[str]:
    """What the grader's Python needs that lies inside a hidden folder: its prefixes, its
    ``sys.path`` and the packages it imported (an editable ``hw8`` install, say), each
    folder once (not inside another). A path holding a hidden folder is left out:
    mounting it would show that folder again."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if "." not in name and origin and not name.startswith("__"):
            candidates.add(str(Path(origin).parent if origin.endswith("__init__.py") else origin))
    found = []
    for path in sorted({Path(c).resolve() for c in candidates if c}, key=lambda p: len(p.parts)):
        inside = any(path.is_relative_to(h) for h in hidden)
        holds = any(Path(h).is_relative_to(path) for h in hidden)
        covered = any(path.is_relative_to(kept) for kept in found)
        if inside and not holds and not covered and path.exists():
            found.append(path)
    return [str(path) for path in found]


def docker_command(
    sandbox: Sandbox,
    command: list[str],
    scratch: Path,
    env: dict[str, str],
    memory: int,
    threads: int,
    name: str,
    disk: int = 0,
) -> list[str]:
    """``command`` in a container of ``sandbox.image``: no network, read-only root, no
    capabilities, only ``scratch`` mounted (at the same path; with ``disk``, read-only at
    ``INPUT`` and a private in-memory ``scratch`` of that size), this user's ids."""
    args = ["docker", "run", "--rm", "-i", "--name", name, "--network", "none", "--read-only"]
    args += ["--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    args += [
        "--pids-limit",
        str(MAX_PROCESSES),
        "--cpus",
        str(threads),
        "--user",
        f"{os.getuid()}:{os.getgid()}",
    ]
    if memory:
        args += ["--memory", f"{memory}b"]
    if disk:
        args += ["-v", f"{scratch}:{INPUT}:ro", "--tmpfs", f"{scratch}:rw,exec,size={disk}"]
    else:
        args += ["-v", f"{scratch}:{scratch}"]
    args += ["-w", str(scratch)]
    for key, value in sorted(env.items()):
        if key != "PATH":
            args += ["-e", f"{key}={value}"]
    return [*args, sandbox.image, *command]


def stop_container(name: str) -> None:
    """Remove a container that outlived its time (the docker client does not stop it)."""
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=PROBE_TIMEOUT_S)
