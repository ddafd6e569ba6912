"""Page notebooks: every concept page with code as a Jupyter notebook.

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

Labs (docs/labs/*.ipynb) are labs.py's concern.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import posixpath
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.engine import catalogue, pages, records  # noqa: E402

ROOT = pages.ROOT
SNIPPETS_ENV = "DLNOTES_SNIPPETS_URL"  # where a notebook fetches snippets from
RESULTS_ENV = "DLNOTES_RESULTS_URL"  # where it fetches full-tier results from


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
        opener = pages.container_opener(line)
        if opener and not flat[i].strip():  # not inside a fence: flattening blanked it
            title = opener.heading
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
    start = pages.front_matter_lines(text)
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


def _solution_lines(text: str) -> set[int]:
    """Line numbers (1-based) inside collapsed `??? ... "Solution..."` blocks."""
    lines, inside = text.split("\n"), set()
    for i, line in enumerate(lines):
        opener = pages.container_opener(line)
        if not (opener and opener.kind == "details"
                and (opener.title or "").startswith("Solution")):
            continue
        indent = opener.indent + 4
        for j in range(i + 1, len(lines)):
            if lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) < indent:
                break
            inside.add(j + 1)
    return inside


def notebook_uri(src_uri: str) -> str:
    return src_uri.removesuffix(".md") + ".ipynb"


# ---------------------------------------------------------------- MkDocs hooks

@event_priority(100)  # with the labs' hook (labs.py), before mkdocs-jupyter
def on_files(files, config):
    site_url = config.get("site_url") or "/"
    for file in list(files):
        if file.is_documentation_page() and file.src_uri.endswith(".md"):
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


def on_page_content(content, page, config, files):
    """A page with code: links to its notebook and Colab, under the stamp."""
    if not page.file.src_uri.endswith(".md"):
        return content
    return _links_bar(content, page, config, files)


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
