"""Coverage: every concept in tests/concepts.toml is taught by running code on its pages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.engine import pages

ROOT = Path(__file__).resolve().parents[1]
CONCEPTS = tomllib.loads((ROOT / "tests" / "concepts.toml").read_text("utf8"))["concept"]


def running_code(page: Path) -> str:
    """The code a page runs: its running blocks (snippet includes expanded) and the
    `snippets` modules they import."""
    blocks = [b.source for b in pages.read_page(page) if b.runs]
    modules = [(ROOT / "snippets" / name).with_suffix(".py").read_text("utf8")
               for name in pages.snippet_modules(blocks)]
    return "\n".join(blocks + modules)


@pytest.mark.parametrize("concept", CONCEPTS, ids=[c["name"] for c in CONCEPTS])
def test_each_concept_runs_on_its_pages(concept):
    missing_pages = [p for p in concept["pages"] if not (ROOT / "docs" / p).is_file()]
    assert not missing_pages, f"{concept['name']}: no page {missing_pages}"
    code = "\n".join(running_code(ROOT / "docs" / p) for p in concept["pages"])
    absent = [s for s in concept["runs"] if s not in code]
    assert not absent, (
        f"{concept['name']}: no running block on {', '.join(concept['pages'])} "
        f"contains {absent}")


def test_every_concept_page_is_in_the_coverage_list():
    listed = {p for c in CONCEPTS for p in c["pages"]}
    concept_pages = {
        p.relative_to(ROOT / "docs").as_posix()
        for p in (ROOT / "docs").glob("*/*.md")
        if p.name != "index.md" and p.parent.name != "labs"}
    assert not sorted(concept_pages - listed), (
        "pages missing from tests/concepts.toml: "
        f"{sorted(concept_pages - listed)}")


def test_the_coverage_check_sees_only_running_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# T\n\n```{.python notest}\nhidden_call()\n```\n\n"
                    "```python\nshown = 1\n```\n", "utf8")
    code = running_code(page)
    assert "shown = 1" in code and "hidden_call" not in code
