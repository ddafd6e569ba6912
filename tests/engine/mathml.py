"""Math to MathML at build time (latex2mathml): no JavaScript, no CDN.

The one place LaTeX becomes MathML, for pages (render.py) and labs (labs.py).
"""

from __future__ import annotations

import html
import logging
import re

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.plugins.dlnotes")

# pymdownx.arithmatex's generic output: \(...\) in a span, \[...\] in a div
_ARITHMATEX = re.compile(
    r'<(span|div) class="arithmatex">(?:\\\(|\\\[)(.*?)(?:\\\)|\\\])</\1>', re.S
)
_INLINE = re.compile(r"\\\((.*?)\\\)")
# latex2mathml renders `aligned` (the form MathJax and KaTeX accept inside $$) as one
# line with literal '&'; its `align*` is the same table of rows and columns.
_ALIGNED = re.compile(r"(\\(?:begin|end))\{aligned\}")
# $...$ and $$...$$ in HTML (a lab's Markdown cells), outside code, scripts and figures
_SKIP = re.compile(r"(<(pre|code|script|style|svg)\b.*?</\2>)", re.S)
_TEX = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S)


def to_mathml(latex: str, display: bool = False, where: str = "") -> str | None:
    """MathML for one formula (HTML entities in it are decoded first), or None with a
    warning naming `where` when latex2mathml cannot convert it."""
    latex = html.unescape(latex).strip()
    try:
        out = convert(_ALIGNED.sub(r"\1{align*}", latex),
                      display="block" if display else "inline")
    except Exception as e:  # noqa: BLE001 - report the page and carry on
        log.warning(f"{where or 'a page'}: cannot render math {latex!r}: {e}")
        return None
    if "<mi>&</mi>" in out:  # an environment latex2mathml does not know
        log.warning(f"{where or 'a page'}: math shows a literal '&' (unsupported "
                    f"environment?): {latex[:80]!r}")
    return out


def arithmatex_to_mathml(content: str, where: str = "") -> str:
    """Every formula pymdownx.arithmatex (generic mode) left in HTML, as MathML."""
    def one(m):
        return to_mathml(m[2], m[1] == "div", where) or m[0]

    return _ARITHMATEX.sub(one, content)


def inline_to_mathml(text: str, where: str = "") -> str:
    r"""`\(...\)` in a plain string (a table-of-contents title) as MathML."""
    return _INLINE.sub(lambda m: to_mathml(m[1], False, where) or m[0], text)


def dollars_to_mathml(content: str, where: str = "") -> str:
    """$...$ and $$...$$ in HTML as MathML, outside pre, code, script, style and svg."""
    def one(m):
        return to_mathml(m[1] or m[2], bool(m[1]), where) or m[0]

    parts = _SKIP.split(content)
    out = []
    for i in range(0, len(parts), 3):  # prose, skipped element, its tag name
        out.append(_TEX.sub(one, parts[i]))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)
