"""pytest plugin: every Python block of a page is a test, and a page runs like a notebook.

The engine owns its pytest items. A page (`.md`, `.mdx`, `.svx`) is read once per
session (pages.read_page) into blocks; each running block becomes a `BlockItem`
named `page.md::[CodeFence#N][line:L]` that carries its block. All blocks of a page
share one module namespace and run exactly once, top to bottom; a block selected alone
first runs its predecessors; after a failure the page's later blocks are skipped with
the reason. When the page's last block finishes (or one fails) its namespace, figures
and CUDA memory are released and the process state it changed is restored.

It extends pytest-markdown-docs through that plugin's documented extension points:
the `pytest_markdown_docs_markdown_it` hook (the engine's parser, which sees fences in
admonitions, details and tabs and expands snippet includes), the
`pytest_markdown_docs_globals` hook, and the fence options it documents (`notest`,
`fixture:NAME`, `continuation`, `retry:N`, MDX `pmd-metadata` comments, plain and
brace forms). Its runner registry is private (modal-labs/pytest-markdown-docs#43 keeps
it so on purpose), so the engine does not use it: Python docstrings under
`--markdown-docs` are still collected and run by the plugin itself.

Beyond the plugin, a block: fails on any exception (SyntaxError at the page line,
SystemExit, a KeyboardInterrupt it raised itself, an error while drawing its figures);
fails on any warning unless its fence says `warns="Category"` (then the warning is part
of its output); fails when it runs longer than its limit (`timeout=SECONDS`, default
`dlnotes_block_timeout`); shows the values of a failing `assert`; and records its
printed output, figures and the values the prose cites from it (records.py).
Lab notebooks (docs/labs/*.ipynb) are collected too: one test each (labs.py).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import gc
import inspect
import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import warnings
from pathlib import Path

import pytest

from . import pages, records

SEED = 0
MARKDOWN_SUFFIXES = (".md", ".mdx", ".svx")
DEFAULT_TIMEOUT = 300.0  # seconds a block may run; a fence can set timeout=SECONDS


def pytest_addoption(parser):
    parser.getgroup("dlnotes").addoption(
        "--require-cuda",
        action="store_true",
        help="fail at start unless a CUDA device is visible (the GPU job)",
    )
    parser.addini(
        "dlnotes_library_warnings",
        "warnings raised inside libraries (not by page code) that a block may trigger "
        "without failing, in the `action:message:category:module` form of "
        "filterwarnings; each with the upstream issue that removes it",
        type="linelist", default=[],
    )
    parser.addini(
        "dlnotes_block_timeout",
        f"seconds one page block may run before it fails (default {DEFAULT_TIMEOUT:g})",
        default=str(DEFAULT_TIMEOUT),
    )


def pytest_configure(config):
    # torch and numpy are imported once, up front: they cannot be imported twice in a
    # process, which pytester's in-process runs would otherwise do (the plugin's own
    # test suite runs that way).
    import numpy  # noqa: F401
    import torch  # noqa: F401

    config.pluginmanager.register(_HandOver(), "dlnotes-markdown-handover")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("DLNOTES_OFFLINE", "1")  # tests never touch the network
    if hasattr(config, "workerinput"):
        _share_the_cores(torch)
    if getattr(config.option, "dist", "no") == "load":
        # pytest-xdist: keep a page's blocks on one worker, so none runs twice
        config.option.dist = "loadfile"
    if getattr(config.option, "dist", "no") == "loadgroup":
        from .scheduling import register_timer

        register_timer(config)  # each work unit's time, for the next run's order
    if config.getoption("require_cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                "--require-cuda was given but torch sees no CUDA device "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                "refusing to test on the CPU instead"
            )


def _share_the_cores(torch) -> None:
    """A pytest-xdist worker's share of the cores: torch's threads (and OMP_NUM_THREADS,
    which a lab's kernel and a page's child processes inherit) set to cores / workers.
    Left at torch's default (every core), two workers on two cores run four threads that
    spin waiting for each other: measured on 2 cores, the pages' run took 59 s that way
    and 49 s this way."""
    from .scheduling import usable_cores

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, usable_cores() // max(workers, 1))
    given = os.environ.get("OMP_NUM_THREADS", "")
    if not (given.isdigit() and int(given) > 0):  # a count set by hand is kept
        os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's --dist loadgroup, as tests/dev.py test runs it: pages, labs and
    the tests sharing a module fixture each on one worker, longest first."""
    if config.getoption("dist") != "loadgroup":
        return None
    from .scheduling import make_scheduler

    return make_scheduler(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_markdown_docs_markdown_it():
    """pytest-markdown-docs' documented hook: the parser that finds fences."""
    return pages.PageParser()


def pytest_collect_file(file_path, parent):
    if file_path.suffix in MARKDOWN_SUFFIXES:
        return PageFile.from_parent(parent, path=file_path)
    if file_path.suffix == ".ipynb" and file_path.parent.name == "labs":
        return LabFile.from_parent(parent, path=file_path)
    return None


class _HandOver:
    """Under --markdown-docs, pytest-markdown-docs collects Markdown files too; the
    engine's items replace its items for those files. The plugin offers no documented
    way to hand a file to another collector (its runner API is private on purpose:
    modal-labs/pytest-markdown-docs#43), so this wrapper drops its Markdown collectors.
    Its collectors for Python docstrings are kept."""

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(self, file_path, parent):
        collectors = yield
        if file_path.suffix not in MARKDOWN_SUFFIXES:
            return collectors
        return [c for c in collectors if isinstance(c, PageFile)
                or not type(c).__module__.startswith("pytest_markdown_docs")]


# ------------------------------------------------------------------------ labs


class LabFile(pytest.File):
    """A lab notebook (docs/labs/*.ipynb): one test that runs it top to bottom."""

    def collect(self):
        yield LabItem.from_parent(self, name="lab")


class LabItem(pytest.Item):
    def runtest(self):
        from .labs import execute_lab

        execute_lab(self.path)

    def repr_failure(self, excinfo, style=None):
        from .labs import LabError

        if excinfo.errisinstance(LabError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{pages._rel(self.path)} (lab)"


# ----------------------------------------------------------------------- pages


class PageFile(pytest.File):
    """A Markdown page: read once, one item per running block."""

    def collect(self):
        try:
            blocks = pages.read_page(self.path)
            citations = pages.read_citations(self.path)
            for block in blocks:
                _check_retry(self.path, block)
        except pages.PageError as e:
            raise self.CollectError(str(e)) from None
        page = Page(self.path, [b for b in blocks if b.runs], citations, self.config)
        for index, block in enumerate(page.blocks):
            yield BlockItem.from_parent(
                self, name=f"[CodeFence#{index + 1}][line:{block.line}]",
                page=page, index=index,
            )


def _check_retry(path: Path, block: pages.Block) -> None:
    """retry:N, as pytest-markdown-docs documents it: one non-negative count."""
    counts = block.prefixed("retry")
    if len(counts) > 1:
        raise pages.PageError(path, block.line, "Multiple retry counts are not "
                              f"supported, use one: {counts}")
    if counts and not counts[0].isdigit():
        raise pages.PageError(path, block.line, f"Invalid retry count {counts[0]!r}: "
                              "must be a non-negative integer")


def _signature_of(names: list[str]):
    """A callable whose signature asks pytest for these fixtures (pytest.Function's
    documented way to request fixtures; the block itself runs in BlockItem.runtest)."""

    def block(**fixtures):
        raise AssertionError("BlockItem.runtest runs the block")  # pragma: no cover

    block.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
    )
    return block


class BlockItem(pytest.Function):
    """One running block of a page; it carries its block, nothing is looked up."""

    def __init__(self, *, page: Page, index: int, **kwargs):
        self.page, self.index = page, index
        self.block = page.blocks[index]
        super().__init__(callobj=_signature_of(self.block.prefixed("fixture")), **kwargs)
        self.add_marker("markdown-docs")

    def runtest(self):
        fixtures = {n: self.funcargs[n] for n in self.block.prefixed("fixture")}
        self.page.run(self.index, fixtures)

    def reportinfo(self):
        return self.path, self.block.line - 1, f"{self.page.rel}:{self.block.line}"

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(EngineError):
            return str(excinfo.value)
        return self.page.describe_failure(self.block, excinfo)


# -------------------------------------------------------------- errors it reports


class EngineError(Exception):
    """A failure whose message is the whole report (it names page and line)."""


class PredecessorFailed(EngineError):
    pass


class BlockTimeout(EngineError):
    pass


class BlockRaised(Exception):
    """SystemExit, KeyboardInterrupt and friends raised by a block: a test failure,
    not the end of the session."""


class ExpectedWarningMissing(EngineError):
    pass


class CitationError(EngineError):
    pass


class LeftBehind(EngineError):
    pass


# ---------------------------------------------------------------- page sessions


class Page:
    """One page's namespace and progress through its blocks."""

    def __init__(self, path: Path, blocks, citations, config):
        self.path, self.rel, self.config = path, pages._rel(path), config
        self.blocks = blocks
        self.cited_after: dict[str, list] = {}
        for c in citations:
            if c.after is not None:
                self.cited_after.setdefault(c.after.digest, []).append(c)
        self.done = 0  # blocks executed so far
        self.failure: str | None = None
        self.module: types.ModuleType | None = None
        self.finished = False
        self.last_output = ""
        config.stash.setdefault(_PAGES, []).append(self)

    # -- running

    def run(self, index: int, fixtures: dict) -> None:
        if self.failure:
            pytest.skip(self.failure)
        if index < self.done:
            raise EngineError(f"{self.rel}:{self.blocks[index].line} already ran in "
                              "this session (a page's blocks run once, in order)")
        if self.module is None:
            self._start()
        while self.done < index:  # predecessors of a block selected alone
            before = self.blocks[self.done]
            missing = before.prefixed("fixture")
            try:
                if missing:
                    raise EngineError(f"it needs the fixtures {missing}; run the page "
                                      "whole")
                self._execute(before, {})
            except pytest.skip.Exception:
                continue
            except BaseException as e:
                raise PredecessorFailed(
                    f"{self.rel}:{before.line}: an earlier block failed, so this one "
                    f"cannot run: {type(e).__name__}: {e}"
                ) from e
        self._execute(self.blocks[index], fixtures)

    def _start(self) -> None:
        self.saved = _ProcessState()
        self.files_before = _repository_files()
        name = "dlnotes_page_" + re.sub(r"\W", "_", self.rel.rsplit(".", 1)[0])
        self.module = types.ModuleType(name)
        self.module.__file__ = str(self.path)
        sys.modules[name] = self.module  # page classes pickle like a real module's
        for extra in self.config.hook.pytest_markdown_docs_globals():
            self.module.__dict__.update(extra)
        self.kind = records.device_kind()
        self.record = records.load(self.path, self.kind)
        self.record["run"] = records.environment()
        live = {b.digest for b in self.blocks}
        self.record["blocks"] = {
            d: v for d, v in self.record["blocks"].items() if d in live
        }
        self.record["failures"] = {}  # this run's failing block, for `serve` to show
        _fresh_state()

    def _execute(self, block: pages.Block, fixtures: dict) -> None:
        self.done += 1
        retries = int((block.prefixed("retry") or ["0"])[0])
        for attempt in range(retries + 1):
            out = io.StringIO()
            try:
                self.module.__dict__.update(fixtures)
                entry = self._attempt(block, out)
                break
            except pytest.skip.Exception:
                self.last_output = out.getvalue()
                self._end_if_last()
                raise
            except BaseException as e:
                self.last_output = out.getvalue()
                if attempt < retries and isinstance(e, Exception):
                    continue
                _close_figures()
                self.failure = f"an earlier block failed: {self.rel}:{block.line}"
                self.record["blocks"].pop(block.digest, None)
                self.record["failures"][block.digest] = {
                    "line": block.line, "error": self._failure_text(block, e)}
                self.finish()
                raise
        self.record["blocks"][block.digest] = entry
        self._end_if_last()

    def _end_if_last(self) -> None:
        if self.done == len(self.blocks):
            left = self.finish()
            if left:
                raise LeftBehind(
                    f"{self.rel}: the page left files in the repository: "
                    f"{', '.join(left)}. Pages write into a temporary folder "
                    "(tempfile.TemporaryDirectory()), never into the repository."
                )

    def _attempt(self, block: pages.Block, out: io.StringIO) -> dict:
        where = f"{self.rel}:{block.line}"
        code = _compile(block, self.path, self.config)
        expected = _warning_categories(block, where)
        limit = float(block.option("timeout") or
                      self.config.getini("dlnotes_block_timeout") or DEFAULT_TIMEOUT)
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
                warnings.catch_warnings(record=True) as caught, \
                _time_limit(limit, where), _own_interrupts():
            warnings.resetwarnings()
            warnings.simplefilter("error")  # any warning from page code fails it ...
            for spec in self.config.getini("dlnotes_library_warnings"):
                _filter(spec)  # ... but for known ones raised inside libraries ...
            for category in expected:  # ... and unless the block says it shows one
                warnings.simplefilter("always", category)
            try:
                result = eval(code, self.module.__dict__)  # noqa: S307 - page code
                if inspect.iscoroutine(result):  # top-level await
                    import asyncio

                    asyncio.run(result)
            except (SystemExit, KeyboardInterrupt, GeneratorExit) as e:
                raise BlockRaised(f"the block raised {type(e).__name__}"
                                  f"{': ' + str(e) if str(e) else ''}") from e
            seconds = time.perf_counter() - start
            figures = _collect_figures(where)
            cited = self._cite(block)
        for w in caught:
            out.write(f"{w.category.__name__}: {w.message}\n")
        missing = [c.__name__ for c in expected
                   if not any(issubclass(w.category, c) for w in caught)]
        if missing:
            raise ExpectedWarningMissing(
                f"{where}: the fence says warns={','.join(missing)}, but the block "
                "raised no such warning")
        entry = {
            "line": block.line,
            "output": out.getvalue(),
            "figures": figures,
            "seconds": round(seconds, 4),
            "render_seconds": round(time.perf_counter() - start - seconds, 4),
        }
        if cited:
            entry["cited"] = cited
        return entry

    def _cite(self, block: pages.Block) -> dict:
        cited = {}
        for c in self.cited_after.get(block.digest, []):
            try:
                cited[c.body] = c.evaluate(self.module.__dict__)
            except Exception as e:  # noqa: BLE001 - reported with page:line
                raise CitationError(
                    f"{self.rel}:{c.line}: the prose cites {c.text}, which cannot be "
                    f"computed after the block at line {block.line}: "
                    f"{type(e).__name__}: {e}") from None
        return cited

    # -- releasing

    def finish(self) -> list[str]:
        """Save the record, restore the process, release the namespace. Returns the
        files the page left in the repository."""
        if self.finished or self.module is None:
            return []
        self.finished = True
        _close_figures()
        self.saved.restore()
        records.save(self.path, self.kind, self.record)
        sys.modules.pop(self.module.__name__, None)
        namespace = self.module.__dict__
        for name in [n for n in namespace if not n.startswith("__")]:
            del namespace[name]  # the page's tensors, models and figures go now
        # (dunder names stay: torch.compile keeps helpers there and removes them
        # itself when the compiled code goes)
        self.module = self.record = None
        left = sorted(_repository_files() - self.files_before)
        if "torch._dynamo" in sys.modules:  # compiled graphs hold the page's globals
            sys.modules["torch"].compiler.reset()
        gc.collect()
        # What survives is the process's own (modules, caches): later collections skip
        # it, so releasing a page costs what the page made, not the whole heap's size
        gc.freeze()
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
            sys.modules["torch"].cuda.empty_cache()
        return left

    # -- reporting

    def _failure_text(self, block: pages.Block, err: BaseException) -> str:
        """`page:line: Error: message` (the line the error came from, in the page) and
        what the block printed before it: what `serve` shows in place of the output."""
        if isinstance(err, EngineError):
            text = str(err)
        else:
            raised = err.__cause__ if isinstance(err, BlockRaised) else err
            mine = str(self.path)
            at = [f.lineno for f in traceback.extract_tb(raised.__traceback__)
                  if f.filename == mine]
            if isinstance(raised, SyntaxError) and raised.filename == mine:
                at.append(raised.lineno)
            line = at[-1] if at else block.line
            message = "".join(traceback.format_exception_only(err)).strip()
            text = f"{self.rel}:{line}: {message}"
        if self.last_output.strip():
            text += "\n--- printed before the error ---\n" + self.last_output.rstrip()
        return text

    def describe_failure(self, block: pages.Block, excinfo) -> str:
        err = excinfo.value
        raised = err.__cause__ if isinstance(err, BlockRaised) else None
        frames = traceback.extract_tb(raised.__traceback__ if raised else excinfo.tb)
        mine = str(self.path)
        first = next((i for i, f in enumerate(frames) if f.filename == mine),
                     len(frames))
        source = block.source.rstrip("\n").split("\n")
        width = len(str(block.line + len(source)))
        at = [f.lineno for f in frames if f.filename == mine]
        if isinstance(err, SyntaxError) and err.filename == mine:
            at.append(err.lineno)
        where = f" at line {at[-1]}" if at else ""
        lines = [f"{self.rel}:{block.line}: this block failed{where}",
                 "Error in code block:",
                 " " * width + "   ```"]
        lines += [f"{n:>{width}}   {text}"
                  for n, text in enumerate(source, block.line + 1)]
        lines += [" " * width + "   ```", "Traceback (most recent call last):"]
        if isinstance(err, SyntaxError) and err.filename == mine:
            lines.append(f'  File "{err.filename}", line {err.lineno}')
            lines.append(f"    {(err.text or '').strip()}")
        for f in frames[first:]:
            lines.append(f'  File "{f.filename}", line {f.lineno}, in {f.name}')
            if f.line:
                lines.append(f"    {f.line.strip()}")
        if raised is not None:
            lines += [f"{type(raised).__name__}: {raised}", str(err)]
        else:
            lines.append(excinfo.exconly())
        if self.last_output:
            lines += ["--- printed before the error ---", self.last_output.rstrip()]
        return "\n".join(lines)


_PAGES = pytest.StashKey[list]()


def pytest_sessionfinish(session):
    """Pages only partly selected (-k, a node id) still get their outputs recorded."""
    for page in session.config.stash.get(_PAGES, []):
        if page.done:
            left = page.finish()
            if left:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
                sys.stderr.write(f"{page.rel}: the page left files in the repository: "
                                 f"{', '.join(left)}\n")


# ----------------------------------------------------------- running one block


def _compile(block: pages.Block, path: Path, config):
    """The block's code at its page lines, with pytest's assertion rewriting."""
    source = "\n" * block.line + block.source
    tree = ast.parse(source, filename=str(path))
    if config.getoption("assertmode") == "rewrite":
        # pytest rewrites asserts only in modules it imports; it has no public API for
        # code it does not import (pytest-dev/pytest#9977), so the engine calls the
        # function its import hook calls.
        from _pytest.assertion.rewrite import rewrite_asserts

        rewrite_asserts(tree, source.encode(), str(path), config)
    return compile(tree, str(path), "exec", dont_inherit=True,
                   flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def _warning_categories(block: pages.Block, where: str) -> list[type[Warning]]:
    """The warnings a block shows on purpose: `{.python warns="FutureWarning"}`."""
    found = []
    for name in filter(None, (block.option("warns") or "").replace(",", " ").split()):
        category = getattr(builtins, name, None)
        if not (isinstance(category, type) and issubclass(category, Warning)):
            raise EngineError(f"{where}: warns={name} is not a built-in warning "
                              "category (e.g. DeprecationWarning)")
        found.append(category)
    return found


def _filter(spec: str) -> None:
    """Apply one `action:message:category:module` entry, as filterwarnings reads it."""
    action, message, category, module = (spec.split(":", 3) + ["", "", ""])[:4]
    cls = getattr(builtins, category.strip() or "Warning")
    warnings.filterwarnings(action.strip(), message.strip(), cls, module.strip())


@contextlib.contextmanager
def _time_limit(seconds: float, where: str):
    """Fail the block with page:line once it has run `seconds` (SIGALRM, main thread)."""
    usable = (hasattr(signal, "SIGALRM")
              and threading.current_thread() is threading.main_thread())
    if not usable or seconds <= 0:
        yield
        return

    def expired(signum, frame):
        raise BlockTimeout(
            f"{where}: the block ran longer than its limit of {seconds:g} s; make it "
            "faster, move it to the full tier, or raise the limit with "
            "{.python timeout=SECONDS}")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _own_interrupts():
    """Tell a KeyboardInterrupt the block raised from Ctrl-C: Ctrl-C still ends the
    session, a raised one only fails the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = []

    def handler(signum, frame):
        pressed.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    except BlockRaised as e:
        if pressed and isinstance(e.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)


# ------------------------------------------------------------- process state


class _ProcessState:
    """What a page may change and must not pass on to the next page."""

    def __init__(self):
        import torch

        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        self.dtype = torch.get_default_dtype()
        self.device = torch.get_default_device()
        self.grad = torch.is_grad_enabled()
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        self.threads = torch.get_num_threads()
        mpl = sys.modules.get("matplotlib")
        self.rc = dict(mpl.rcParams) if mpl else None

    def restore(self) -> None:
        import torch

        os.chdir(self.cwd)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        torch.set_default_dtype(self.dtype)
        if torch.get_default_device() != self.device:
            torch.set_default_device(None if self.device.type == "cpu" else self.device)
        torch.set_grad_enabled(self.grad)
        if (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) != (
                self.deterministic, self.warn_only):
            torch.use_deterministic_algorithms(self.deterministic,
                                               warn_only=self.warn_only)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        mpl = sys.modules.get("matplotlib")
        if mpl is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.rc is None:
                    mpl.rcdefaults()
                else:
                    dict.update(mpl.rcParams, self.rc)


def _fresh_state() -> None:
    """Every page starts from the same seeds and defaults."""
    import numpy as np
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    if "matplotlib" in sys.modules:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sys.modules["matplotlib"].rcdefaults()


def _repository_files() -> set[str]:
    """Files in the repository that git would see (tracked-and-changed or untracked,
    not ignored): a page that adds one has written into the repository.
    DLNOTES_REPOSITORY names another checkout to watch (the engine's own test of this
    check, so that it never writes into the repository other workers are watching)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "-z"],
            cwd=os.environ.get("DLNOTES_REPOSITORY", pages.ROOT),
            capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {entry[3:] for entry in out.split("\0") if entry.strip()}


# -------------------------------------------------------------------- figures


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
            raise EngineError(
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
    titles = [fig.get_suptitle()] if hasattr(fig, "get_suptitle") else []
    titles += [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center", "right")]
    return "; ".join(t.strip() for t in titles if t and t.strip())
