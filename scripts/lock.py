"""The course environment's lock file: write it from a virtual environment, check one against it.

    python scripts/lock.py check [--python .venv/bin/python]   # exit 1 unless the env IS the lock
    python scripts/lock.py write [--python .venv/bin/python]   # requirements/lock.txt := pip freeze

pyproject.toml says what hw8 needs, as ranges; requirements/lock.txt says exactly what the
course environment (make demo, make test, CI, the grading machine, environment.yml) is:
every installed distribution, pinned with ``==``, hw8 itself excluded. ``make`` installs
the lock first and then ``pip install -e ".[course,dev]" -c requirements/lock.txt``, then
runs ``check``: the environment must be the lock, nothing more, nothing less, no version moved.

After adding or changing a dependency: install it into .venv (``.venv/bin/pip install -e
".[course,dev]" -c requirements/lock.txt``, then the new package), run ``write``, review the
diff, commit. Local version labels are dropped (``torch==2.13.0+cpu`` is locked as
``torch==2.13.0``, which a CUDA build of 2.13.0 satisfies too).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
HEADER = """\
# The course environment, exactly: make demo / make test, CI, the grading machine and
# environment.yml install this file (pip install -r requirements/lock.txt, then
# pip install -e ".[course,dev]" -c requirements/lock.txt). hw8's own ranges are in
# pyproject.toml. Written by `python scripts/lock.py write` (pip freeze of .venv, Python 3.11,
# Linux x86_64); `python scripts/lock.py check` tells whether an environment matches it.
"""
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")
PROJECT = "hw8"


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public(version: str) -> str:
    """The version without its local label: 2.13.0+cpu -> 2.13.0."""
    return version.split("+", 1)[0]


def parse_pins(text: str) -> dict[str, str]:
    """{normalized name: version} from ``name==version`` lines; comments and blanks skipped.

    Editable installs and anything that is not an exact pin raise ValueError, so a lock file
    cannot quietly hold a range.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        if not match:
            raise ValueError(f"line {number}: not an exact pin (name==version): {raw!r}")
        pins[normalize(match.group(1))] = match.group(2)
    return pins


def read_lock(path: Path = LOCK) -> dict[str, str]:
    return parse_pins(path.read_text())


def freeze(python: str | Path) -> dict[str, str]:
    """What is installed in the environment of ``python``: {normalized name: version}.

    The project itself (editable or not) is left out; so are pip, setuptools and wheel, as
    ``pip freeze`` does.
    """
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins: dict[str, str] = {}
    for line in out.splitlines():
        if not line.strip() or line.startswith(("#", "-e ")):
            continue
        if " @ " in line:  # a direct reference (hw8 from its wheel): "name @ url"
            name, url = line.split(" @ ", 1)
            pins[normalize(name)] = f"@ {url}"
        else:
            pins.update(parse_pins(line))
    pins.pop(PROJECT, None)
    return pins


def differences(expected: dict[str, str], found: dict[str, str], *, extra: bool = True) -> list:
    """Readable lines for every package whose version differs, is missing, or (with
    ``extra``) is installed but not expected. Versions compare without local labels."""
    lines = []
    for name in sorted(expected):
        if name not in found:
            lines.append(f"{name}=={expected[name]}: missing")
        elif public(found[name]) != public(expected[name]):
            lines.append(f"{name}: expected {expected[name]}, found {found[name]}")
    if extra:
        lines += [
            f"{name}=={found[name]}: not expected" for name in sorted(set(found) - set(expected))
        ]
    return lines


def write(python: str | Path, path: Path = LOCK) -> None:
    pins = freeze(python)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{name}=={public(version)}\n" for name, version in sorted(pins.items()))
    path.write_text(HEADER + body)
    print(f"wrote {path.relative_to(ROOT)}: {len(pins)} packages")


def check(python: str | Path, path: Path = LOCK) -> int:
    problems = differences(read_lock(path), freeze(python))
    if problems:
        print(f"{python}: the environment is not {path.relative_to(ROOT)}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print(
            "  (a new dependency? install it, then `python scripts/lock.py write`)",
            file=sys.stderr,
        )
        return 1
    print(f"{python}: matches {path.relative_to(ROOT)} ({len(read_lock(path))} packages)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "write"])
    parser.add_argument("--python", default=sys.executable, help="the environment's python")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.python)
        return 0
    return check(args.python)


if __name__ == "__main__":
    sys.exit(main())
