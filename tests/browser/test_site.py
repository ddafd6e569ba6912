"""The built site in a real browser (headless Debian chromium through Playwright).

Run with `python3 tests/dev.py browser` after `python3 tests/dev.py build`. Screenshots land
in build/screenshots/. Every request the pages make is checked: nothing may leave
127.0.0.1, and the console must stay free of errors.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
SHOTS = ROOT / "build" / "screenshots"
PROOF_PAGES = [
    "foundations/tensor-storage-and-view/",
    "foundations/cross-entropy/",
    "foundations/kaiming-init/",
]


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


@pytest.mark.parametrize("path", PROOF_PAGES)
def test_page_shows_outputs_figures_math_and_stamp(loaded, path):
    v = loaded(path)
    page = v.page
    outputs = page.locator(".dl-output")
    assert outputs.count() > 0 and outputs.first.is_visible()
    assert page.locator(".dl-stamp").first.inner_text().count("blocks ran on") >= 1
    for img in page.locator("img.dl-figure").all():
        img.scroll_into_view_if_needed()  # figures load lazily
        assert img.get_attribute("alt")
        page.wait_for_function(
            "i => i.complete && i.naturalWidth > 0", arg=img.element_handle(),
            timeout=10_000,
        )
    maths = page.locator("article math")
    assert maths.count() > 0, "no rendered math"
    boxes = [m.bounding_box() for m in maths.all()[:10]]
    drawn = [b for b in boxes if b and b["width"] > 5 and b["height"] > 5]
    assert drawn, f"math elements take no space: {boxes}"
    assert "```" not in page.locator("article").inner_text()
    shot(page, path.strip("/").replace("/", "-"))
    v.check_clean()


@pytest.mark.parametrize(
    "query, expected",
    [("cross_entropy", "cross-entropy"), ("is_contiguous", "tensor-storage-and-view"),
     ("kaiming_normal_", "kaiming-init"), ("manual_seed", ""),
     ("broadcast_shapes", "broadcasting"), ("onnxruntime", "export-onnx"),
     ("scaled_dot_product_attention", "attention"), ("micrograd", "micrograd"),
     ("FlattenConsecutive", "own-torch-nn"), ("DistributedDataParallel", "ddp"),
     ("bigram", "bigram"), ("kaming", "kaiming-init"), ("attension", "attention")],
)
def test_search_finds_identifiers(loaded, query, expected):
    v = loaded()  # one page load for every query
    page = v.page
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")  # the previous query's results go
    page.locator(".md-search-result__item").first.wait_for(state="detached")
    box.type(query, delay=20)  # typed key by key, as a reader does
    href = _first_result_when_settled(page)
    if expected:
        assert expected in href
    shot(page, f"search-{query}")
    v.check_clean()


def _first_result_when_settled(page, quiet=0.75, timeout=10.0) -> str:
    """The first search result's link once the list has stopped changing. Each typed key
    starts a search of the worker's; on a busy machine the answers to the shorter
    prefixes can still arrive after the last key, so the first result seen may be
    for "kaiming" rather than "kaiming_normal_". Settled: the same link for `quiet`
    seconds."""
    first = page.locator(".md-search-result__item a").first
    first.wait_for(timeout=timeout * 1000)
    end = time.monotonic() + timeout
    href, since = first.get_attribute("href"), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < end, "the search results never settled"
        page.wait_for_timeout(50)
        now = first.get_attribute("href")
        if now != href:
            href, since = now, time.monotonic()
    return href


@pytest.mark.parametrize("query", ["manual_seed", "zero_grad", "cross_entropy"])
def test_a_concept_page_comes_before_labs_that_use_an_identifier(loaded, query):
    index = json.loads((SITE / "search" / "search_index.json").read_text())
    in_labs = [d["location"] for d in index["docs"] if d["location"].startswith("labs/")
               and query in d["text"]]
    assert in_labs, f"no lab uses {query}: pick another identifier for this test"
    v = loaded()
    page = v.page
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    page.locator(".md-search-result__item").first.wait_for(state="detached")
    box.type(query, delay=20)
    href = _first_result_when_settled(page)
    assert "/labs/" not in href, href
    v.check_clean()


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_dark_mode_toggle_keeps_figures_legible(visit):
    v = visit("foundations/kaiming-init/")
    page = v.page
    assert page.evaluate("document.body.dataset.mdColorScheme") == "default"
    page.locator("form[data-md-component=palette] label:visible").first.click()
    page.wait_for_function("document.body.dataset.mdColorScheme === 'slate'")
    body = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert _luminance(body) < 0.3, f"dark mode background is {body}"
    img = page.locator("img.dl-figure").first
    img.scroll_into_view_if_needed()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0",
                           arg=img.element_handle(), timeout=10_000)
    behind = img.evaluate("i => getComputedStyle(i).backgroundColor")
    assert _luminance(behind) > 0.9, f"figure background in dark mode: {behind}"
    shot(page, "dark-mode-figure")
    v.check_clean()


def test_copy_button_copies_the_block(visit):
    page = visit("foundations/cross-entropy/",
                 permissions=["clipboard-read", "clipboard-write"]).page
    block = page.locator("article .highlight").first
    block.hover()
    block.locator("button[data-md-type=copy]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    shown = block.locator("code").inner_text()
    assert copied.strip() and copied.strip() == shown.strip()


def test_phone_width(visit):
    v = visit("foundations/cross-entropy/", width=390)
    page = v.page
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at 390px"
    box = page.locator("article").bounding_box()
    assert box["width"] > 300, f"the article is {box['width']}px wide on a phone"
    assert page.locator(".md-header__button[for=__drawer]").is_visible()  # menu button
    shot(page, "phone-cross-entropy")
    v.check_clean()


def test_download_notebook_link_serves_a_notebook(loaded):
    import json

    v = loaded("foundations/cross-entropy/")
    link = v.page.locator("a.dl-notebook").first
    assert link.get_attribute("download") is not None
    response = v.page.request.get(urljoin(v.page.url, link.get_attribute("href")))
    assert response.ok
    nb = json.loads(response.text())
    assert nb["nbformat"] == 4
    kinds = {c["cell_type"] for c in nb["cells"]}
    assert kinds == {"code", "markdown"}
    assert "snippets" in "".join(nb["cells"][0]["source"])  # the set-up cell
    colab = v.page.locator("a.dl-colab").first.get_attribute("href")
    assert colab.startswith("https://colab.research.google.com/github/")
    v.check_clean()


LABS = sorted(p.stem for p in (ROOT / "docs" / "labs").glob("*.ipynb"))


@pytest.mark.parametrize("name", LABS)
def test_lab_shows_executed_outputs(loaded, name):
    import json

    v = loaded(f"labs/{name}/")
    page = v.page
    assert page.locator(".jp-OutputArea-output").count() > 0, "no cell outputs"
    assert "Executed on" in page.locator(".dl-stamp").first.inner_text()
    href = page.locator("a.dl-notebook").first.get_attribute("href")
    nb = json.loads(page.request.get(urljoin(page.url, href)).text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
    shot(page, f"lab-{name}")
    v.check_clean()


FIGURES = ROOT / "build" / "browser-figures.json"


def _record_figure(key, value):
    import json

    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[key] = value
    FIGURES.write_text(json.dumps(data, indent=1, sort_keys=True))


def test_time_from_page_load_to_search_results(visit, server):
    """Measured, not asserted: printed by `tests/dev.py bench`."""
    import time

    v = visit(wait_until=None)
    v.page.goto(server, wait_until="load")
    start = time.perf_counter()
    box = v.page.locator("input.md-search__input")
    box.click()
    box.type("softmax")
    v.page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
    elapsed = time.perf_counter() - start
    _record_figure("search_results_after_load_ms", round(elapsed * 1000))
    v.check_clean()


def test_first_visit_weight_is_recorded():
    """Each page's first-visit weight, gzip-compressed as GitHub Pages serves it
    (tests/site_weights.py), recorded for `tests/dev.py bench`. (Every page is loaded,
    its console and requests checked, by test_accessibility.py, once per page.)"""
    from tests.browser.test_accessibility import site_pages
    from tests.site_weights import weights

    found = weights(SITE)
    assert set(found["pages"]) == {p or "/" for p in site_pages()}
    assert all(w > 0 for w in found["pages"].values())
    _record_figure("pages", len(found["pages"]))
    _record_figure("median_first_visit_gz_kb", found["median_kb"])
    _record_figure("max_first_visit_gz_kb", found["max_kb"])
    index = SITE / "search" / "search_index.json"
    _record_figure("search_index_kb", round(index.stat().st_size / 1024, 1))


def test_prose_shows_cited_values_and_marked_quotations(loaded):
    """Numbers in sentences come from the recorded run (dl-cite) or are marked as
    quotations with their source (dl-quote); none is left as a placeholder."""
    v = loaded("makemore/bigram-counting/")
    page = v.page
    cited = page.locator(".dl-cite")
    assert cited.count() >= 3
    assert page.locator(".dl-cite-missing").count() == 0
    first = cited.first.inner_text()
    assert any(ch.isdigit() for ch in first), first
    assert "Computed by the block at line" in cited.first.get_attribute("title")
    quote = page.locator(".dl-quote").first
    assert "(quoted:" in quote.inner_text()
    assert page.evaluate("getComputedStyle(document.querySelector('.dl-quote'))"
                         ".fontStyle") == "italic"
    assert "{{" not in page.locator("article").inner_text()
    quote.scroll_into_view_if_needed()
    shot(page, "citations")
    v.check_clean()


def test_search_index_holds_cited_values_not_their_markup():
    import json
    import re

    index = json.loads((SITE / "search" / "search_index.json").read_text())
    texts = [re.sub(r"<code>.*?</code>", "", d["text"]) for d in index["docs"]]
    assert not [t for t in texts if "{{" in t]  # (code may show the syntax itself)
    assert any("dl-cite" not in t and "quoted:" in t for t in texts)
