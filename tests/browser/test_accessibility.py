"""Every page of the built site loaded once: a clean console, nothing from other hosts,
and axe-core in light and dark.

Run with `python3 tests/dev.py browser` after `python3 tests/dev.py build` (it installs
axe-core from tests/browser/axe/package-lock.json into build/axe/ first), or directly:
`.venv/bin/python -m pytest -m browser tests/browser/test_accessibility.py`.

In the light scheme axe runs all of its rules; in the dark one only the rules whose
outcome depends on colours (contrast, links told apart by colour alone): switching the
scheme changes an attribute on <body> and nothing else of the document, so every other
rule would give the light run's answer again. A page fails on any violation of impact
"serious" or "critical" (contrast, names of controls, landmarks, ...). The summary of
every run, minor and moderate findings included, goes to build/axe-report.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
AXE = ROOT / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
REPORT = ROOT / "build" / "axe-report.json"
FAILING = ("serious", "critical")
SCHEMES = ("default", "slate")  # mkdocs.yml's two palettes: light and dark
COLOUR_RULES = ["color-contrast", "link-in-text-block"]  # what the dark run checks


def site_pages() -> list[str]:
    """Every page of site/ as a URL path ('' for the home page); with no site/ yet, the
    home page alone, so that the fixture says what to run instead of nothing running."""
    pages = sorted(p.parent.relative_to(SITE).as_posix() for p in SITE.rglob("index.html"))
    paths = [("" if p == "." else p + "/") for p in pages if not p.startswith("assets")]
    return paths or [""]


# Session scope (not module): under pytest-xdist the pages spread over the workers, each
# with its own browser, server and page object.
@pytest.fixture(scope="session")
def axe_page(browser, server):
    """One page for every visit (a Visit: console errors and outside requests are
    collected, other hosts refused). The search index is served with no documents: every
    page would otherwise build the whole index in its worker (the search tests cover
    search), and axe checks the search form either way."""
    from tests.browser.conftest import Visit

    if not AXE.exists():
        pytest.fail(f"no {AXE.relative_to(ROOT)}: run `python3 tests/dev.py browser`, "
                    "which installs axe-core from tests/browser/axe/")
    visit = Visit(browser, server)
    config = json.loads((SITE / "search" / "search_index.json").read_text())["config"]
    visit.page.route("**/search/search_index.json", lambda r: r.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"config": config, "docs": []})))
    report: dict[str, dict] = {}
    yield visit, server, report
    visit.close()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    path = REPORT.with_name(f"{REPORT.stem}-{worker}.json") if worker else REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")


# The scheme is switched the way the palette toggle switches it (an attribute on <body>),
# with transitions off so that axe reads the final colours, not ones halfway there.
SET_SCHEME = """scheme => {
  if (!document.getElementById('dl-axe-still')) {
    const s = document.createElement('style');
    s.id = 'dl-axe-still';
    s.textContent = '*, *::before, *::after { transition: none !important; }';
    document.head.append(s);
  }
  document.body.setAttribute('data-md-color-scheme', scheme);
}"""

RUN_AXE = """async rules => {
  const options = {resultTypes: ['violations']};
  if (rules) options.runOnly = {type: 'rule', values: rules};
  const r = await axe.run(document, options);
  return r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))
  }));
}"""


def describe(violations: list[dict], limit: int = 3) -> str:
    """One line per rule, then its nodes grouped by axe's message (for contrast, one
    group per pair of colours), each with a few of its elements."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']}")
        groups: dict[str, list[str]] = {}
        for n in v["nodes"]:
            groups.setdefault(" ".join(n["summary"].split())[:400], []).append(n["target"])
        for summary, targets in sorted(groups.items(), key=lambda g: -len(g[1])):
            lines.append(f"  {len(targets)} x {summary}")
            lines.append("      e.g. " + " | ".join(targets[:limit]))
    return "\n".join(lines)


@pytest.mark.parametrize("path", site_pages())
def test_page_loads_clean_and_has_no_serious_accessibility_violations(axe_page, path):
    visit, site_url, report = axe_page
    page = visit.page
    visit.errors.clear()
    page.goto(site_url + path, wait_until="load")
    assert page.locator("article").count() == 1, path
    visit.check_clean()
    page.add_script_tag(path=str(AXE))
    failures = []
    for scheme in SCHEMES:
        page.evaluate(SET_SCHEME, scheme)
        found = page.evaluate(RUN_AXE, None if scheme == SCHEMES[0] else COLOUR_RULES)
        report[f"{path or '/'} {scheme}"] = {
            v["id"]: [v["impact"], len(v["nodes"])] for v in found}
        bad = [v for v in found if v["impact"] in FAILING]
        if bad:
            failures.append(f"[{scheme}]\n{describe(bad)}")
    assert not failures, f"/{path}\n" + "\n".join(failures)
    visit.check_clean()


SHOTS = ROOT / "build" / "screenshots"
SHOT_PAGES = ["foundations/cross-entropy/", "labs/makemore/"]  # code, outputs, links


@pytest.mark.parametrize("path", SHOT_PAGES)
def test_screenshots_light_and_dark(axe_page, path):
    """Pictures of the colours the checks above passed, for a person to look at."""
    visit, site_url, _ = axe_page
    page = visit.page
    page.goto(site_url + path, wait_until="load")
    blocks = page.locator("article .highlight, article .highlight-ipynb")
    blocks.nth(2).scroll_into_view_if_needed()  # a block with its output below
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in SCHEMES:
        page.evaluate(SET_SCHEME, scheme)
        name = f"a11y-{path.strip('/').replace('/', '-')}-{scheme}.png"
        page.screenshot(path=str(SHOTS / name))
        assert (SHOTS / name).stat().st_size > 10_000
