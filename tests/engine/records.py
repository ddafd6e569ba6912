"""Recorded outputs: one JSON file per page and device kind, written atomically.

    build/outputs/<kind>/<page path>.json   (kind: "cpu" or "cuda")
    {"page": "docs/x.md",
     "run": {"device": ..., "torch": ..., "python": ..., "commit": ..., "date": ...},
     "blocks": {<chained hash>: {"line": 12, "output": "...", "seconds": 0.01,
                                 "render_seconds": 0.2,  # drawing its figures
                                 "figures": [{"alt": "...", "svg": "<svg ..."}]}},
     "failures": {<chained hash>: {"line": 14, "error": "docs/x.md:15: ..."}}}

`failures` holds the block that failed in the page's last run (its later blocks were
skipped): `mkdocs serve` shows the error in its place; the strict build fails on it as
on any block without a current output.

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
from pathlib import Path

from .files import atomic_write
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
    atomic_write(record_path(page, kind), json.dumps(record, indent=1, sort_keys=True))


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


def cited_text(citation, record: dict) -> str | None:
    """The recorded, formatted value of a cited expression, or None if missing/stale."""
    entry = record["blocks"].get(citation.after.digest) if citation.after else None
    return (entry or {}).get("cited", {}).get(citation.body)


def render_citations(lines: list[str], citations, record: dict, *, html: bool,
                     missing=None, offset: int = 0) -> list[str]:
    """Prose lines with every `{{ ... }}` replaced: cited values by what the test run
    recorded, quotations marked as quotations. `missing(citation)` is called for a
    value with no current record (and its text is shown in its place). `offset`: lines
    of the file above `lines` (front matter), for the line numbers shown."""
    import html as _html

    lines = list(lines)
    for c in sorted(citations, key=lambda c: -c.line):
        if c.quote:
            if html:
                text = (f'<span class="dl-quote" title="Quoted from '
                        f'{_html.escape(c.source)}">{_html.escape(c.quote)}'
                        f'<span class="dl-quote-source"> (quoted: '
                        f"{_html.escape(c.source)})</span></span>")
            else:
                text = f"{c.quote} (quoted: {c.source})"
        else:
            value = cited_text(c, record)
            if value is None:
                if missing is not None:
                    missing(c)
                value = f"⟨{c.body}: not recorded⟩"
                text = (f'<span class="dl-cite dl-cite-missing">{_html.escape(value)}'
                        "</span>") if html else value
            elif html:
                text = (f'<span class="dl-cite" title="Computed by the block at line '
                        f'{c.after.line + offset}">{_html.escape(value)}</span>')
            else:
                text = value
        i = c.line - 1
        lines[i] = lines[i].replace(c.text, text, 1)
    return lines
