"""Rendering: what a reader sees of a test run, as a Python-Markdown extension.

mkdocs.yml lists it under `markdown_extensions` (`tests.engine.render`), so every builder
that reads that file and runs Python-Markdown renders the same page: MkDocs (the primary
build) and Zensical (which runs no MkDocs hooks). It executes no code.

- Under each Python block, the output and figures that the test run recorded for it
  (records.py); a block without a current record gets a placeholder saying how to refresh
  it. Where a block's CUDA output differs from its CPU output, CPU and GPU tabs; the GPU
  tab says when the two agree within tolerance (drift.py), and a third tab shows the
  difference when they do not.
- Cited values in prose (`{{ expr:fmt }}`) from the recorded run; quotations marked.
- Under each page title, a stamp: how many blocks ran, on what, at which commit and date;
  on a page about speed (front matter `gpu_figures: true`), where its GPU figures stand;
  when the published drift report finds the page's outputs changed, a link to the
  PyTorch versions page.
- Math from pymdownx.arithmatex as MathML (mathml.py), in the page and its contents.
- Recorded outputs and exercise solutions are kept out of the search index.

A builder hands the extension a page's Markdown, not its path. Records are therefore found
by each block's chained digest (pages.Block.digest), through an index of every record
(OutputStore): a block edited since its run, or after an edited earlier block, has no
record under its new digest, so staleness is exactly as strict as on the page's own record.
The page itself is found by its text among docs/ (SourceIndex) for what only the file
knows: its front matter, its path (for the drift link and the placeholder's command) and
the lines above the Markdown (for the line numbers shown). Strict-build errors naming
`page:line` come from the MkDocs hook (mkdocs_hooks.py), which calls check_page().
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import posixpath
import re
from pathlib import Path

import yaml
from markdown import Extension
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from . import drift, mathml, pages, records

VERSIONS_PAGE = "versions.md"
KINDS = ("cpu", "cuda")
# Under `mkdocs serve` (set by mkdocs_hooks.on_startup): a block that failed in the
# page's last run shows its error, page:line, in place of its output. A build never
# does: there the strict check fails on the block instead.
SHOW_FAILURES = False


# ---------------------------------------------------------------- finding records


def _stamp(paths) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


class OutputStore:
    """Every recorded block of one kind, found by its chained digest.

    Built from the per-page records under records.outputs_dir(), once per builder
    process and again when one of them changes (so a served site shows a fresh run):
    `OutputStore.current(root, kind)`."""

    _cache: dict[tuple, tuple[tuple, OutputStore]] = {}

    def __init__(self, found: dict[str, list[tuple[dict, dict]]]):
        self.found = found  # digest -> [(record without its blocks, entry)]

    @classmethod
    def current(cls, root: Path, kind: str) -> OutputStore:
        files = sorted((Path(root) / kind).rglob("*.json"))
        stamp = _stamp(files)
        key = (str(root), kind)
        cached = cls._cache.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        found: dict[str, list[tuple[dict, dict]]] = {}
        for path in files:
            record = json.loads(path.read_text("utf8"))
            head = {"page": record.get("page", ""), "run": record.get("run") or {}}
            for digest, entry in record.get("blocks", {}).items():
                found.setdefault(digest, []).append((head, entry))
        store = cls(found)
        cls._cache[key] = (stamp, store)
        return store

    def lookup(self, digest: str, page: str | None = None) -> tuple[dict, dict] | None:
        """(record head, entry) of a block, preferring the record of `page` (two pages
        may begin with the same code, and their blocks then share digests)."""
        hits = self.found.get(digest) or []
        for hit in hits:
            if hit[0]["page"] == page:
                return hit
        return hits[0] if hits else None

    def cited(self, digest: str, body: str) -> str | None:
        for _, entry in self.found.get(digest) or []:
            if body in entry.get("cited", {}):
                return entry["cited"][body]
        return None


@dataclasses.dataclass(frozen=True)
class Source:
    """The file a page's Markdown came from."""

    path: Path
    rel: str  # "docs/x/y.md", as records and messages name it
    uri: str  # "x/y.md", relative to docs/
    offset: int  # lines of the file above the Markdown (front matter)
    meta: dict


def split_front_matter(text: str) -> tuple[dict, str]:
    """(front matter as data, the page below it); unreadable YAML counts as none."""
    source, body = pages.split_front_matter(text)
    try:
        meta = yaml.safe_load(source) or {}
    except yaml.YAMLError:
        meta = {}
    return (meta if isinstance(meta, dict) else {}), body


