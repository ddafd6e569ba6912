"""Two builds of the site compared page by page: what a reader sees of the test run.

The primary build is MkDocs (`site/`); Zensical builds the same mkdocs.yml into
`build/zensical-site/` (`python3 tests/dev.py zensical`). For every page of docs/ (labs
excepted: Zensical does not convert notebooks), both builds must show the same

- recorded outputs under the blocks (their text),
- figures (title and image),
- cited values and marked quotations in the prose,
- page stamp, and a speed page's note on its GPU figures,
- content tabs (the CPU and GPU tabs of a block among them),
- number of formulas rendered as MathML,

and neither may show a placeholder for a missing or stale output or value. Parts only the
MkDocs build has are not compared (README, "Two builders"): the download and Colab links
of page notebooks, the hidden search keywords, lab pages.

    python -m tests.engine.sitecompare SITE_A SITE_B    # exit 1 on any difference
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import sys
from pathlib import Path

from .pages import ROOT

_TAG = re.compile(r"<[^>]+>")
_OUTPUT = re.compile(
    r'<div class="[^"]*\bdl-output\b[^"]*"[^>]*>.*?<code>(.*?)</code>', re.S)
_IMG = re.compile(r"<img\b[^>]*>")
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')
_CITE = re.compile(r'<span class="dl-cite[^"]*"[^>]*>(.*?)</span>', re.S)
_QUOTE = re.compile(r'<span class="dl-quote"[^>]*>(.*?)</span></span>', re.S)
_STAMP = re.compile(r'<p class="dl-stamp">(.*?)</p>', re.S)
_TITLE = re.compile(r'<p class="admonition-title">(.*?)</p>', re.S)
_TAB = re.compile(r"<label\b[^>]*>(.*?)</label>", re.S)
_ARTICLE = re.compile(r"<article\b.*?</article>", re.S)
PLACEHOLDERS = ('admonition-title">Output stale<', 'admonition-title">Output missing<',
                'class="dl-cite dl-cite-missing"')


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment))


def _image(src: str, page: Path | None) -> str:
    """The sha256 of a figure, inline (a data URI) or a file beside the page."""
    if src.startswith("data:"):
        data = base64.b64decode(src.partition(",")[2])
    else:
        path = (page.parent / html.unescape(src)) if page else None
        if path is None or not path.is_file():
            return f"missing file {src}"
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()


def seen(page_html: str, page: Path | None = None) -> dict:
    """What a reader sees of the test run on one built page (at `page`, where figures
    that are files are looked up)."""
    m = _ARTICLE.search(page_html)
    body = m[0] if m else page_html
    figures = []
    for tag in _IMG.findall(body):
        attrs = dict(_ATTR.findall(tag))
        if "dl-figure" in attrs.get("class", "").split():
            figures.append((html.unescape(attrs.get("alt", "")),
                            _image(attrs.get("src", ""), page)))
    return {
        "outputs": [_text(o).strip("\n") for o in _OUTPUT.findall(body)],
        "figures": figures,
        "cited": [_text(c) for c in _CITE.findall(body)],
        "quoted": [_text(q) for q in _QUOTE.findall(body)],
        "stamp": [" ".join(_text(s).split()) for s in _STAMP.findall(body)],
        # a speed page's note on its GPU figures; the CPU/GPU/Difference tabs
        "notes": [t for t in map(_text, _TITLE.findall(body)) if "GPU figures" in t],
        "tabs": [_text(t).strip() for t in _TAB.findall(body)],
        "math": body.count("<math"),
        "placeholders": [p for p in PLACEHOLDERS if p in body],
    }


def page_html(site: Path, uri: str) -> Path:
    """The built file of docs/<uri> (directory URLs)."""
    stem = uri.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site / stem.removesuffix("index") / "index.html"
    return site / stem / "index.html"


_TOTAL = {"stamp": "stamps", "notes": "GPU notes"}


def compare(site_a: Path, site_b: Path, docs: Path | None = None,
            names: tuple[str, str] = ("MkDocs", "Zensical")) -> tuple[list[str], dict]:
    """Differences between two builds, one line each, and counts of what was compared."""
    docs = docs or ROOT / "docs"
    problems, totals = [], {"pages": 0, "outputs": 0, "figures": 0, "cited": 0,
                            "quoted": 0, "stamps": 0, "GPU notes": 0, "tabs": 0,
                            "math": 0}
    for src in sorted(docs.rglob("*.md")):
        uri = src.relative_to(docs).as_posix()
        if uri == "abbreviations.md":  # appended to pages, not a page
            continue
        files = [page_html(site_a, uri), page_html(site_b, uri)]
        missing = [n for n, f in zip(names, files) if not f.exists()]
        if missing:
            problems.append(f"docs/{uri}: no page in the {' and '.join(missing)} build")
            continue
        a, b = (seen(f.read_text("utf8"), f) for f in files)
        totals["pages"] += 1
        for key in ("outputs", "figures", "cited", "quoted", "stamp", "notes", "tabs",
                    "math"):
            totals[_TOTAL.get(key, key)] += a[key] if key == "math" else len(a[key])
            if a[key] != b[key]:
                problems.append(
                    f"docs/{uri}: {key} differ: {_differ(a[key], b[key], names)}")
        for name, got in zip(names, (a, b)):
            if got["placeholders"]:
                problems.append(f"docs/{uri}: the {name} build shows "
                                f"{', '.join(got['placeholders'])}")
    if not totals["outputs"]:
        problems.append("no recorded output on any page: run the pages first")
    return problems, totals


def _differ(a, b, names) -> str:
    if isinstance(a, int):
        return f"{names[0]} {a}, {names[1]} {b}"
    if len(a) != len(b):
        return f"{names[0]} has {len(a)}, {names[1]} {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"#{i + 1}: {names[0]} {_short(x)}, {names[1]} {_short(y)}"
    return "?"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def main(argv: list[str]) -> int:
    site_a, site_b = (Path(a) for a in argv[:2])
    problems, totals = compare(site_a, site_b)
    for p in problems:
        print(p)
    counts = ", ".join(f"{v} {k}" for k, v in totals.items())
    if problems:
        print(f"sitecompare: {len(problems)} differences ({counts})")
        return 1
    print(f"sitecompare: the two builds show the same ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
