"""MkDocs hooks: the build side of the engine. It executes no code.

- Under each Python block, the output and figures that the test run recorded for it
  (records.py). A block without a current record is reported as `page:line` (an error in
  a strict build) and shows a placeholder saying how to refresh it.
- Under each page title, a stamp: how many blocks ran, on what, at which commit and date;
  on a page about speed (front matter `gpu_figures: true`), where its GPU figures stand;
  when the published drift report (docs/results/drift.json) finds the page's outputs
  changed under a newer torch, a link to the PyTorch versions page.
- Where a block's CUDA output differs from its CPU output, CPU and GPU tabs; the GPU tab
  says when the two agree within tolerance (drift.py), and a third tab shows the diff
  when they do not.
- Math from pymdownx.arithmatex rendered to MathML by latex2mathml.
- A raw fence marker (``` or ~~~) left in a page's HTML is reported.
- A page's front-matter `keywords` (other spellings readers search for) are added to its
  HTML as hidden text, so search finds the page by them.
"""

from __future__ import annotations

import html
import logging
import posixpath
import re
import sys
from pathlib import Path

from latex2mathml.converter import convert as latex_to_mathml
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.engine import drift, pages, records  # noqa: E402

log = logging.getLogger("mkdocs.plugins.dlnotes")
_records: dict[str, dict] = {}  # src_uri -> {"cpu": record, "cuda": record}
_drift: dict = {}  # the published drift report: "to" (its torch), "pages" (changed ones)
VERSIONS_PAGE = "versions.md"


def _figure_uri(src_uri: str, digest: str, k: int) -> str:
    return f"outputs/{src_uri.removesuffix('.md')}/{digest[:16]}-{k}.svg"


def on_files(files, config):
    report = drift.load_report(Path(config["docs_dir"]) / "results" / "drift.json")
    _drift.clear()
    if report:
        _drift.update(to=report["to"]["torch"], pages=drift.changed_pages(report))
    for file in list(files.documentation_pages()):
        if not file.src_uri.endswith(".md"):
            continue
        path = Path(file.abs_src_path)
        blocks = [b for b in pages.read_page(path) if b.runs]
        if not blocks:
            if pages.read_citations(path):
                log.warning(f"{pages._rel(path)}: the page cites values but has no "
                            "block to compute them")
            continue
        recs = {kind: records.load(path, kind) for kind in ("cpu", "cuda")}
        _records[file.src_uri] = recs
        for block in blocks:
            entry = recs["cpu"]["blocks"].get(block.digest)
            for k, fig in enumerate(entry["figures"] if entry else []):
                uri = _figure_uri(file.src_uri, block.digest, k)
                files.append(File.generated(config, uri, content=fig["svg"]))
    return files


def on_page_markdown(markdown, page, config, files):
    recs = _records.get(page.file.src_uri)
    path = Path(page.file.abs_src_path)
    if recs is None:  # no code: quotations only
        if "{{" not in markdown:
            return markdown
        return "\n".join(records.render_citations(
            markdown.split("\n"), pages.read_citations(path, text=markdown),
            {"blocks": {}}, html=True))
    rel = pages._rel(path)
    raw = path.read_text("utf8")
    offset = raw[: raw.find(markdown)].count("\n") if markdown in raw else 0
    blocks = [b for b in pages.read_page(path, text=markdown) if b.runs]
    cpu, ran = recs["cpu"], 0

    def missing(citation):
        state = "stale" if cpu["blocks"] else "missing"
        log.warning(f"{rel}:{citation.line + offset}: the cited value {citation.text} "
                    f"is {state}; refresh it with `python3 tests/dev.py test {rel}`")

    lines = records.render_citations(
        markdown.split("\n"), pages.read_citations(path, text=markdown), cpu,
        html=True, missing=missing, offset=offset)
    recorded_lines = {v["line"] for v in cpu["blocks"].values()}
    for block in reversed(blocks):  # insert from the bottom so line numbers hold
        entry = cpu["blocks"].get(block.digest)
        pad = " " * block.indent
        if entry is None:
            line = block.line + offset
            state = "stale" if line in recorded_lines else "missing"
            log.warning(
                f"{rel}:{line}: recorded output is {state}; "
                f"refresh it with `python3 tests/dev.py test {rel}`"
            )
            extra = _placeholder(rel, state)
        else:
            ran += 1
            extra = _output(entry["output"])
            gpu = recs["cuda"]["blocks"].get(block.digest)
            if gpu is not None and gpu["output"] != entry["output"]:
                extra = _device_tabs(extra, _output(gpu["output"]), recs["cuda"]["run"],
                                     drift.compare_text(entry["output"], gpu["output"],
                                                        names=("CPU", "GPU")))
            for k, fig in enumerate(entry["figures"]):
                uri = _figure_uri(page.file.src_uri, block.digest, k)
                src = posixpath.relpath(uri, posixpath.dirname(page.file.src_uri))
                alt = fig["alt"].replace("[", "(").replace("]", ")")
                extra += ["", f"![{alt}]({src}){{ .dl-figure loading=lazy }}"]
        lines[block.end_line : block.end_line] = [
            (pad + s) if s else s for s in ["", *extra]
        ]
    digests = {b.digest for b in blocks}
    stamp = _stamp(ran, len(blocks), cpu, recs["cuda"], digests,
                   _drift_link(rel, page.file, files))
    if page.meta.get("gpu_figures"):  # a page about speed: say where GPU figures stand
        stamp += "\n\n" + _gpu_note(recs["cuda"], digests)
    for i, line in enumerate(lines):
        if line.startswith("# "):
            lines[i + 1 : i + 1] = ["", stamp, ""]
            break
    return "\n".join(lines)


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


