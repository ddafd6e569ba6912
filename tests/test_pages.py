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


def test_container_openers_are_read_in_one_place():
    """Admonitions, details and tabs: the one reader every part of the engine uses."""
    o = pages.container_opener('  !!! note "Why"')
    assert (o.indent, o.kind, o.marker, o.type, o.title) == (2, "admonition", "!!!",
                                                              "note", "Why")
    o = pages.container_opener("??? question")
    assert (o.kind, o.folded, o.title, o.heading) == ("details", True, None, "Question")
    o = pages.container_opener('???+ success "Solution"')
    assert (o.kind, o.folded, o.type, o.heading) == ("details", False, "success",
                                                      "Solution")
    o = pages.container_opener('===! "By hand"')
    assert (o.kind, o.marker, o.type, o.heading) == ("tab", "===!", "", "By hand")
    for line in ("!!!", "=== tab", '==="x"', "Some !!! note", "!!!note", "    x = 1"):
        assert pages.container_opener(line) is None, line


def test_a_fence_the_parser_cannot_see_is_caught(tmp_path):
    """A fence indented under a paragraph is code text to Markdown, not a fence."""
    page = tmp_path / "hidden.md"
    page.write_text("Some text\n\n    ```python\n    x = 1\n    ```\n")
    scanned = pages.scan_python_fences(page.read_text())
    parsed = [b.line for b in pages.read_page(page)]
    assert scanned == [3] and parsed == []


def front_matter(page: Path) -> dict:
    import yaml

    return yaml.safe_load(pages.split_front_matter(page.read_text("utf8"))[0]) or {}


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


def _links_in_order(text: str, base: Path) -> list[Path]:
    import re

    found: list[Path] = []
    for target in re.findall(r'href="([^"#]+\.(?:md|ipynb))', text):
        page = (base / target).resolve()
        if page not in found:
            found.append(page)
    return found


def _render(page: Path) -> str:
    """A page's body through the site's Markdown extensions, as the build renders it."""
    import markdown
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"))
    md = markdown.Markdown(extensions=config.markdown_extensions,
                           extension_configs=config.mdx_configs)
    text = page.read_text("utf8")
    return md.convert(text.split("\n---\n", 1)[1] if text.startswith("---\n") else text)


def test_the_catalogue_extension_is_configured():
    """Without it the directives are HTML comments and the lists silently vanish."""
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"))
    assert "tests.engine.catalogue" in config.markdown_extensions
    assert config.mdx_configs["tests.engine.catalogue"]["docs_dir"] == "docs"


def test_the_catalogue_reads_every_page_without_an_error():
    """Every page and lab has its fields, builds on pages that exist, without a cycle,
    and the path lists nothing before what it builds on (CatalogueError otherwise)."""
    from tests.engine import catalogue

    cat = catalogue.load(ROOT / "docs")
    listed = {ROOT / "docs" / rel for rel in cat.entries}
    assert listed == set(CONCEPTS + LABS)


def test_the_rendered_path_lists_every_page_once_after_what_it_builds_on():
    from tests.engine import catalogue

    cat = catalogue.load(ROOT / "docs")
    path = ROOT / "docs" / "path.md"
    order = _links_in_order(_render(path), path.parent)
    expected = [ROOT / "docs" / rel for rel in cat.path_order()]
    assert [p for p in order if p in expected] == expected
    late = [
        f"{rel} (step {expected.index(ROOT / 'docs' / rel) + 1}) builds on {link.target}"
        for rel, e in cat.entries.items() for link in e.builds_on
        if link.target in cat.entries
        and expected.index(ROOT / "docs" / link.target) > expected.index(ROOT / "docs" / rel)
    ]
    assert not late, "the path lists a page before what it builds on:\n" + "\n".join(late)


@pytest.mark.parametrize("section", (*SECTIONS, "labs"))
def test_section_index_lists_its_pages_core_first(section):
    from tests.engine import catalogue

    cat = catalogue.load(ROOT / "docs")
    index = ROOT / "docs" / section / "index.md"
    order = [p for p in _links_in_order(_render(index), index.parent)
             if p.parent == index.parent]
    mine = [rel for rel in cat.path_order() if cat.entries[rel].section == section]
    core = [rel for rel in mine if cat.entries[rel].tier == "core"]
    expected = [ROOT / "docs" / rel for rel in core + [r for r in mine if r not in core]]
    assert order == expected, f"docs/{section}/index.md lists {order}"


def test_the_home_page_reading_time_uses_the_rate_it_quotes():
    import re

    text = (ROOT / "docs" / "index.md").read_text("utf8")
    (wpm,) = re.findall(r"<!-- path-summary wpm=(\d+) -->", text)
    assert re.search(rf"{{{{q {wpm} words a minute \|", text)


@pytest.mark.parametrize("page", CONCEPTS, ids=[p.name for p in CONCEPTS])
def test_concept_pages_show_builds_on_and_leads_to(page):
    text = page.read_text("utf8")
    for directive in ("<!-- builds-on -->", "<!-- leads-to -->"):
        assert directive in text, (f"{page.relative_to(ROOT).as_posix()}: needs the "
                                   f"line `{directive}` under its introduction")


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


@pytest.mark.parametrize("page", CONCEPTS, ids=[p.name for p in CONCEPTS])
def test_concept_pages_end_with_exercises_and_folded_solutions(page):
    """2-4 exercises, each solution folded (`??? success "Solution"`) and run by the
    suite like any block."""
    text = page.read_text("utf8")
    rel = page.relative_to(ROOT).as_posix()
    assert text.count("\n## Exercises\n") == 1, f"{rel}: needs one `## Exercises` section"
    exercises = text.split("\n## Exercises\n", 1)[1].split("\n## ", 1)[0]
    openers = [pages.container_opener(line) for line in exercises.split("\n")]
    solutions = [o for o in openers if o and o.folded and o.type == "success"
                 and (o.title or "").startswith("Solution")]
    assert 2 <= len(solutions) <= 4 or "questionnaire" in rel, (
        f"{rel}: {len(solutions)} folded solutions; give 2-4 exercises")
    runs = [b for b in pages.read_page(page) if b.runs and b.line > text.split(
        "\n## Exercises\n", 1)[0].count("\n") + 1]
    assert len(runs) >= len(solutions), f"{rel}: every solution needs a running block"


def test_page_notebooks_show_the_cross_links():
    """A notebook is made from the page without Markdown extensions: the notebook
    builder renders the builds-on and leads-to lines itself."""
    from tests.engine import notebooks

    nb = notebooks.page_notebook(ROOT / "docs" / "makemore" / "gpt-block.md", "https://x/")
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "**Builds on:** [Multi-head attention](gpt-multi-head.md)." in prose
    assert "**Leads to:** [Training the GPT](gpt-training.md)." in prose
    assert "<!--" not in prose
