"""Checks over every page in docs/: what the engine must not miss, and page conventions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine import pages

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
IDS = [p.relative_to(ROOT).as_posix() for p in DOCS]


@pytest.mark.parametrize("page", DOCS, ids=IDS)
def test_every_python_fence_is_collected_or_marked_notest(page):
    """A plain line scan and the engine's parser must find the same Python fences."""
    text = page.read_text("utf8")
    scanned = pages.scan_python_fences(text)
    parsed = [b.line for b in pages.read_page(page)]
    missed = sorted(set(scanned) - set(parsed))
    assert not missed, (
        f"Python fences the engine would not run: "
        f"{', '.join(f'{page.relative_to(ROOT)}:{n}' for n in missed)} "
        "(indent them as a container body, or mark them {.python notest})"
    )
    assert len(parsed) == len(scanned)


@pytest.mark.parametrize("page", DOCS, ids=IDS)
def test_code_lines_fit_the_content_column(page):
    rel = page.relative_to(ROOT)
    long = [
        f"{rel}:{block.line}+{i}: {len(line)} characters"
        for block in pages.read_page(page)
        for i, line in enumerate(block.source.splitlines(), 1)
        if len(line) > 80
    ]
    assert not long, "code lines longer than 80 characters:\n" + "\n".join(long)


def test_the_line_scan_finds_fences_in_every_container():
    text = (ROOT / "tests" / "pages" / "containers.md").read_text()
    scanned = pages.scan_python_fences(text)
    assert len(scanned) == 6  # four in containers, one notest, one at top level
    assert scanned == [b.line for b in pages.read_page(ROOT / "tests/pages/containers.md")]


def test_a_fence_the_parser_cannot_see_is_caught(tmp_path):
    """A fence indented under a paragraph is code text to Markdown, not a fence."""
    page = tmp_path / "hidden.md"
    page.write_text("Some text\n\n    ```python\n    x = 1\n    ```\n")
    scanned = pages.scan_python_fences(page.read_text())
    parsed = [b.line for b in pages.read_page(page)]
    assert scanned == [3] and parsed == []


def front_matter(page: Path) -> dict:
    import yaml

    text = page.read_text("utf8")
    if not text.startswith("---\n"):
        return {}
    return yaml.safe_load(text[4 : text.index("\n---", 4)]) or {}


CONTENT = [p for p in DOCS if p.name != "abbreviations.md"]
CONTENT_IDS = [p.relative_to(ROOT).as_posix() for p in CONTENT]


@pytest.mark.parametrize("page", CONTENT, ids=CONTENT_IDS)
def test_every_page_has_a_description(page):
    meta = front_matter(page)
    description = meta.get("description", "")
    assert isinstance(description, str) and 20 <= len(description) <= 200, (
        f"{page.relative_to(ROOT)}: front matter needs a one-line `description:` "
        "(20-200 characters); it is the page's summary in search and link previews"
    )


@pytest.mark.parametrize("page", CONTENT, ids=CONTENT_IDS)
def test_concept_pages_have_tags_and_references(page):
    if not any(b.runs for b in pages.read_page(page)):
        pytest.skip("not a concept page (no running code)")
    rel = page.relative_to(ROOT)
    assert front_matter(page).get("tags"), f"{rel}: front matter needs `tags:`"
    text = page.read_text("utf8")
    assert "\n## References" in text, f"{rel}: needs a `## References` section"
    refs = text.split("\n## References", 1)[1]
    assert "http" in refs, f"{rel}: the References section has no links"


@pytest.mark.parametrize("page", CONTENT, ids=CONTENT_IDS)
def test_images_in_prose_have_alt_text(page):
    import re

    text = page.read_text("utf8")
    missing = [
        f"{page.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}"
        for m in re.finditer(r"!\[\s*\]\(", text)
    ]
    assert not missing, f"images without alt text: {missing}"


SECTIONS = ("foundations", "makemore", "workflow")
CONCEPTS = sorted(
    p for s in SECTIONS for p in (ROOT / "docs" / s).glob("*.md") if p.name != "index.md"
)
LABS = sorted((ROOT / "docs" / "labs").glob("*.ipynb"))


