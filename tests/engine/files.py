"""Atomic writes: a reader sees the old file or the new one, never half of either.

The one way the engine writes a file that something else may read meanwhile: records,
executed labs, drift reports, built figures.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path`, creating its folder, in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)  # readable as any other built file (mkstemp gives 0600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
