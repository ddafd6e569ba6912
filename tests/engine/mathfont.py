"""The site's math font: the characters its MathML shows, and the font cut down to them.

The site serves STIX Two Math itself (docs/assets/dlnotes.css). The full font (fonts/,
at the repository root, not served) covers thousands of characters; the served copy,
docs/assets/fonts/STIXTwoMath.woff2, keeps BASE (what any new formula is likely to use)
and every character the built site's math uses, with the MATH table, the layout
features (script-size and dotless forms) and the size variants and assembly parts of
the kept characters, which the subsetter follows from the MATH table.

    python3 tests/dev.py mathfont        rewrite the served font from site/ (build first)

tests/browser/test_math_font.py fails when the built site's math uses a character the
served font lacks (the browser would draw it from another font).
"""

from __future__ import annotations

import html
import html.parser
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "fonts" / "STIXTwoMath.woff2"
SERVED = ROOT / "docs" / "assets" / "fonts" / "STIXTwoMath.woff2"


def _chars(*spans: str | tuple[int, int] | set[int]) -> set[int]:
    out: set[int] = set()
    for span in spans:
        if isinstance(span, set):
            out |= span
        elif isinstance(span, tuple):
            out |= set(range(span[0], span[1] + 1))
        else:
            out |= {ord(c) for c in span}
    return out


# Plain Latin and Greek letters, digits and ASCII punctuation; the operators, relations,
# arrows and delimiters of everyday formulas. Their italic forms are added below.
_LATIN = _chars((0x41, 0x5A), (0x61, 0x7A))
_GREEK = _chars((0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9), "ϑϕϖϵϱ")
BASE = _chars(
    (0x20, 0x7E), "\u00a0¬¯°±²³·×÷′″‴",
    "ℓℏℕℤℚℝℂ∅ℬℒ",
    "−∓∗∘∙√∝∞∣∤∥∦∧∨∩∪∫∬∮∴∵∼≃≅≈≍≐≡≢≤≥≦≧≪≫≺≻⊂⊃⊆⊇⊕⊖⊗⊘⊙⊤⊥⋅⋆⋮⋯⋱",
    "∀∃∄∂∇∈∉∋∏∐∑≠⊢⊨",
    "←↑→↓↔↕↦↩↪⇐⇒⇔",
    "()[]{}|‖⟨⟩⌈⌉⌊⌋⟦⟧‾…―⏞⏟⎴⎵",
    "\u0302\u0303\u0304\u0307\u0308",  # accents over a letter
    _LATIN, _GREEK,
)

# mathvariant values (MathML) -> the word Unicode's names of the Mathematical
# Alphanumeric Symbols use; an <mi> of one character is italic by default.
_VARIANTS = {
    "italic": "ITALIC", "bold": "BOLD", "bold-italic": "BOLD ITALIC",
    "double-struck": "DOUBLE-STRUCK", "script": "SCRIPT", "bold-script": "BOLD SCRIPT",
    "fraktur": "FRAKTUR", "bold-fraktur": "BOLD FRAKTUR", "sans-serif": "SANS-SERIF",
    "bold-sans-serif": "SANS-SERIF BOLD", "sans-serif-italic": "SANS-SERIF ITALIC",
    "sans-serif-bold-italic": "SANS-SERIF BOLD ITALIC", "monospace": "MONOSPACE",
}
# Letters whose styled form sits in Letterlike Symbols (the holes of the math block).
_HOLES = {("ITALIC", "SMALL H"): "PLANCK CONSTANT"}


def styled(char: str, variant: str) -> str:
    """`char` in a MathML mathvariant (italic x -> U+1D465), or `char` itself where
    Unicode has no such form (digits in italic, operators, a variant not listed)."""
    word = _VARIANTS.get(variant)
    try:
        name = unicodedata.name(char)
    except ValueError:
        return char
    if word is None:
        return char
    for prefix, kind in (("LATIN CAPITAL LETTER ", "CAPITAL "),
                         ("LATIN SMALL LETTER ", "SMALL "),
                         ("GREEK CAPITAL LETTER ", "CAPITAL "),
                         ("GREEK SMALL LETTER ", "SMALL "),
                         ("DIGIT ", "DIGIT ")):
        if name.startswith(prefix) and len(name) > len(prefix):
            rest = kind + name[len(prefix):]
            break
    else:
        symbol = {"GREEK THETA SYMBOL": "THETA SYMBOL", "GREEK PHI SYMBOL": "PHI SYMBOL",
                  "GREEK PI SYMBOL": "PI SYMBOL", "GREEK LUNATE EPSILON SYMBOL":
                  "EPSILON SYMBOL", "GREEK RHO SYMBOL": "RHO SYMBOL"}.get(name)
        if symbol is None:
            return char
        rest = symbol
    if (word, rest) in _HOLES:
        return unicodedata.lookup(_HOLES[(word, rest)])
    for candidate in (f"MATHEMATICAL {word} {rest}", f"{word} {rest}",
                      f"BLACK-LETTER {rest}" if word == "FRAKTUR" else ""):
        try:
            return unicodedata.lookup(candidate) if candidate else char
        except KeyError:
            continue
    return char


