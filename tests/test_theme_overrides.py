"""The theme overrides in overrides/ stay in step with the installed mkdocs-material.

Each override is the theme's template of the same path plus the changes listed here;
when an upgrade changes the theme's template, this fails and the override is redone
from the new one (no stale copy of the theme lives on unnoticed).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ROOT / "overrides"

# path -> (text in the theme's template, text in the override)
CHANGES = {
    "partials/search.html": [
        ('<div class="md-search" data-md-component="search" role="dialog">',
         '<div class="md-search" data-md-component="search" role="dialog" '
         "aria-label=\"{{ lang.t('search') }}\">"),
    ],
    "partials/tags.html": [
        ('<nav class="md-tags" {{ hidden }}>',
         '<nav class="md-tags" aria-label="Tags" {{ hidden }}>'),
    ],
}


def _body(text: str) -> str:
    """A template without its leading {#- ... -#} comment."""
    return re.sub(r"\A\{#-.*?-#\}\n", "", text, count=1, flags=re.S)


def test_every_override_is_listed():
    found = sorted(p.relative_to(OVERRIDES).as_posix()
                   for p in OVERRIDES.rglob("*") if p.is_file())
    assert found == sorted(CHANGES)


@pytest.mark.parametrize("path", sorted(CHANGES))
def test_override_is_the_theme_template_plus_its_changes(path):
    import material

    theme = Path(material.__file__).parent / "templates" / path
    expected = _body(theme.read_text())
    for before, after in CHANGES[path]:
        assert expected.count(before) == 1, f"the theme's {path} changed: {before!r}"
        expected = expected.replace(before, after)
    assert _body((OVERRIDES / path).read_text()) == expected