class SourceIndex:
    """The pages under docs_dir, found by their Markdown without front matter."""

    _cache: dict[str, tuple[tuple, dict]] = {}

    def __init__(self, docs_dir: Path):
        self.docs_dir = Path(docs_dir)

    def find(self, markdown: str) -> Source | None:
        files = sorted(self.docs_dir.rglob("*.md"))
        stamp = _stamp(files)
        key = str(self.docs_dir)
        cached = self._cache.get(key)
        if not cached or cached[0] != stamp:
            bodies = {}
            for path in files:
                bodies.setdefault(split_front_matter(path.read_text("utf8"))[1].strip(),
                                  path)
            cached = self._cache[key] = (stamp, bodies)
        path = cached[1].get(markdown.strip())
        if path is None:
            return None
        raw = path.read_text("utf8")
        meta, body = split_front_matter(raw)
        at = raw.find(markdown.strip()[:200])
        return Source(path=path, rel=pages._rel(path),
                      uri=path.relative_to(self.docs_dir).as_posix(),
                      offset=raw[: max(at, 0)].count("\n"), meta=meta)


# ---------------------------------------------------------------- the page


def render_markdown(text: str, source: Source | None, outputs: Path, docs_dir: Path,
                    use_directory_urls: bool = True) -> str:
    """A page's Markdown with recorded outputs, figures, tabs, cited values and stamp."""
    cpu_store = OutputStore.current(outputs, "cpu")
    gpu_store = OutputStore.current(outputs, "cuda")
    where = Path(source.path if source else "page.md")
    blocks = [b for b in pages.read_page(where, text=text) if b.runs]
    citations = pages.read_citations(where, text=text)
    page = source.rel if source else None
    offset = source.offset if source else 0
    rel = page or "PAGE"
    lines = text.split("\n")
    if not blocks:  # no code: quotations only
        if "{{" not in text:
            return text
        return "\n".join(records.render_citations(
            lines, citations, {"blocks": {}}, html=True))

    cited = {}  # what render_citations reads: {digest: {"cited": {...}}}
    for c in citations:
        if c.after is not None and not c.quote:
            value = cpu_store.cited(c.after.digest, c.body)
            if value is not None:
                cited.setdefault(c.after.digest, {"cited": {}})["cited"][c.body] = value
    lines = records.render_citations(lines, citations, {"blocks": cited}, html=True,
                                     offset=offset)
    own = records.load(source.path, "cpu") if source else {"blocks": {}}
    recorded_lines = {v["line"] for v in own["blocks"].values()}
    failures = (own.get("failures") or {}) if SHOW_FAILURES else {}
    cpu_run, gpu_run, cpu_n, gpu_n = {}, {}, 0, 0
    for block in reversed(blocks):  # insert from the bottom so line numbers hold
        hit = cpu_store.lookup(block.digest, page)
        pad = " " * block.indent
        if hit is None and block.digest in failures:
            extra = _failed(failures[block.digest])
        elif hit is None:
            state = "stale" if block.line + offset in recorded_lines else "missing"
            extra = _placeholder(rel, state)
        else:
            head, entry = hit
            cpu_n += 1
            cpu_run = cpu_run or head["run"]
            extra = _output(entry["output"])
            gpu = gpu_store.lookup(block.digest, page)
            if gpu is not None:
                gpu_n += 1
                gpu_run = gpu_run or gpu[0]["run"]
                if gpu[1]["output"] != entry["output"]:
                    extra = _device_tabs(
                        extra, _output(gpu[1]["output"]), gpu[0]["run"],
                        drift.compare_text(entry["output"], gpu[1]["output"],
                                           names=("CPU", "GPU")))
            for fig in entry["figures"]:
                alt = fig["alt"].replace("[", "(").replace("]", ")")
                extra += ["", f"![{alt}]({figure_uri(fig['svg'])})"
                              "{ .dl-figure loading=lazy }"]
        lines[block.end_line : block.end_line] = [
            (pad + s) if s else s for s in ["", *extra]
        ]
    if not cpu_run and source:  # nothing current: say when the page last ran
        cpu_run = own.get("run") or {}
    link = _drift_link(source, docs_dir, use_directory_urls)
    stamp = _stamp_html(len(blocks), (("CPU", cpu_run, cpu_n), ("GPU", gpu_run, gpu_n)),
                        link)
    if source and source.meta.get("gpu_figures"):  # a page about speed
        stamp += "\n\n" + _gpu_note(gpu_run, gpu_n)
    for i, line in enumerate(lines):
        if line.startswith("# "):
            lines[i + 1 : i + 1] = ["", stamp, ""]
            break
    return "\n".join(lines)