class _Math(html.parser.HTMLParser):
    """Every character the <math> elements of an HTML page show, as the browser picks
    glyphs for it: the text itself and, in an <mi> of one character or one with a
    mathvariant, its styled form (both kept: engines differ on mathvariant)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []  # (tag, mathvariant) inside <math>
        self.found: set[int] = set()

    def handle_starttag(self, tag, attrs):
        if tag == "math" or self.stack:
            variant = dict(attrs).get("mathvariant")
            if variant is None and self.stack:
                variant = self.stack[-1][1]
            self.stack.append((tag, variant))

    def handle_endtag(self, tag):
        if self.stack:
            while self.stack and self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        if not self.stack:
            return
        tag, variant = self.stack[-1]
        if tag in ("annotation", "annotation-xml"):
            return
        # Line breaks and tabs between tags show nothing; spaces inside <mtext> do.
        text = data.strip() if tag != "mtext" else data.strip("\n\t\r")
        text = "".join(c for c in text if unicodedata.category(c) != "Cc")
        self.found |= {ord(c) for c in text}
        if tag == "mi" and variant is None and len(text) == 1:
            variant = "italic"
        if variant:
            self.found |= {ord(styled(c, variant)) for c in text}


def math_codepoints(page: str) -> set[int]:
    """The code points the <math> elements of one HTML page show."""
    parser = _Math()
    parser.feed(page)
    parser.close()
    return parser.found


def site_codepoints(site: Path) -> dict[int, list[str]]:
    """Code point -> the pages of the built site whose math shows it."""
    where: dict[int, list[str]] = {}
    for page in sorted(site.rglob("*.html")):
        text = page.read_text("utf8")
        if "<math" not in text:
            continue
        for cp in math_codepoints(text):
            where.setdefault(cp, []).append(page.relative_to(site).as_posix())
    return where


def font_codepoints(path: Path) -> set[int]:
    from fontTools.ttLib import TTFont

    return set(TTFont(path).getBestCmap())


def wanted(site: Path) -> set[int]:
    """BASE, the italic forms of its letters, and what the site's math shows."""
    letters = {ord(styled(chr(c), "italic")) for c in _LATIN | _GREEK}
    letters |= _chars("\U0001d6a4\U0001d6a5")  # italic dotless i and j
    return BASE | letters | set(site_codepoints(site))


def subset(codepoints: set[int], source: Path = SOURCE, out: Path = SERVED) -> set[int]:
    """Write `out`: `source` cut down to `codepoints` (those it has), WOFF2, every layout
    feature and the MATH table kept, name records kept. Returns the code points kept."""
    from fontTools import subset as fts
    from fontTools.ttLib import TTFont

    options = fts.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = True
    font = TTFont(source, recalcTimestamp=False)  # the same bytes from the same input
    have = set(font.getBestCmap())
    keep = codepoints & have
    subsetter = fts.Subsetter(options)
    subsetter.populate(unicodes=sorted(keep))
    subsetter.subset(font)
    font.flavor = "woff2"
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(out)
    return keep


def describe(cp: int) -> str:
    return f"U+{cp:04X} {html.escape(chr(cp))} {unicodedata.name(chr(cp), '?')}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default=str(ROOT / "site"), help="the built site")
    ns = parser.parse_args(argv)
    site = Path(ns.site)
    if not (site / "index.html").exists():
        print(f"no built site at {site}: run `python3 tests/dev.py build` first",
              file=sys.stderr)
        return 2
    shown = site_codepoints(site)
    lacking = sorted(set(shown) - font_codepoints(SOURCE))
    for cp in lacking:
        print(f"not in {SOURCE.relative_to(ROOT)}: {describe(cp)} "
              f"({', '.join(shown[cp][:3])})", file=sys.stderr)
    before = SERVED.stat().st_size if SERVED.exists() else 0
    kept = subset(wanted(site))
    print(f"{SERVED.relative_to(ROOT)}: {len(kept)} characters "
          f"({len(shown)} shown by the site's math), {before / 1024:.1f} -> "
          f"{SERVED.stat().st_size / 1024:.1f} KB")
    return 1 if lacking else 0


if __name__ == "__main__":
    sys.exit(main())
