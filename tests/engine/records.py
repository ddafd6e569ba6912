"""Recorded outputs: one JSON file per page and device kind, written atomically.

    build/outputs/<kind>/<page path>.json   (kind: "cpu" or "cuda")
    {"page": "docs/x.md",
     "run": {"device": ..., "torch": ..., "python": ..., "commit": ..., "date": ...},
     "blocks": {<chained hash>: {"line": 12, "output": "...", "seconds": 0.01,
                                 "render_seconds": 0.2,  # drawing its figures
                                 "figures": [{"alt": "...", "svg": "<svg ..."}]}}}

A block's entry is found by its chained hash (pages.Block.digest), so an entry recorded
before the block or an earlier block changed is simply not found: that is staleness.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from .pages import ROOT, _rel


def outputs_dir() -> Path:
    return Path(os.environ.get("DLNOTES_OUTPUTS", ROOT / "build" / "outputs"))


def record_path(page: Path, kind: str) -> Path:
    return outputs_dir() / kind / (_rel(page).lstrip("/") + ".json")


def load(page: Path, kind: str) -> dict:
    path = record_path(page, kind)
    if not path.exists():
        return {"page": _rel(page), "run": {}, "blocks": {}}
    return json.loads(path.read_text("utf8"))


def save(page: Path, kind: str, record: dict) -> None:
    """Write a record atomically: a reader sees the old file or the new one, never half."""
    path = record_path(page, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=None)
def environment() -> dict:
    """What a page ran on: shown as the page's stamp."""
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    return {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }


def _commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    sha = git("rev-parse", "--short=10", "HEAD")
    if not sha:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "docs", "snippets")
    return sha + ("+dirty" if dirty else "")


def stale_pages() -> list[str]:
    """Pages with a running block whose CPU output is missing or stale."""
    from .pages import read_page

    stale = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        digests = [b.digest for b in read_page(page) if b.runs]
        recorded = load(page, "cpu")["blocks"]
        if any(d not in recorded for d in digests):
            stale.append(_rel(page))
    return stale


def block_seconds(kind: str = "cpu") -> dict:
    """Sum of the blocks' own run times over the current records of every page."""
    from .pages import read_page

    count, seconds, render = 0, 0.0, 0.0
    for page in sorted((ROOT / "docs").rglob("*.md")):
        recorded = load(page, kind)["blocks"]
        for block in read_page(page):
            if block.runs and block.digest in recorded:
                count += 1
                seconds += recorded[block.digest]["seconds"]
                render += recorded[block.digest].get("render_seconds", 0.0)
    return {"count": count, "seconds": seconds, "render_seconds": render}
