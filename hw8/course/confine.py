"""Inside the sandbox: a private, size-limited working folder, and nothing left behind.

``python -m hw8.course.confine INPUT WORK [--out FOLDER] -- COMMAND...`` runs first in
the sandbox (``hw8.course.sandbox``), where WORK is a size-limited in-memory file system
(bubblewrap's ``--size`` and ``--tmpfs``) and INPUT a read-only view of what the grader
prepared. It copies INPUT into WORK, runs COMMAND there, and when COMMAND ends:

- kills every other process of the sandbox (it is the sandbox's first process, pid 2 in
  its own process namespace), so nothing a submission started can write later;
- with ``--out``, writes FOLDER (inside WORK) as an uncompressed tar to its standard
  output, COMMAND's own output having gone to standard error.

A submission that fills its folder fills only its own file system: the other jobs' and
the grader's disks never see it. The grader reads the tar as data (``read_tar``).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

SANDBOX_PID = 2  # bubblewrap's init is 1, the command it starts is 2


def main(argv: list[str] | None = None) -> int:
    """Copy, run, clean up, hand back (see the module notes)."""
    args = list(argv or sys.argv[1:])
    split = args.index("--")
    options, command = args[:split], args[split + 1 :]
    source, work = Path(options[0]), Path(options[1])
    out = options[3] if len(options) > 3 and options[2] == "--out" else None
    shutil.copytree(source, work, symlinks=True, dirs_exist_ok=True)
    stdout = sys.stderr if out else None
    returncode = subprocess.call(command, cwd=work, stdout=stdout)
    if os.getpid() == SANDBOX_PID:
        kill_the_rest()
    if out:
        write_tar(work / out, sys.stdout.buffer)
    return returncode


def kill_the_rest() -> None:
    """Kill every process of this process namespace but its init and this one."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, os.getpid()):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def write_tar(folder: Path, stream) -> None:
    """The regular files under ``folder`` as a tar (links and special files left out)."""
    with tarfile.open(fileobj=stream, mode="w|") as tar:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    stream.flush()


def read_tar(data: bytes, limit: int) -> dict[str, tuple[bytes, int]]:
    """The files of a tar written by :func:`write_tar` (path -> (bytes, mode)), read as
    data: only regular files with relative paths; ValueError past ``limit`` bytes."""
    files, total = {}, 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            path = PurePosixPath(member.name)
            if not member.isfile() or path.is_absolute() or ".." in path.parts:
                continue
            total += member.size
            if total > limit:
                raise ValueError(f"the autograded folder is larger than {limit} bytes")
            content = tar.extractfile(member).read()
            files[path.as_posix()] = (content, member.mode & 0o777)
    return files


if __name__ == "__main__":
    sys.exit(main())