def _drift_link(rel: str, file, files) -> str:
    """`outputs changed with torch X: see PyTorch versions`, for a page that the
    published drift report lists as changed; empty otherwise."""
    versions = files.get_file_from_path(VERSIONS_PAGE)
    if rel not in _drift.get("pages", {}) or versions is None:
        return ""
    href = html.escape(versions.url_relative_to(file))
    return (f'<span class="dl-stamp-drift">outputs changed with torch '
            f'{html.escape(_drift["to"])}: <a href="{href}">see PyTorch versions</a>'
            "</span>")


def _gpu_note(cuda: dict, digests: set) -> str:
    run = cuda.get("run") or {}
    if run and any(d in cuda["blocks"] for d in digests):
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


def _stamp(ran, total, cpu, cuda, digests, drift_link: str = "") -> str:
    parts = []
    for label, rec in (("CPU", cpu), ("GPU", cuda)):
        run = rec.get("run") or {}
        n = sum(d in rec["blocks"] for d in digests)
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


_SOLUTION = re.compile(r'(<details class="success")(>\s*<summary>Solution)')
_MATH = re.compile(
    r'<(span|div) class="arithmatex">(?:\\\(|\\\[)(.*?)(?:\\\)|\\\])</\1>', re.S
)
_CODE = re.compile(r"<(pre|code)\b.*?</\1>", re.S)
# latex2mathml renders `aligned` (the form MathJax and KaTeX accept inside $$) as one
# line with literal '&'; its `align*` is the same table of rows and columns.
_ALIGNED = re.compile(r"(\\(?:begin|end))\{aligned\}")
_OUTPUT_DIV = re.compile(r'<div class="(?:language-\w+ )?dl-output highlight"')


def on_page_content(content, page, config, files):
    rel = page.file.src_uri

    def mathml(m):
        display = "block" if m[1] == "div" else "inline"
        latex = html.unescape(m[2]).strip()
        try:
            out = latex_to_mathml(_ALIGNED.sub(r"\1{align*}", latex), display=display)
        except Exception as e:  # noqa: BLE001 - report the page and carry on
            log.warning(f"docs/{rel}: cannot render math {latex!r}: {e}")
            return m[0]
        if "<mi>&</mi>" in out:  # an environment latex2mathml does not know
            log.warning(f"docs/{rel}: math shows a literal '&' (unsupported "
                        f"environment?): {latex[:80]!r}")
        return out

    content = _MATH.sub(mathml, content)
    # Recorded outputs are shown, not searched: numbers would crowd out the prose.
    content = _OUTPUT_DIV.sub(r"\g<0> data-search-exclude", content)
    # Exercise solutions are read after trying, not found by searching the question.
    content = _SOLUTION.sub(r"\1 data-search-exclude\2", content)
    _toc_math(page.toc)
    keywords = page.meta.get("keywords")
    if keywords:  # other spellings readers search for: indexed, not shown
        content += f'<p class="dl-keywords" hidden>{html.escape(", ".join(keywords))}</p>'
    prose = _CODE.sub("", content)
    for marker in ("```", "~~~"):
        at = prose.find(marker)
        if at >= 0:
            near = html.unescape(re.sub(r"<[^>]+>", " ", prose[max(0, at - 80) : at + 80]))
            log.warning(
                f"docs/{rel}: a raw fence marker {marker} leaked into the HTML near: "
                f"{' '.join(near.split())!r}"
            )
    return content


_TOC_MATH = re.compile(r"\\\((.*?)\\\)")


def _toc_math(items) -> None:
    """Headings with math: the table of contents gets MathML too, not raw LaTeX."""
    for item in items:
        item.title = _TOC_MATH.sub(
            lambda m: latex_to_mathml(html.unescape(m[1])), item.title
        )
        _toc_math(item.children)


def on_serve(server, config, builder):
    outputs = records.outputs_dir()
    outputs.mkdir(parents=True, exist_ok=True)
    server.watch(str(outputs))
    server.watch(str(pages.ROOT / "snippets"))
    return server
