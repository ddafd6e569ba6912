"""Notebooks: every concept page as a Jupyter notebook, and the labs.

Page notebooks (made by the site build from the page itself; the build runs no code):
- prose becomes Markdown cells (admonition, details and tab titles kept as bold lines),
  each running Python block a code cell with its snippet includes expanded, and a
  `notest` block a Markdown code listing;
- a first code cell makes the shared `snippets` package importable outside the
  repository and seeds like the test run does: it downloads from the published site
  the modules the page needs (`snippet_modules`: its imports, parsed, followed through
  the package) and, where it uses snippets/results.py, the full-tier results
  (docs/results/*.json) so that it prints what the page shows;
- published beside the page as `<page>.ipynb`; the page links it and "Open in Colab"
  (Colab opens the copy that the pages workflow pushes to the `notebooks` branch).

Labs (docs/labs/*.ipynb, stored without outputs) are executed by the test run
(`execute_lab`, collected in plugin.py), which keeps the executed copy in
build/outputs/<kind>/docs/labs/<name>.ipynb stamped with the source's sha256. The build
renders that copy through mkdocs-jupyter; a missing or stale copy is reported, which
fails the strict build.
"""

from __future__ import annotations

import ast
import hashlib
import html
import importlib.util
import json
import logging
import os
import posixpath
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.engine import catalogue, mathml, pages, records  # noqa: E402
from tests.engine.files import atomic_write  # noqa: E402

log = logging.getLogger("mkdocs.plugins.dlnotes.notebooks")
ROOT = pages.ROOT
SNIPPETS_ENV = "DLNOTES_SNIPPETS_URL"  # where a notebook fetches snippets from
RESULTS_ENV = "DLNOTES_RESULTS_URL"  # where it fetches full-tier results from
_OPENER = re.compile(
    r'^(?P<indent> *)(?:!!!|\?\?\?\+?|===!?\+?) *(?P<kind>\w+)?(?: +"(?P<title>[^"]*)")?'
    r"|^(?P<tindent> *)===!?\+? +\"(?P<tab>[^\"]*)\""
)


# ---------------------------------------------------------------- page -> notebook

SNIPPETS = ROOT / "snippets"
snippet_modules = pages.snippet_modules  # what a page imports from snippets/
RESULTS = ROOT / "docs" / "results"  # snippets/results.py: <snippets>/../docs/results


def results_files(modules: list[str], results: Path = RESULTS) -> list[str]:
    """The full-tier results a notebook needs: all of docs/results/*.json where the
    page uses snippets/results.py (which reads them), so it prints what the page shows."""
    if "results" not in modules:
        return []
    return sorted(p.name for p in results.glob("*.json"))


def setup_cell(modules: list[str], site_url: str, results: Iterable[str] = ()) -> str:
    """The first cell: outside the repository it downloads the snippets modules (and
    the full-tier results they read) the page uses from the site; then it seeds."""
    seeds = ("import random, numpy, torch  # the same seeds as the page's test run\n"
             "random.seed(0); numpy.random.seed(0); torch.manual_seed(0)")
    if not modules:
        return seeds
    lines = [
        "# Set-up. DL Notes pages share code through the `snippets` package; outside",
        "# the repository this cell downloads the modules this page uses from the site.",
        "import importlib, importlib.util, os, pathlib, urllib.request",
        f'base = os.environ.get("{SNIPPETS_ENV}", "{site_url}snippets/")',
    ]
    if results:
        lines.append(f'results_base = os.environ.get("{RESULTS_ENV}", "{site_url}results/")')
    lines += [
        'if importlib.util.find_spec("snippets") is None:',
        f"    for name in {json.dumps([f'{m}.py' for m in modules])}:",
        '        pathlib.Path("snippets", name).parent.mkdir(parents=True, exist_ok=True)',
        '        urllib.request.urlretrieve(base + name, "snippets/" + name)',
    ]
    if results:  # where snippets/results.py looks: <snippets>/../docs/results
        lines += [
            "    # the full-tier results that snippets/results.py reads",
            '    pathlib.Path("docs/results").mkdir(parents=True, exist_ok=True)',
            f"    for name in {json.dumps(list(results))}:",
            '        urllib.request.urlretrieve(results_base + name, "docs/results/" + name)',
        ]
    lines += ["    importlib.invalidate_caches()", "", seeds]
    return "\n".join(lines)


