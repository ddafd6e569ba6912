"""Session fixtures of the browser tests: one server of site/ and one headless chromium
for the whole session, and pages loaded once and shared.

    server   (session) base URL of site/ served on 127.0.0.1, e.g. "http://127.0.0.1:PORT/"
    browser  (session) the Playwright chromium Browser
    visit    (test)    visit(path="", width=1280) -> Visit: a fresh context (cold cache),
                       the page loaded; closed when the test ends. For tests that click,
                       type or change settings.
    loaded   (session) loaded(path="", width=1280) -> Visit: the page loaded once per
                       session and shared by every test asking for the same path and
                       width; read it, do not change it (a test that types into the search
                       box clears it first).

A Visit has .page (Playwright Page), .errors (console errors and page errors so far),
.outside (requests to other hosts, all blocked) and .check_clean(), which asserts both
lists are empty; .close() closes its context (visit and loaded close theirs at the end).
visit(path, wait_until=None) opens the context without loading anything, and further
keywords go to the context (visit("x/", permissions=["clipboard-read"])).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
CHROMIUM = os.environ.get("DLNOTES_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def server():
    if not (SITE / "index.html").exists():
        pytest.fail("site/ is not built: run `python3 tests/dev.py build` first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM} (set DLNOTES_CHROMIUM)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


class Visit:
    """A page with its console errors and every outside request it tried."""

    def __init__(self, browser, server, width=1280, **context):
        self.context = browser.new_context(viewport={"width": width, "height": 900},
                                           **context)
        self.page = self.context.new_page()
        self.errors, self.outside = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        host = urlparse(server).netloc

        def route(r):
            if urlparse(r.request.url).netloc in (host, ""):
                return r.continue_()
            self.outside.append(r.request.url)
            return r.abort()

        self.page.route("**/*", route)

    def check_clean(self):
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.outside, f"requests to third-party hosts: {self.outside}"

    def close(self):
        if not self.closed:
            self.closed = True
            self.context.close()

    closed = False


@pytest.fixture
def visit(browser, server):
    visits = []

    def make(path="", width=1280, wait_until="networkidle", **context):
        v = Visit(browser, server, width, **context)
        visits.append(v)
        if wait_until:
            v.page.goto(server + path, wait_until=wait_until)
        return v

    yield make
    for v in visits:
        v.close()


@pytest.fixture(scope="session")
def loaded(browser, server):
    pages: dict[tuple[str, int], Visit] = {}

    def get(path="", width=1280):
        if (path, width) not in pages:
            v = Visit(browser, server, width)
            v.page.goto(server + path, wait_until="networkidle")
            pages[path, width] = v
        return pages[path, width]

    yield get
    for v in pages.values():
        v.close()
