"""pytest plugin: every Python block of a page is a test, and a page runs like a notebook.

pytest-markdown-docs collects the blocks (one item per fence, named by page and line);
this plugin gives it
- a parser that sees fences in admonitions, details and tabs and expands snippets
  (pages.PageParser), and
- a runner in which all blocks of a page share one module namespace, each block runs
  exactly once per session, a block selected alone first runs its predecessors (once),
  and after a failure the page's later blocks are skipped with the reason.
Each block's printed output and matplotlib figures are recorded (records.py) for the site.
Lab notebooks (docs/labs/*.ipynb) are collected too: one test each (notebooks.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import sys
import time
import traceback
import types
from pathlib import Path

import pytest
from pytest_markdown_docs import plugin as markdown_docs
from pytest_markdown_docs._runners import _Runner, register_runner

from . import pages, records

SEED = 0


def pytest_addoption(parser):
    parser.getgroup("dlnotes").addoption(
        "--require-cuda",
        action="store_true",
        help="fail at start unless a CUDA device is visible (the GPU job)",
    )


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("DLNOTES_OFFLINE", "1")  # tests never touch the network
    config.option.markdowndocs_syntax = "superfences"
    if getattr(config.option, "dist", "no") == "load":
        # pytest-xdist: keep a page's blocks on one worker, so none runs twice
        config.option.dist = "loadfile"
    if config.getoption("require_cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                "--require-cuda was given but torch sees no CUDA device "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                "refusing to test on the CPU instead"
            )


@pytest.hookimpl(tryfirst=True)
def pytest_markdown_docs_markdown_it():
    return pages.PageParser()


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and not parent.config.option.markdowndocs:
        return PageFile.from_parent(parent, path=file_path)
    if file_path.suffix == ".ipynb" and file_path.parent.name == "labs":
        return LabFile.from_parent(parent, path=file_path)
    return None


class LabFile(pytest.File):
    """A lab notebook (docs/labs/*.ipynb): one test that runs it top to bottom."""

    def collect(self):
        yield LabItem.from_parent(self, name="lab")


class LabItem(pytest.Item):
    def runtest(self):
        from .notebooks import execute_lab

        execute_lab(self.path)

    def repr_failure(self, excinfo, style=None):
        from .notebooks import LabError

        if excinfo.errisinstance(LabError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{pages._rel(self.path)} (lab)"


class PageFile(markdown_docs.MarkdownTextFile):
    def collect(self):
        try:
            pages.read_page(self.path)  # bad fence options fail collection, with page:line
        except pages.PageError as e:
            raise self.CollectError(str(e)) from None
        yield from super().collect()


class PageSession:
    """One page's namespace and progress through its blocks."""

    def __init__(self, path: Path):
        self.path = path
        self.rel = pages._rel(path)
        self.blocks = [b for b in pages.read_page(path) if b.runs]
        self.done = 0  # blocks executed so far
        self.failure: str | None = None
        self.finished = False
        name = "dlnotes_page_" + re.sub(r"\W", "_", self.rel.removesuffix(".md"))
        self.module = types.ModuleType(name)
        self.module.__file__ = str(path)
        sys.modules[name] = self.module  # page classes pickle like a real module's
        self.kind = records.device_kind()
        self.record = records.load(path, self.kind)
        self.record["run"] = records.environment()
        live = {b.digest for b in self.blocks}
        self.record["blocks"] = {
            d: v for d, v in self.record["blocks"].items() if d in live
        }
        _fresh_state()

    def run_until(self, line: int) -> None:
        index = next(i for i, b in enumerate(self.blocks) if b.line == line)
        if self.failure:
            pytest.skip(self.failure)
        if index < self.done:
            raise RuntimeError(f"{self.rel}:{line} already ran in this session")
        while self.done < index:  # predecessors of a block selected alone
            before = self.blocks[self.done]
            try:
                self._execute(before)
            except BaseException as e:
                raise PredecessorFailed(
                    f"{self.rel}:{before.line}: an earlier block failed, so this one "
                    f"cannot run: {type(e).__name__}: {e}"
                ) from e
        self._execute(self.blocks[index])

    def _execute(self, block: pages.Block) -> None:
        code = compile(
            "\n" * block.line + block.source, str(self.path), "exec", dont_inherit=True
        )
        out = io.StringIO()
        self.done += 1
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                exec(code, self.module.__dict__)
            seconds = time.perf_counter() - start
            figures = _collect_figures(f"{self.rel}:{block.line}")
            render = time.perf_counter() - start - seconds  # drawing its figures
        except BaseException:
            _close_figures()
            self.failure = f"an earlier block failed: {self.rel}:{block.line}"
            self.record["blocks"].pop(block.digest, None)
            self._finish()
            self.last_output = out.getvalue()
            raise
        self.record["blocks"][block.digest] = {
            "line": block.line,
            "output": out.getvalue(),
            "figures": figures,
            "seconds": round(seconds, 4),
            "render_seconds": round(render, 4),
        }
        if self.done == len(self.blocks):
            self._finish()

    def _finish(self) -> None:
        """Write the page's record once: at its end, after a failure, or at session end."""
        if self.finished:
            return
        self.finished = True
        records.save(self.path, self.kind, self.record)
        sys.modules.pop(self.module.__name__, None)


class PredecessorFailed(Exception):
    pass


def _fresh_state() -> None:
    """Every page starts from the same seeds and defaults."""
    import numpy as np
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].rcdefaults()


def _collect_figures(where: str) -> list[dict]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    import matplotlib

    figures = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        alt = _alt_text(fig)
        if not alt:
            _close_figures()
            raise ValueError(
                f"{where}: a figure has no title; give it one with ax.set_title() or "
                "fig.suptitle() (it becomes the image's alt text)"
            )
        buf = io.StringIO()
        with matplotlib.rc_context({"svg.hashsalt": "dlnotes", "svg.fonttype": "path"}):
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        figures.append({"alt": alt, "svg": buf.getvalue()})
    return figures


def _close_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def _alt_text(fig) -> str:
    titles = [fig._suptitle.get_text()] if fig._suptitle else []
    titles += [ax.get_title() for ax in fig.axes]
    return "; ".join(t.strip() for t in titles if t and t.strip())


_sessions: dict[Path, PageSession] = {}


def pytest_sessionfinish(session):
    """Pages only partly selected (-k, a node id) still get their outputs recorded."""
    for page in _sessions.values():
        if page.done:
            page._finish()


@register_runner(default=True)
class PageRunner(_Runner):
    """The runner pytest-markdown-docs calls for every block (registered as its default)."""

    def runtest(self, test, args, **kwargs):
        path = Path(test.source_path)
        session = _sessions.get(path)
        if session is None:
            session = _sessions[path] = PageSession(path)
        session.run_until(test.start_line)

    def repr_failure(self, test, excinfo, style=None):
        path = Path(test.source_path)
        rel = pages._rel(path)
        if excinfo.errisinstance(PredecessorFailed):
            return str(excinfo.value)
        frames = traceback.extract_tb(excinfo.tb)
        first = next(
            (i for i, f in enumerate(frames) if f.filename == str(path)), len(frames)
        )
        lines = [f"{rel}:{test.start_line}: this block failed"]
        for f in frames[first:]:
            name = rel if f.filename == str(path) else f.filename
            lines.append(f"  {name}:{f.lineno} in {f.name}")
            if f.line:
                lines.append(f"    {f.line.strip()}")
        lines.append(excinfo.exconly())
        session = _sessions.get(path)
        output = getattr(session, "last_output", "")
        if output:
            lines += ["--- printed before the error ---", output.rstrip()]
        return "\n".join(lines)