def _flat_prose(text: str) -> list[str]:
    """The page's lines with containers dedented and their openers as bold titles."""
    flat = pages.flatten_containers(text).split("\n")
    for i, line in enumerate(text.split("\n")):
        m = _OPENER.match(line)
        if m and line.strip()[:3] in ("!!!", "???", "===") and not flat[i].strip():
            title = m["title"] or m["tab"] or (m["kind"] or "").capitalize()
            flat[i] = f"**{title}**" if title else ""
    return flat


def _cell_text(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def page_notebook(path: Path, site_url: str) -> nbformat.NotebookNode:
    """The page as a notebook: its prose and its blocks, in order."""
    text = path.read_text("utf8")
    # values the prose cites, as the page's recorded run computed them
    lines = records.render_citations(_flat_prose(text), pages.read_citations(path, text),
                                     records.load(path, "cpu"), html=False)
    lines = catalogue.expand_cross_links(lines, path)  # the Builds on / Leads to lines
    start = 0
    if lines and lines[0].strip() == "---":  # front matter
        start = lines.index("---", 1) + 1
    blocks = pages.read_page(path)
    cells = []
    sources = []
    for b in blocks:
        if b.runs:
            try:
                ast.parse(b.source)
            except SyntaxError as e:
                raise pages.PageError(path, b.line, f"not Python: {e}") from None
            sources.append(b.source)
    modules = snippet_modules(sources)
    cells.append(nbformat.v4.new_code_cell(
        setup_cell(modules, site_url, results_files(modules))))
    at = start
    solutions = _solution_lines(text)
    for b in blocks:
        prose = pages.expand_snippets(_cell_text(lines[at : b.line - 1]))
        if prose.strip():
            cells.append(nbformat.v4.new_markdown_cell(prose))
        source = b.source.rstrip("\n")
        if b.runs and b.line in solutions:  # an exercise's solution: try first
            cells.append(nbformat.v4.new_code_cell(source, metadata={
                "tags": ["solution"], "jupyter": {"source_hidden": True},
                "cellView": "form"}))
        elif b.runs:
            cells.append(nbformat.v4.new_code_cell(source))
        else:
            cells.append(nbformat.v4.new_markdown_cell(f"```python\n{source}\n```"))
        at = b.end_line
    rest = _cell_text(lines[at:])
    if rest.strip():
        cells.append(nbformat.v4.new_markdown_cell(rest))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    nb.metadata["dlnotes"] = {"page": pages._rel(path)}
    nbformat.validate(nb)
    return nb


_SOLUTION_OPENER = re.compile(r'^(?P<indent> *)\?\?\?\+? +\w+ +"Solution')


def _solution_lines(text: str) -> set[int]:
    """Line numbers (1-based) inside collapsed `??? ... "Solution..."` blocks."""
    lines, inside = text.split("\n"), set()
    for i, line in enumerate(lines):
        m = _SOLUTION_OPENER.match(line)
        if not m:
            continue
        indent = len(m["indent"]) + 4
        for j in range(i + 1, len(lines)):
            if lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) < indent:
                break
            inside.add(j + 1)
    return inside


def notebook_uri(src_uri: str) -> str:
    return src_uri.removesuffix(".md") + ".ipynb"


