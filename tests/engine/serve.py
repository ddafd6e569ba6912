"""The edit loop of `mkdocs serve`: a saved page runs again, and the browser reloads.

mkdocs_hooks.on_serve starts an EditLoop. It watches the pages (docs_dir/**/*.md) and
the snippets modules:

- a saved page has its blocks run again, that page only, in a fresh pytest (a fresh
  namespace), which records its outputs (records.py) or its failing block's error;
- a saved snippets module runs again every page that imports it
  (pages.snippet_modules, which follows imports between modules);
- a record written by another run (`tests/dev.py test PAGE` in a terminal) touches its
  page, so the page is rebuilt with it.

The runs go through tests/pytest_runs.py: one warm process has imported torch, numpy,
matplotlib and pytest once, and forks a child per run, so a page with fast blocks costs
its blocks plus about a second. When a run ends the loop touches the page file, so that
`mkdocs serve --dirty` rebuilds that page (a dirty build rebuilds the pages whose source
is newer than their HTML) and livereload reloads the browser. The loop's own touches are
told from a save by the modification time it set, so a touch starts no run. The server
does not watch the records itself: a dirty rebuild started by a record would race the
touch (a page touched between MkDocs reading and building it fails that rebuild).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from . import pages

log = logging.getLogger("mkdocs.plugins.dlnotes.serve")
SETTLE = 0.05  # seconds to wait after a save for the editor's other writes


class EditLoop:
    def __init__(self, docs_dir: Path, snippets_dir: Path | None = None,
                 env: dict | None = None, outputs: Path | None = None):
        self.docs_dir = Path(docs_dir).resolve()
        self.snippets_dir = Path(snippets_dir or pages.ROOT / "snippets").resolve()
        self.outputs = Path(outputs).resolve() if outputs else None
        self.env = {**os.environ, **(env or {})}
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(pages.ROOT), self.env.get("PYTHONPATH")]))
        self.args = ["-q", "-p", "no:cacheprovider"]
        if not self.docs_dir.is_relative_to(pages.ROOT):  # a project elsewhere (tests)
            self.args += ["-c", str(pages.ROOT / "pyproject.toml"),
                          "--rootdir", str(self.docs_dir.parent)]
        self.pending: list[Path] = []
        self.touched: dict[Path, int] = {}  # page -> the mtime the loop gave it
        self.own: dict[Path, float] = {}  # page -> until when its records are the loop's
        self.cond = threading.Condition()
        self.observer = None
        self.runs = 0  # finished runs (for tests)

    # -- watching

    def start(self) -> EditLoop:
        import watchdog.events
        import watchdog.observers

        from tests import pytest_runs

        threading.Thread(target=pytest_runs.start, daemon=True).start()  # warm up
        handler = watchdog.events.FileSystemEventHandler()
        handler.on_any_event = self._event
        self.observer = watchdog.observers.Observer()
        self.observer.schedule(handler, str(self.docs_dir), recursive=True)
        if self.snippets_dir.is_dir():
            self.observer.schedule(handler, str(self.snippets_dir), recursive=True)
        if self.outputs is not None:
            self.outputs.mkdir(parents=True, exist_ok=True)
            self.observer.schedule(handler, str(self.outputs), recursive=True)
        self.observer.daemon = True
        self.observer.start()
        threading.Thread(target=self._work, daemon=True, name="dlnotes-edit-loop").start()
        return self

    def _event(self, event) -> None:
        if event.is_directory or event.event_type not in ("modified", "created", "moved"):
            return
        path = Path(getattr(event, "dest_path", "") or event.src_path)
        try:
            self.saved(path)
        except Exception as e:  # noqa: BLE001 - the server keeps serving
            log.warning(f"dlnotes: cannot tell what {path} changes: {e}")

    def saved(self, path: Path) -> list[Path]:
        """The pages a save of `path` runs again (queued); [] for none."""
        path = Path(path).resolve()
        if (self.outputs and path.suffix == ".json"
                and path.is_relative_to(self.outputs)):
            self.recorded(path)
            return []
        if path.suffix == ".py" and path.is_relative_to(self.snippets_dir):
            module = path.relative_to(self.snippets_dir).with_suffix("").as_posix()
            found = self.pages_using(module)
        elif path.suffix == ".md" and path.is_relative_to(self.docs_dir):
            try:
                mtime = path.stat().st_mtime_ns
            except FileNotFoundError:
                return []
            if self.touched.get(path) == mtime:  # the loop's own touch
                return []
            found = [path]
        else:
            return []
        with self.cond:
            for page in found:
                if page not in self.pending:
                    self.pending.append(page)
            self.cond.notify_all()
        return found

    def recorded(self, record: Path) -> None:
        """A record changed: touch its page, unless the loop's own run wrote it."""
        parts = record.relative_to(self.outputs).parts  # (kind, *page path)
        rel = "/".join(parts[1:]).removesuffix(".json")
        page = Path(rel) if Path(rel).is_absolute() else pages.ROOT / rel
        page = page.resolve()
        with self.cond:
            if page in self.pending or self.own.get(page, 0) > time.monotonic():
                return
        if page.is_file() and page.is_relative_to(self.docs_dir):
            self.touch(page)

    def pages_using(self, module: str) -> list[Path]:
        found = []
        for page in sorted(self.docs_dir.rglob("*.md")):
            try:
                code = [b.source for b in pages.read_page(page) if b.runs]
            except pages.PageError:
                continue
            if code and module in pages.snippet_modules(code, self.snippets_dir):
                found.append(page)
        return found

    # -- running

    def _work(self) -> None:
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
            time.sleep(SETTLE)
            with self.cond:
                page = self.pending.pop(0)
            try:
                self.run(page)
            except Exception as e:  # noqa: BLE001 - the server keeps serving
                log.warning(f"dlnotes: running {page} failed: {e}")

    def run(self, page: Path) -> int:
        """Run one page's blocks in a fresh pytest; touch it so serve rebuilds it."""
        from tests import pytest_runs

        rel = pages._rel(page)
        with self.cond:
            self.own[page] = float("inf")
        start = time.perf_counter()
        code, output = pytest_runs.run_pytest([*self.args, str(page)], env=self.env,
                                              cwd=pages.ROOT)
        seconds = time.perf_counter() - start
        if code == 0:
            log.info(f"dlnotes: {rel} ran in {seconds:.1f} s; outputs recorded")
        else:
            tail = "\n".join(output.rstrip().split("\n")[-15:])
            log.warning(f"dlnotes: {rel} failed (exit {code}, {seconds:.1f} s); the "
                        f"page shows the error in place of the output:\n{tail}")
        self.touch(page)
        with self.cond:
            self.own[page] = time.monotonic() + 2  # its record's events still arrive
            self.runs += 1
            self.cond.notify_all()
        return code

    def touch(self, page: Path) -> None:
        now = time.time_ns()
        self.touched[page] = now  # before the event arrives
        os.utime(page, ns=(now, now))
        self.touched[page] = page.stat().st_mtime_ns

    def wait(self, runs: int, timeout: float) -> bool:
        """Until `runs` runs have finished (tests)."""
        with self.cond:
            return self.cond.wait_for(lambda: self.runs >= runs, timeout)
