"""The served math font (tests/engine/mathfont.py): how the characters a formula shows
are found, and what the font keeps. That the built site's math is all in it:
tests/browser/test_math_font.py."""

from __future__ import annotations

from fontTools.ttLib import TTFont

from tests.engine import mathfont
from tests.engine.mathml import to_mathml


def test_styled_forms_follow_unicode_names_and_their_holes():
    assert mathfont.styled("x", "italic") == "\U0001d465"
    assert mathfont.styled("h", "italic") == "\u210e"  # Planck constant, not in the block
    assert mathfont.styled("R", "double-struck") == "\u211d"
    assert mathfont.styled("E", "double-struck") == "\U0001d53c"
    assert mathfont.styled("\u03b1", "italic") == "\U0001d6fc"
    assert mathfont.styled("1", "bold") == "\U0001d7cf"
    assert mathfont.styled("+", "italic") == "+"
    assert mathfont.styled("x", "normal") == "x"


def test_a_formula_shows_its_letters_in_italic_and_words_upright():
    shown = mathfont.math_codepoints(
        to_mathml(r"\mathbb{E}[x] = \sin(\alpha) \cdot \mathrm{KL} + 1"))
    chars = {chr(cp) for cp in shown}
    assert {"\U0001d465", "\U0001d6fc", "\U0001d53c", "x", "\u03b1"} <= chars
    assert {"s", "i", "n", "K", "L", "1", "=", "+", "[", "]"} <= chars
    # "sin" is a word (upright); K and L are upright by mathvariant="normal"
    assert not {"\U0001d460", "\U0001d43e", "\U0001d43f"} & chars
    assert "\n" not in chars


def test_the_served_font_keeps_the_base_set_and_the_math_table():
    served = TTFont(mathfont.SERVED)
    have = set(served.getBestCmap())
    source = mathfont.font_codepoints(mathfont.SOURCE)
    missing = sorted(mathfont.BASE & source - have)
    assert not missing, [mathfont.describe(cp) for cp in missing]
    italic = {ord(mathfont.styled(c, "italic")) for c in "abcxyzABCXYZ\u03b1\u03b8\u03c3"}
    assert italic <= have
    assert "MATH" in served and "ssty" in {
        r.FeatureTag for r in served["GSUB"].table.FeatureList.FeatureRecord}
    # the size variants of the big operators and delimiters came along
    variants = served["MATH"].table.MathVariants
    assert variants.VertGlyphCount > 10
    assert mathfont.SERVED.stat().st_size < mathfont.SOURCE.stat().st_size / 3