def figure_uri(svg: str) -> str:
    """A figure as a data URI: it travels inside the page, under any builder."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf8")).decode()


def check_page(path: Path, markdown: str, offset: int) -> list[str]:
    """`page:line: ...` for each block and cited value without a current record, as the
    strict MkDocs build reports them (on the page's own record)."""
    rel = pages._rel(path)
    blocks = [b for b in pages.read_page(path, text=markdown) if b.runs]
    citations = pages.read_citations(path, text=markdown)
    if not blocks:
        if any(not c.quote for c in citations):
            return [f"{rel}: the page cites values but has no block to compute them"]
        return []
    cpu = records.load(path, "cpu")
    problems = []
    state = "stale" if cpu["blocks"] else "missing"
    fix = f"refresh it with `python3 tests/dev.py test {rel}`"
    for c in citations:
        if not c.quote and records.cited_text(c, cpu) is None:
            problems.append(f"{rel}:{c.line + offset}: the cited value {c.text} is "
                            f"{state}; {fix}")
    recorded_lines = {v["line"] for v in cpu["blocks"].values()}
    for block in blocks:
        if block.digest not in cpu["blocks"]:
            line = block.line + offset
            state = "stale" if line in recorded_lines else "missing"
            problems.append(f"{rel}:{line}: recorded output is {state}; {fix}")
    return problems


def _output(text: str, lang: str = "text") -> list[str]:
    if not text.strip():
        return []
    ticks = "`" * max(3, 1 + max(map(len, re.findall(r"`+", text)), default=0))
    return [f"{ticks} {{.{lang} .dl-output}}", *text.rstrip("\n").split("\n"), ticks]


def _device_tabs(cpu: list[str], gpu: list[str], run: dict,
                 comparison: drift.Comparison | None = None) -> list[str]:
    """CPU and GPU outputs of one block side by side, when the GPU run printed otherwise:
    the GPU tab's title says when they agree within tolerance; when they do not, a
    third tab shows the difference."""
    device = run.get("device", "GPU").replace('"', "'")
    status = comparison.status if comparison else drift.CHANGED
    gpu_title = f"GPU: {device}"
    if status == drift.WITHIN:
        gpu_title += f" (within tolerance: rel {drift.DEFAULT_REL:g}, " \
                     f"abs {drift.DEFAULT_ABS:g})"
    panes = [("CPU", cpu), (gpu_title, gpu)]
    if comparison and comparison.diff:
        panes.append(("Difference", _output(comparison.diff, "diff")))
    tabs = []
    for title, body in panes:
        tabs += [f'=== "{title}"', ""] + [("    " + s) if s else s for s in body] + [""]
    return tabs


def page_url(uri: str, use_directory_urls: bool = True) -> str:
    """The URL (relative to the site root) of the page docs/<uri>."""
    stem = uri.removesuffix(".md")
    if not use_directory_urls:
        return stem + ".html"
    if stem == "index" or stem.endswith("/index"):
        return stem.removesuffix("index")
    return stem + "/"


def relative_url(target: str, source: str) -> str:
    base = source if source.endswith("/") else posixpath.dirname(source)
    href = posixpath.relpath(target or ".", base.rstrip("/") or ".")
    return href + ("/" if target.endswith("/") and not href.endswith("/") else "")


def _drift_link(source: Source | None, docs_dir: Path, use_directory_urls: bool) -> str:
    """`outputs changed with torch X: see PyTorch versions`, for a page that the
    published drift report lists as changed; empty otherwise."""
    if source is None or not (Path(docs_dir) / VERSIONS_PAGE).exists():
        return ""
    report = drift.load_report(Path(docs_dir) / "results" / "drift.json")
    if not report or source.rel not in drift.changed_pages(report):
        return ""
    href = relative_url(page_url(VERSIONS_PAGE, use_directory_urls),
                        page_url(source.uri, use_directory_urls))
    return (f'<span class="dl-stamp-drift">outputs changed with torch '
            f'{html.escape(report["to"]["torch"])}: <a href="{html.escape(href)}">'
            "see PyTorch versions</a></span>")


def _gpu_note(run: dict, n: int) -> str:
    if run and n:
        return (f'!!! info "GPU figures"\n\n    Where a block printed something else on '
                f"the GPU, its output has a **GPU** tab: measured on {run['device']} with "
                f"torch {run['torch']} on {run['date']}.")
    return ('!!! info "GPU figures: not measured yet"\n\n    The figures on this page '
            "were measured on the CPU. The GPU job (`gpu.yml`) has not recorded this "
            "page yet; once it has, each block shows its GPU output beside the CPU one.")


def _placeholder(rel: str, state: str) -> list[str]:
    return [
        f'!!! warning "Output {state}"',
        "",
        f"    This block's output is {state}. Run the page to record it, then reload:",
        f"    `python3 tests/dev.py test {rel}`",
    ]


def _failed(failure: dict) -> list[str]:
    """The error of a block that failed in the page's last run (serve only)."""
    error = failure["error"]
    where = error.split(": ", 1)[0]
    return [f'!!! failure "This block failed: {where}"', ""] + [
        ("    " + s) if s else s for s in _output(error)]


def _stamp_html(total: int, runs, drift_link: str = "") -> str:
    parts = []
    for label, run, n in runs:
        if not run or (label == "GPU" and n == 0):
            continue
        parts.append(
            f'<span class="dl-stamp-run" title="{label} run">'
            f"{n}/{total} blocks ran on {html.escape(run['device'])} · "
            f"torch {html.escape(run['torch'])} · commit "
            f"<code>{html.escape(run['commit'])}</code> · {run['date']}</span>"
        )
    if not parts:
        parts.append(f'<span class="dl-stamp-run">0/{total} blocks recorded</span>')
    if drift_link:
        parts.append(drift_link)
    return '<p class="dl-stamp">' + "<br>".join(parts) + "</p>"


# ---------------------------------------------------------------- the HTML

_SOLUTION = re.compile(r'(<details class="success")(>\s*<summary>Solution)')
_OUTPUT_DIV = re.compile(r'<div class="(?:language-\w+ )?dl-output highlight"')


def finish_html(content: str, source: Source | None) -> str:
    where = source.rel if source else "a page"
    content = mathml.arithmatex_to_mathml(content, where)
    # Recorded outputs are shown, not searched: numbers would crowd out the prose.
    content = _OUTPUT_DIV.sub(r"\g<0> data-search-exclude", content)
    # Exercise solutions are read after trying, not found by searching the question.
    content = _SOLUTION.sub(r"\1 data-search-exclude\2", content)
    return content


def _toc_math(tokens: list[dict], where: str) -> None:
    """Headings with math: the table of contents gets MathML too, not raw LaTeX."""
    for token in tokens:
        token["name"] = mathml.inline_to_mathml(token["name"], where)
        if "html" in token:
            token["html"] = mathml.arithmatex_to_mathml(token["html"], where)
        _toc_math(token.get("children", []), where)


# ---------------------------------------------------------------- the extension


class _Outputs(Preprocessor):
    def __init__(self, md, ext):
        super().__init__(md)
        self.ext = ext

    def run(self, lines):
        text = "\n".join(lines)
        docs_dir = Path(self.ext.getConfig("docs_dir"))
        source = SourceIndex(docs_dir).find(text)
        self.md.dlnotes_source, self.md.dlnotes_final = source, False
        return render_markdown(text, source, self.ext.outputs(), docs_dir,
                               self.ext.getConfig("use_directory_urls")).split("\n")


class _TreeDone(Treeprocessor):
    """Marks the end of the tree stage. The toc extension runs every postprocessor on
    each heading while it builds ids; math stays LaTeX there, so ids keep their names."""

    def run(self, root):
        self.md.dlnotes_final = True


class _Finish(Postprocessor):
    def run(self, text):
        if not getattr(self.md, "dlnotes_final", False):
            return text
        source = getattr(self.md, "dlnotes_source", None)
        _toc_math(getattr(self.md, "toc_tokens", []), source.rel if source else "a page")
        return finish_html(text, source)


class RenderExtension(Extension):
    def __init__(self, **kwargs):
        self.config = {
            "docs_dir": [str(pages.ROOT / "docs"), "the pages' folder"],
            "outputs": ["", "the records' folder (default: records.outputs_dir())"],
            "use_directory_urls": [True, "page URLs end in a folder, as in mkdocs.yml"],
        }
        super().__init__(**kwargs)

    def outputs(self) -> Path:
        return Path(self.getConfig("outputs") or records.outputs_dir())

    def extendMarkdown(self, md):
        md.registerExtension(self)
        self.md = md
        md.dlnotes_source, md.dlnotes_final = None, False
        # before pymdownx.snippets (32) and whitespace normalisation (30): the page's
        # Markdown as its file holds it, so blocks hash as the test run hashed them
        md.preprocessors.register(_Outputs(md, self), "dlnotes_outputs", 40)
        # after every other tree step (the toc extension's is 5)
        md.treeprocessors.register(_TreeDone(md), "dlnotes_tree_done", -100)
        # after raw HTML is put back (30) and every other step: the final HTML
        md.postprocessors.register(_Finish(md), "dlnotes_finish", 1)

    def reset(self):
        self.md.dlnotes_source, self.md.dlnotes_final = None, False


def makeExtension(**kwargs):  # noqa: N802 - Python-Markdown's entry point
    return RenderExtension(**kwargs)