def _links(text: str, base: Path) -> set[Path]:
    """Pages a Markdown text links to, resolved from the folder it sits in."""
    import re

    found = set()
    for target in re.findall(r"\]\(([^)#\s]+\.(?:md|ipynb))(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # not a URL
            found.add((base / target).resolve())
    return found


def test_learning_path_links_every_page():
    path = ROOT / "docs" / "path.md"
    linked = _links(path.read_text("utf8"), path.parent)
    missing = [p.relative_to(ROOT).as_posix() for p in CONCEPTS + LABS if p not in linked]
    assert not missing, f"docs/path.md does not link: {missing}"


@pytest.mark.parametrize("section", SECTIONS)
def test_section_index_lists_its_pages(section):
    index = ROOT / "docs" / section / "index.md"
    linked = _links(index.read_text("utf8"), index.parent)
    pages_ = [p for p in CONCEPTS if p.parent.name == section]
    missing = [p.name for p in pages_ if p not in linked]
    assert not missing, f"docs/{section}/index.md does not list: {missing}"


def _builds_on(text: str, base: Path) -> set[Path]:
    import re

    m = re.search(r"\*\*Builds on:?\*\*:?(.*?)(?:\n\n|\n\*\*)", text, re.S)
    return _links(m[1], base) if m else set()


@pytest.mark.parametrize("page", CONCEPTS, ids=[p.name for p in CONCEPTS])
def test_cross_links_go_both_ways(page):
    """A page names what it builds on; each of those pages links back to it."""
    rel = page.relative_to(ROOT).as_posix()
    text = page.read_text("utf8")
    assert "**Builds on" in text or page.name in ("tensors.md",), (
        f"{rel}: needs a `**Builds on:**` line linking the pages it builds on")
    for earlier in _builds_on(text, page.parent):
        if not earlier.exists():
            continue  # a broken link fails the strict build, with its own message
        back = _links(earlier.read_text("utf8"), earlier.parent)
        assert page.resolve() in back, (
            f"{rel} builds on {earlier.relative_to(ROOT).as_posix()}, "
            "which does not link back to it (add it to that page's **Leads to:** line)"
        )


@pytest.mark.parametrize("page", CONCEPTS, ids=[p.name for p in CONCEPTS])
def test_concept_pages_have_search_keywords(page):
    """Other names and common misspellings, so search finds the page by them too."""
    keywords = front_matter(page).get("keywords")
    assert keywords and all(isinstance(k, str) for k in keywords), (
        f"{page.relative_to(ROOT).as_posix()}: front matter needs `keywords:` "
        "(other names and common misspellings readers search for)")


def _nav_entries(items) -> set[str]:
    found = set()
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            found |= _nav_entries(value)
        elif isinstance(value, str):
            found.add(value)
    return found


def test_every_page_is_in_the_navigation():
    from mkdocs.config import load_config

    nav = _nav_entries(load_config(str(ROOT / "mkdocs.yml")).nav)
    docs = ROOT / "docs"
    pages_ = [p.relative_to(docs).as_posix()
              for p in [*docs.rglob("*.md"), *LABS] if p.name != "abbreviations.md"]
    missing = sorted(set(pages_) - nav)
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"


@pytest.mark.parametrize("page", CONTENT, ids=CONTENT_IDS)
def test_internal_links_point_at_pages(page):
    """Relative links to .md/.ipynb files must name a file that exists (anchors are
    checked by the strict build, which knows the headings' final ids)."""
    text = page.read_text("utf8")
    broken = [
        target for target in _links(text, page.parent) if not target.exists()
    ]
    assert not broken, (f"{page.relative_to(ROOT).as_posix()} links to missing "
                        f"pages: {sorted(str(b.relative_to(ROOT)) for b in broken)}")


@pytest.mark.parametrize("page", DOCS, ids=IDS)
def test_fences_keep_the_house_style(page):
    """Brace-form options only (bare words break Material's rendering), known ones."""
    problems = pages.style_problems(page)
    assert not problems, "\n".join(problems)


def test_the_house_style_check_catches_bare_and_unknown_options(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# P\n\n```python notest\nx\n```\n\n```{.python notset}\ny\n```\n"
                    "\n```{.python timeout=60 title=\"a b.py\"}\nz = 1\n```\n")
    problems = pages.style_problems(page)
    assert len(problems) == 2, problems
    assert "p.md:3: fence options must use the brace form" in problems[0]
    assert "p.md:7: unknown fence option 'notset'" in problems[1]


PROSE_PAGES = [p for p in DOCS if p.name != "abbreviations.md"]


@pytest.mark.parametrize("page", PROSE_PAGES,
                         ids=[p.relative_to(ROOT).as_posix() for p in PROSE_PAGES])
def test_numbers_in_the_prose_are_cited_or_quoted(page):
    """A number from a run is a citation, {{ expr:fmt }}; one from elsewhere a
    quotation, {{q TEXT | SOURCE }} (see CONTRIBUTING: "Numbers in the prose")."""
    found = pages.bare_numbers(page)
    assert not found, "numbers typed into the prose:\n" + "\n".join(found)


def test_the_number_check_tells_typed_from_cited_and_quoted(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "---\ndescription: 2.5 in front matter is not prose\n---\n\n# P\n\n"
        "```python\nloss = 2.4546\n```\n\n"
        "The loss is 2.4546 after 200,000 steps, about 22 % saturate.\n"
        "The loss is {{ loss:.4f }}; Karpathy reports {{q 2.454 | makemore part 1 }}.\n"
        "Small counts (3 layers), int8, fp16, 2D, GPT-2, `x = 12.5`, $e^{12}$,\n"
        "torch 2.13, in 2003, version 1.6.1 and\n\n"
        "11. an ordered list item\n\n## References\n\n- Bengio et al., p. 1137.\n"
    )
    found = [f.rsplit("/", 1)[-1] for f in pages.bare_numbers(page)]
    assert found == ["p.md:11: 2.4546", "p.md:11: 200,000", "p.md:11: 22 %"]


def test_the_learning_path_never_lists_a_page_before_what_it_builds_on():
    """Each page's **Builds on** pages come earlier in docs/path.md."""
    import re

    path = ROOT / "docs" / "path.md"
    order: list[Path] = []
    for target in re.findall(r"\]\(([^)#\s]+\.(?:md|ipynb))", path.read_text("utf8")):
        page = (path.parent / target).resolve()
        if page not in order:
            order.append(page)
    late = [
        f"{page.relative_to(ROOT).as_posix()} (step {order.index(page) + 1}) builds on "
        f"{earlier.relative_to(ROOT).as_posix()} (step {order.index(earlier) + 1})"
        for page in CONCEPTS if page in order
        for earlier in _builds_on(page.read_text("utf8"), page.parent)
        if earlier in order and order.index(earlier) > order.index(page)
    ]
    assert not late, "the path lists a page before what it builds on:\n" + "\n".join(late)


@pytest.mark.parametrize("page", CONCEPTS, ids=[p.name for p in CONCEPTS])
def test_concept_pages_end_with_exercises_and_folded_solutions(page):
    """2-4 exercises, each solution folded (`??? success "Solution"`) and run by the
    suite like any block."""
    import re

    text = page.read_text("utf8")
    rel = page.relative_to(ROOT).as_posix()
    assert text.count("\n## Exercises\n") == 1, f"{rel}: needs one `## Exercises` section"
    exercises = text.split("\n## Exercises\n", 1)[1].split("\n## ", 1)[0]
    solutions = re.findall(r'^ *\?\?\? success "Solution', exercises, re.M)
    assert 2 <= len(solutions) <= 4 or "questionnaire" in rel, (
        f"{rel}: {len(solutions)} folded solutions; give 2-4 exercises")
    runs = [b for b in pages.read_page(page) if b.runs and b.line > text.split(
        "\n## Exercises\n", 1)[0].count("\n") + 1]
    assert len(runs) >= len(solutions), f"{rel}: every solution needs a running block"
