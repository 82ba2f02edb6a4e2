"""Writing files so that no half-written file is ever left behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: Path | str, write: Callable[[IO], None], *, text: bool = False) -> Path:
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it to ``path``.

    The rename is atomic: ``path`` holds either its old content or the whole new one, and
    the temporary file is removed if ``write`` fails or is interrupted.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        stream = os.fdopen(handle, "w", newline="") if text else os.fdopen(handle, "wb")
        with stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(data: dict, path: Path | str) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return write_atomically(path, lambda s: s.write(json.dumps(data, indent=2) + "\n"), text=True)
