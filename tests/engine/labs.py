"""Labs: longer notebooks in docs/labs/*.ipynb, stored without outputs.

The test run executes each lab top to bottom in a fresh kernel (`execute_lab`, collected
in plugin.py) and keeps the executed copy in build/outputs/<kind>/docs/labs/<name>.ipynb,
stamped with the source's sha256 (`source_sha256`): a failing cell fails the suite.
`lab_state` says whether that copy is current, stale or missing; `tests/dev.py serve`
re-runs the `stale_labs` first.

As MkDocs hooks (mkdocs.yml), the build renders the current executed copy through
mkdocs-jupyter, with a stamp, a download link, math as MathML, links to pages resolved
and nothing loaded from third-party hosts; a missing or stale copy is reported, which
fails the strict build.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import posixpath
import re
import sys
import time
from pathlib import Path

import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.engine import mathml, pages, records  # noqa: E402
from tests.engine.files import atomic_write  # noqa: E402

log = logging.getLogger("mkdocs.plugins.dlnotes.labs")
ROOT = pages.ROOT


def source_sha256(path: Path) -> str:
    """A lab's identity: its cells' sources and types (outputs and ids ignored)."""
    nb = nbformat.read(path, as_version=4)
    cells = [(c.cell_type, c.source) for c in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def executed_path(path: Path, kind: str = "cpu") -> Path:
    return records.outputs_dir() / kind / pages._rel(path).lstrip("/")


def lab_state(path: Path, kind: str = "cpu") -> tuple[str, dict]:
    """Whether a lab's executed copy is "current", "stale" or "missing", and its metadata.

    Current means it was executed from the lab's present cells (source_sha256). The
    build renders only a current copy; `tests/dev.py serve` re-runs the others first.
    """
    done = executed_path(path, kind)
    if not done.exists():
        return "missing", {}
    meta = nbformat.read(done, as_version=4).metadata.get("dlnotes", {})
    current = meta.get("source_sha256") == source_sha256(path)
    return ("current" if current else "stale"), meta


def labs() -> list[Path]:
    """The lab notebooks, as the test run collects them (docs/labs/*.ipynb)."""
    return sorted((ROOT / "docs" / "labs").glob("*.ipynb"))


def stale_labs(kind: str = "cpu") -> list[str]:
    """Labs whose executed copy is missing or stale, as paths to give pytest."""
    return [pages._rel(lab) for lab in labs() if lab_state(lab, kind)[0] != "current"]


_LAB_SETUP = """\
%matplotlib inline
%config InlineBackend.figure_formats = ["svg"]
import gc, random, numpy, torch, matplotlib.pyplot
random.seed(0); numpy.random.seed(0); torch.manual_seed(0)
gc.collect(); gc.freeze()"""
# (the freeze: what the kernel loaded so far, torch above all, is left out of every
# later cycle collection, as the page runner does between pages; a lab building many
# small objects, micrograd's graphs, would otherwise rescan it again and again)


class LabError(Exception):
    """A lab cell failed: the message names the notebook and the cell."""


def execute_lab(path: Path, kind: str | None = None, timeout: int = 600) -> Path:
    """Run a lab top to bottom in a fresh kernel; keep the executed copy.

    On failure the stale executed copy is removed and LabError names the cell.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    kind = kind or records.device_kind()
    rel = pages._rel(path)
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_LAB_SETUP))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
    )
    out = executed_path(path, kind)
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as e:
        out.unlink(missing_ok=True)
        failed = next(
            (i for i, c in enumerate(nb.cells)
             if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        # nb.cells[0] is the set-up, so index k is the lab's cell k counted from 1
        where = f"cell {failed} of {len(nb.cells) - 1}" if failed else "its set-up"
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().split("\n")
        raise LabError(f"{rel}: {where} failed:\n" + "\n".join(text[-30:])) from None
    nb.cells.pop(0)
    for cell in nb.cells:  # number the lab's own cells from 1, without the set-up
        if cell.cell_type == "code" and cell.get("execution_count"):
            cell.execution_count -= 1
            for o in cell.outputs:
                if o.get("execution_count"):
                    o.execution_count -= 1
    nb.metadata["dlnotes"] = {
        "source_sha256": source_sha256(path),
        "seconds": round(time.perf_counter() - start, 2),
        **records.environment(),
    }
    atomic_write(out, nbformat.writes(nb).rstrip("\n") + "\n")
    return out


# ---------------------------------------------------------------- MkDocs hooks

_labs: dict[str, dict] = {}  # src_uri -> executed copy's metadata


@event_priority(100)  # before mkdocs-jupyter wraps the lab files
def on_files(files, config):
    for file in list(files):
        if file.src_uri.endswith(".ipynb") and file.src_uri.startswith("labs/"):
            src = Path(file.abs_src_path)
            rel = pages._rel(src)
            state, meta = lab_state(src, "cpu")
            if state == "current":
                files.remove(file)
                files.append(File(file.src_uri, str(executed_path(ROOT / "docs", "cpu")),
                                  config["site_dir"], config["use_directory_urls"]))
                _labs[file.src_uri] = meta
            else:
                log.warning(f"{rel}: executed copy is {state}; refresh it with "
                            f"`python3 tests/dev.py test {rel}`")
                _labs[file.src_uri] = {"state": state}
    return files


_THIRD_PARTY = re.compile(
    r'<script\b[^>]*\bsrc="(?:(?:https?:)?//[^"]*)?"[^>]*>\s*</script>'
    r"|<script\b[^>]*>(?:(?!</script>).)*?(?:MathJax|mermaid)(?:(?!</script>).)*</script>",
    re.S,
)


_HREF = re.compile(r'href="(?![a-z]+:|#|/)([^"#]+\.md)(#[^"]*)?"')


def _md_links(content: str, page, files) -> str:
    """A lab's links to pages (`../foundations/x.md`) become links to their URLs."""
    here = posixpath.dirname(page.file.src_uri)
    base = page.url if page.url.endswith("/") else posixpath.dirname(page.url)

    def one(m):
        target = posixpath.normpath(posixpath.join(here, html.unescape(m[1])))
        file = files.get_file_from_path(target)
        if file is None:
            log.warning(f"docs/{page.file.src_uri}: link to {m[1]}, which is not a page")
            return m[0]
        url = posixpath.relpath(file.url or ".", base.rstrip("/") or ".")
        return f'href="{url}{"/" if file.url.endswith("/") else ""}{m[2] or ""}"'

    return _HREF.sub(one, content)


def on_page_content(content, page, config, files):
    """Labs: nothing loaded from third-party hosts; a stamp and a download link."""
    meta = _labs.get(page.file.src_uri)
    if meta is None:
        return content
    content = mathml.dollars_to_mathml(_THIRD_PARTY.sub("", content),
                                       f"docs/{page.file.src_uri}")
    content = _md_links(content, page, files)
    name = posixpath.basename(page.file.src_uri)
    if "source_sha256" in meta:
        stamp = (f"Executed on {meta['device']} · torch {meta['torch']} · commit "
                 f"<code>{meta['commit']}</code> · {meta['date']} · "
                 f"{meta['seconds']:.0f} s")
    else:
        stamp = f"Executed copy {meta['state']}: outputs are not shown."
    head = (f'<p class="dl-stamp">{stamp}</p><p class="dl-links">'
            f'<a class="dl-notebook" href="{name}" download>Download notebook</a></p>')
    at = content.find("</h1>")
    at = at + len("</h1>") if at >= 0 else 0
    return content[:at] + head + content[at:]
