"""Full-tier results: docs/results/<name>.json, written atomically, read by the pages.

Every full tier records where and when it ran (`stamp`) next to its numbers, writes the
file whole or not at all (`save`), and a page prints it with `load` (None if never run).
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import tempfile
import time

import torch

DIR = pathlib.Path(__file__).resolve().parents[1] / "docs" / "results"


def path(name: str) -> pathlib.Path:
    return DIR / f"{name}.json"


def stamp(device: str, start: float) -> dict:
    """Device, torch version, UTC date and wall seconds since `start` (time.time())."""
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "wall_seconds": round(time.time() - start, 1),
    }


def save(result: dict, out: os.PathLike | str) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half."""
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def load(where: os.PathLike | str) -> dict | None:
    """A full tier's measurements, or None where it has not been run."""
    where = pathlib.Path(where)
    return json.loads(where.read_text()) if where.exists() else None