# ---------------------------------------------------------------- labs


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
import random, numpy, torch
random.seed(0); numpy.random.seed(0); torch.manual_seed(0)"""


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
    site_url = config.get("site_url") or "/"
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
        elif file.is_documentation_page() and file.src_uri.endswith(".md"):
            path = Path(file.abs_src_path)
            if not any(b.runs for b in pages.read_page(path)):
                continue
            files.append(File.generated(config, notebook_uri(file.src_uri),
                                        content=_page_notebook_text(path, site_url)))
    for module in sorted(SNIPPETS.rglob("*.py")):  # for the page notebooks
        rel = module.relative_to(SNIPPETS).as_posix()
        files.append(File.generated(config, f"snippets/{rel}", abs_src_path=str(module)))
    return files


_notebooks: dict[str, tuple[tuple, str]] = {}  # page -> (its stamp, its notebook)


def _page_notebook_text(path: Path, site_url: str) -> str:
    """A page's notebook, made again when the page or its record changed (a served
    site's rebuilds; the edit loop touches a page whose record it wrote)."""
    record = records.record_path(path, "cpu")
    stamp = (path.stat().st_mtime_ns, site_url,
             record.stat().st_mtime_ns if record.exists() else 0)
    cached = _notebooks.get(str(path))
    if cached is None or cached[0] != stamp:
        cached = _notebooks[str(path)] = (
            stamp, nbformat.writes(page_notebook(path, site_url)))
    return cached[1]


def _links_bar(content: str, page, config, files) -> str:
    """A page with code links its notebook and Colab, under the stamp."""
    uri = notebook_uri(page.file.src_uri)
    if files.get_file_from_path(uri) is None:
        return content
    here = page.url if page.url.endswith("/") or not page.url else posixpath.dirname(page.url)
    href = posixpath.relpath(uri, here.rstrip("/") or ".")
    repo = config.get("extra", {}).get("notebooks_repository")
    links = [f'<a class="dl-notebook" href="{href}" download>Download notebook</a>']
    if repo:
        colab = f"https://colab.research.google.com/github/{repo}/{uri}"
        links.append(f'<a class="dl-colab" href="{colab}">Open in Colab</a>')
    bar = '<p class="dl-links">' + " · ".join(links) + "</p>"
    m = _AFTER_STAMP.search(content)
    if m is None:
        return content
    return content[: m.end()] + "\n" + bar + content[m.end() :]


# after the page title, and after the stamp under it (render.py) where there is one
_AFTER_STAMP = re.compile(r'</h1>(?:\s*<p class="dl-stamp">.*?</p>)?', re.S)


_THIRD_PARTY = re.compile(
    r'<script\b[^>]*\bsrc="(?:(?:https?:)?//[^"]*)?"[^>]*>\s*</script>'
    r"|<script\b[^>]*>(?:(?!</script>).)*?(?:MathJax|mermaid)(?:(?!</script>).)*</script>",
    re.S,
)


_SKIP = re.compile(r"(<(pre|code|script|style|svg)\b.*?</\2>)", re.S)
_TEX = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S)


def _math(content: str, rel: str) -> str:
    """$...$ and $$...$$ in a lab's Markdown cells to MathML (no MathJax, no CDN)."""
    def one(m):
        return mathml.to_mathml(m[1] or m[2], bool(m[1]), f"docs/{rel}") or m[0]

    parts = _SKIP.split(content)
    out = []
    for i in range(0, len(parts), 3):  # prose, skipped element, its tag name
        out.append(_TEX.sub(one, parts[i]))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)


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
        return _links_bar(content, page, config, files)
    content = _math(_THIRD_PARTY.sub("", content), page.file.src_uri)
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


def main(argv: list[str]) -> int:
    """`python -m tests.engine.notebooks DIR`: every page's notebook, for Colab."""
    from mkdocs.config import load_config

    out = Path(argv[0])
    site_url = load_config(str(ROOT / "mkdocs.yml")).site_url or "/"
    count = 0
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if any(b.runs for b in pages.read_page(page)):
            rel = page.relative_to(ROOT / "docs").as_posix()
            dest = out / notebook_uri(rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(page_notebook(page, site_url), dest)
            count += 1
    print(f"wrote {count} notebooks into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
