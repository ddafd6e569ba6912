"""Every character the built site's math shows is in the math font the site serves, so
none is drawn from another font. After adding a symbol: `python3 tests/dev.py build`,
`python3 tests/dev.py mathfont`, build again."""

from __future__ import annotations

import pytest

from tests.engine import mathfont

pytestmark = pytest.mark.browser
SITE = mathfont.ROOT / "site"


def test_the_math_font_has_every_character_the_math_shows():
    if not (SITE / "index.html").exists():
        pytest.fail("site/ is not built: run `python3 tests/dev.py build` first")
    shown = mathfont.site_codepoints(SITE)
    assert len(shown) > 50  # the scan found the math
    served = SITE / mathfont.SERVED.relative_to(mathfont.ROOT / "docs")
    for font in (served, mathfont.SERVED):
        have = mathfont.font_codepoints(font)
        missing = {mathfont.describe(cp): pages[:3]
                   for cp, pages in sorted(shown.items()) if cp not in have}
        assert not missing, (
            f"{font} lacks characters the math shows (page examples given); run "
            f"`python3 tests/dev.py mathfont` and build again: {missing}")
