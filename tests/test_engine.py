"""The engine, proven on its own test pages (tests/pages), each run in a fresh pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.engine import pages, records
from tests.pytest_runs import run_pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "pages"


def run_pages(tmp_path, *names, args=(), env=None, item=""):
    """Run test pages in a subprocess; return (exit code, output, {item: outcome}).

    `item` selects one block by its node id suffix, as `pytest page.md::ITEM` does.
    A name that is a Path (a file already in tmp_path) is run where it is.
    """
    copies = []
    for name in names:
        if not isinstance(name, Path):
            shutil.copy(PAGES / name, tmp_path / name)
            name = tmp_path / name
        copies.append(f"{name}{'::' + item if item else ''}")
    junit = tmp_path / "junit.xml"
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DLNOTES_OUTPUTS": str(tmp_path / "outputs"),
        "DLNOTES_TEST_LOG": str(tmp_path / "log.txt"),
        **(env or {}),
    }
    code, output = run_pytest(
        ["-c", ROOT / "pyproject.toml", "--rootdir", tmp_path, "-p", "no:cacheprovider",
         "-rA", f"--junitxml={junit}", *args, *copies], env=full_env)
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            detail = "".join(
                (c.get("message") or "") + (c.text or "") for c in case
            )
            key = case.get("name")
            if len(names) > 1:  # blocks of different pages may share a name
                key = f"{case.get('classname')}::{key}"
            outcomes[key] = (kinds[0] if kinds else "passed", detail)
    return code, output, outcomes


def recorded(tmp_path, page):
    """The record run_pages wrote for a page (its outputs live under tmp_path)."""
    os.environ["DLNOTES_OUTPUTS"] = str(tmp_path / "outputs")
    try:
        return records.load(page, "cpu")
    finally:
        del os.environ["DLNOTES_OUTPUTS"]


def block_lines(name):
    return [b.line for b in pages.read_page(PAGES / name) if b.runs]


def log(tmp_path):
    return (tmp_path / "log.txt").read_text()


def test_blocks_share_a_namespace_and_run_exactly_once(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "once.md")
    assert code == 0, out
    assert [o for o, _ in outcomes.values()] == ["passed"] * 3
    assert log(tmp_path) == "123"  # each block once, in order


def test_a_block_selected_alone_runs_its_predecessors_once(tmp_path):
    last = f"[CodeFence#3][line:{block_lines('once.md')[2]}]"
    code, out, outcomes = run_pages(tmp_path, "once.md", item=last)
    assert code == 0, out
    assert list(outcomes) == [last]
    assert log(tmp_path) == "123"  # the two earlier blocks ran first, once


def test_k_selection_of_later_blocks_runs_each_block_once(tmp_path):
    second, third = block_lines("once.md")[1:]
    code, out, outcomes = run_pages(
        tmp_path, "once.md", args=["-k", f"line:{second} or line:{third}"]
    )
    assert code == 0, out
    assert len(outcomes) == 2
    assert log(tmp_path) == "123"


def test_a_failure_names_page_and_line_and_skips_the_rest(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "failing.md")
    assert code == 1
    names = list(outcomes)
    assert [outcomes[n][0] for n in names] == ["passed", "failure", "skipped", "skipped"]
    failure = outcomes[names[1]][1]
    assert "failing.md:7: this block failed at line 9" in failure
    assert "ZeroDivisionError" in failure
    assert "about to fail" in failure  # what the block printed before failing
    for name in names[2:]:
        assert "an earlier block failed" in outcomes[name][1]
        assert "failing.md:7" in outcomes[name][1]
    assert "NameError" not in out


def test_a_predecessor_failure_is_reported_on_the_selected_block(tmp_path):
    third = block_lines("failing.md")[2]
    code, out, outcomes = run_pages(
        tmp_path, "failing.md", item=f"[CodeFence#3][line:{third}]"
    )
    assert code == 1
    ((outcome, detail),) = outcomes.values()
    assert outcome == "failure"
    assert "failing.md:7: an earlier block failed" in detail


def test_fences_in_containers_run_and_notest_does_not(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "containers.md")
    assert code == 0, out
    assert len(outcomes) == 5
    blocks = pages.read_page(PAGES / "containers.md")
    assert [b.runs for b in blocks] == [True] * 4 + [False, True]


def test_snippets_expand_and_a_missing_region_fails(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "snippet.md", "snippet_missing.md")
    assert code != 0
    ok = [k for k, (o, _) in outcomes.items() if o == "passed"]
    assert len(ok) == 1, out  # snippet.md's block ran with the included code
    assert "snippet_missing.md:3: snippet include:" in out
    assert "no_such_region" in out and "could not be located" in out
    (block,) = pages.read_page(PAGES / "snippet.md")
    assert "def double(x):" in block.source and "--8<--" not in block.source


def test_page_classes_pickle_figures_are_recorded_and_seeds_reset(tmp_path):
    code, out, _ = run_pages(tmp_path, "pickle_and_seed.md", "seed_again.md")
    assert code == 0, out
    first = recorded(tmp_path, tmp_path / "pickle_and_seed.md")
    second = recorded(tmp_path, tmp_path / "seed_again.md")
    one, two = sorted(first["blocks"].values(), key=lambda b: b["line"])
    (again,) = second["blocks"].values()
    assert one["output"] == again["output"]  # both pages start from seed 0
    assert json.loads(one["output"])[0] == pytest.approx(0.4962566)  # torch seed 0
    (figure,) = two["figures"]
    assert figure["alt"] == "A falling line"
    assert figure["svg"].lstrip().startswith("<?xml") and "<svg" in figure["svg"]
    assert first["run"]["torch"].startswith("2.")


def test_a_figure_without_a_title_fails(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "untitled_figure.md")
    assert code == 1
    (detail,) = [d for _, d in outcomes.values()]
    assert "untitled_figure.md:3: a figure has no title" in detail


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has CUDA"
)
def test_require_cuda_fails_at_start_without_a_gpu(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "once.md", args=["--require-cuda"])
    assert code != 0
    assert "--require-cuda was given but torch sees no CUDA device" in out
    assert not outcomes and not (tmp_path / "log.txt").exists()


SITE_PAGES = {
    # a block changed after the run: its output and the next block's are stale
    "page.md": "# Page\n\n```python\nx = 1\nprint(x)\n```\n\n"
               "```python\nprint(x + 1)\n```\n",
    # recorded on the CPU and (written below) on a GPU that printed something else
    "speed.md": "# Speed\n\n```python\nprint('measured')\n```\n\n"
                "```python\nprint('same everywhere')\n```\n",
    # a cited value and a quotation; then the citation's format changes
    "cited.md": "# Page\n\n```python\nloss = 2.4546123\n```\n\n"
                "The loss is {{ loss:.3f }}; the lecture says "
                "{{q 2.454 | makemore part 1 }}.\n",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One test run of the site pages and three builds shared by the tests below: a
    strict build of the fresh records, then, with page.md and cited.md changed, a
    strict build (it fails) and a lenient one (as `mkdocs serve`)."""
    tmp = tmp_path_factory.mktemp("site")
    docs, outputs = tmp / "docs", tmp / "outputs"
    docs.mkdir()
    for name, text in SITE_PAGES.items():
        (docs / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DLNOTES_OUTPUTS": str(outputs)}
    code, out = run_pytest(["-q", "-p", "no:cacheprovider", "-c", ROOT / "pyproject.toml",
                            "--rootdir", tmp, *sorted(docs.iterdir())], env=env)
    assert code == 0, out
    cpu = next((outputs / "cpu").rglob("speed.md.json"))
    gpu = json.loads(cpu.read_text())
    gpu["run"]["device"] = "NVIDIA H100 80GB HBM3"
    first = min(gpu["blocks"].values(), key=lambda b: b["line"])
    first["output"] = "measured on the GPU\n"
    target = outputs / "cuda" / cpu.relative_to(outputs / "cpu")
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(gpu))
    config = tmp / "mkdocs.yml"
    config.write_text(
        f"site_name: t\ndocs_dir: {docs}\nsite_dir: {tmp / 'site'}\n"
        f"hooks: [{ROOT / 'tests/engine/mkdocs_hooks.py'}]\n"
        "markdown_extensions: [pymdownx.superfences, "
        "{pymdownx.tabbed: {alternate_style: true}}]\n")

    def build(*args):
        done = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "-f", str(config), *args],
            cwd=ROOT, env=env, capture_output=True, text=True)
        html = {name: (tmp / "site" / name[:-3] / "index.html").read_text()
                for name in SITE_PAGES if done.returncode == 0}
        return done, html

    built = {"fresh": build("--strict")}
    (docs / "page.md").write_text(SITE_PAGES["page.md"].replace("x = 1", "x = 2"))
    (docs / "cited.md").write_text(SITE_PAGES["cited.md"].replace("loss:.3f", "loss:.2f"))
    built["stale"] = build("--strict")
    built["lenient"] = build()
    return built


def test_stale_and_missing_outputs_fail_the_strict_build(site):
    """Record a page, change one block, and build: the build names page and line."""
    fresh, html = site["fresh"]
    assert fresh.returncode == 0, fresh.stderr
    assert "dl-output" in html["page.md"] and "2/2 blocks ran" in html["page.md"]

    stale, _ = site["stale"]
    assert stale.returncode != 0
    assert "page.md:3: recorded output is stale" in stale.stderr
    assert "page.md:8: recorded output is stale" in stale.stderr  # a later block, too
    assert "python3 tests/dev.py test" in stale.stderr

    lenient, html = site["lenient"]  # as in `mkdocs serve`: a placeholder says how
    assert lenient.returncode == 0
    assert html["page.md"].count("Output stale") == 2


def test_gpu_outputs_show_beside_cpu_outputs_when_they_differ(site):
    """A block whose GPU run printed something else gets CPU and GPU tabs."""
    built, html = site["fresh"]
    assert built.returncode == 0, built.stderr
    html = html["speed.md"]
    assert html.count("tabbed-set") == 1  # only the block whose outputs differ
    assert "GPU: NVIDIA H100 80GB HBM3" in html and "measured on the GPU" in html
    assert "2/2 blocks ran on NVIDIA H100 80GB HBM3" in html  # the GPU stamp


def test_cited_values_render_and_a_stale_one_fails_the_strict_build(site):
    fresh, html = site["fresh"]
    assert fresh.returncode == 0, fresh.stderr
    html = html["cited.md"]
    assert 'class="dl-cite"' in html and ">2.455</span>" in html
    assert "2.454<span class=\"dl-quote-source\"> (quoted: makemore part 1)" in html
    assert "{{" not in html

    stale, _ = site["stale"]
    assert stale.returncode != 0
    assert "cited.md:7: the cited value {{ loss:.2f }} is stale" in stale.stderr
    _, html = site["lenient"]
    assert "⟨loss:.2f: not recorded⟩" in html["cited.md"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _served(url: str) -> str:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf8")
    except (urllib.error.URLError, OSError):
        return ""


def _until(url: str, seen, timeout: float) -> tuple[str, float]:
    """Poll the served page until seen(html); (html, seconds it took)."""
    import time

    start = time.perf_counter()
    html = ""
    while time.perf_counter() - start < timeout:
        html = _served(url)
        if seen(html):
            return html, time.perf_counter() - start
        time.sleep(0.1)
    return html, float("inf")


@pytest.mark.slow
def test_serve_runs_a_saved_page_and_shows_a_failing_block_in_place(tmp_path):
    """The edit loop end to end, without a browser: `mkdocs serve --dirty` on a small
    project; saving a page records its new output and the served HTML shows it; a
    failing block shows its error with page:line. The seconds from save to served HTML are printed (goal: 3)."""
    docs, outputs = tmp_path / "docs", tmp_path / "outputs"
    docs.mkdir()
    page = docs / "fast.md"
    text = "# Fast\n\n```python\nx = 20\nprint('value', x + 1)\n```\n"
    page.write_text(text)
    (docs / "other.md").write_text("# Other\n\nNo code.\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"site_name: t\ndocs_dir: {docs}\nsite_dir: {tmp_path / 'site'}\n"
        f"hooks: [{ROOT / 'tests/engine/mkdocs_hooks.py'}]\n"
        "markdown_extensions: [admonition, pymdownx.superfences]\n")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DLNOTES_OUTPUTS": str(outputs)}
    server = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "--dirty", "-f", str(config),
         "-a", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/fast/"
    try:
        html, _ = _until(url, lambda h: "Output missing" in h, 120)
        assert "Output missing" in html  # served, nothing recorded yet
        figures = {}
        # 1. a save runs the page: the served HTML shows the new output (the first run
        # also waits for the warm process to import torch)
        for x, label in ((30, "first"), (40, "warm")):
            page.write_text(text.replace("x = 20", f"x = {x}"))
            html, figures[label] = _until(url, lambda h, x=x: f"value {x + 1}" in h, 120)
            assert f"value {x + 1}" in html, html[-3000:]
            assert "1/1 blocks ran" in html
        record = json.loads(next((outputs / "cpu").rglob("fast.md.json")).read_text())
        assert record["failures"] == {}
        print(f"save to served HTML: {figures['warm']:.2f} s "
              f"(first save, warming up: {figures['first']:.2f} s)")
        # 2. a failing block: its error, page:line, in place of the output
        page.write_text(text.replace("print('value', x + 1)", "assert x == 21, 'no'"))
        html, _ = _until(url, lambda h: "This block failed" in h, 120)
        assert "This block failed" in html, html[-3000:]
        assert f"{page}:5: AssertionError: no" in html
        assert "value 41" not in html and "Output stale" not in html
        # ... only under serve: a build fails on the block (strict) or shows a
        # placeholder, never the error
        for strict in (["--strict"], []):
            built = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "-f", str(config), *strict,
                 "-d", str(tmp_path / "built")], cwd=ROOT, env=env,
                capture_output=True, text=True)
            assert built.returncode == (1 if strict else 0), built.stderr
        assert "fast.md:3: recorded output is missing" in built.stderr
        html = (tmp_path / "built" / "fast" / "index.html").read_text()
        assert "Output missing" in html and "This block failed" not in html
    finally:
        server.terminate()
        out = server.communicate(timeout=30)[0]
    assert "error happened during the rebuild" not in out, out
    assert "Exception in thread" not in out, out


def test_serve_runs_the_pages_a_saved_snippets_module_is_imported_by():
    from tests.engine.serve import EditLoop

    loop = EditLoop(ROOT / "docs")  # not started: saved() only queues the pages
    queued = loop.saved(ROOT / "snippets" / "gpt.py")
    assert ROOT / "docs" / "makemore" / "gpt-training.md" in queued
    assert ROOT / "docs" / "index.md" not in queued
    assert loop.saved(ROOT / "docs" / "index.md") == [ROOT / "docs" / "index.md"]
    assert loop.saved(ROOT / "README.md") == []


def test_xdist_keeps_each_page_on_one_worker_and_shares_the_cores(tmp_path):
    threads = tmp_path / "threads.md"
    threads.write_text(
        "# Threads\n\n```python\nimport os, pathlib, torch\n"
        "out = pathlib.Path(os.environ['DLNOTES_TEST_LOG']).with_name('threads.txt')\n"
        "out.write_text(f\"{torch.get_num_threads()} {os.environ['OMP_NUM_THREADS']}\")\n"
        "```\n")
    code, out, outcomes = run_pages(
        tmp_path, "once.md", "containers.md", threads, args=["-n", "2"],
        env={"OMP_NUM_THREADS": ""},  # unset: each worker takes its share
    )
    assert code == 0, out
    assert len(outcomes) == 3 + 5 + 1
    assert log(tmp_path) == "123"  # no block of once.md ran twice
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert (tmp_path / "threads.txt").read_text() == f"{share} {share}"


def _lab(path: Path, *sources: str) -> Path:
    import nbformat

    cells = [nbformat.v4.new_markdown_cell("# A lab")]
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.slow
def test_a_lab_runs_and_keeps_its_executed_copy(tmp_path):
    from tests.engine import labs

    lab = _lab(tmp_path / "labs" / "good.ipynb", "x = 6 * 7", "print(x)")
    code, out, _ = run_pages(tmp_path, lab)
    assert code == 0, out
    done = tmp_path / "outputs" / "cpu" / str(lab).lstrip("/")
    import nbformat

    nb = nbformat.read(done, as_version=4)
    assert nb.cells[2].outputs[0]["text"] == "42\n"
    assert nb.cells[1].execution_count == 1  # the set-up cell is not shown
    assert nb.metadata["dlnotes"]["source_sha256"] == labs.source_sha256(lab)
    assert not nbformat.read(lab, as_version=4).cells[2].get("outputs")  # source intact


@pytest.mark.slow
def test_a_failing_lab_cell_fails_the_suite_and_names_the_cell(tmp_path):
    lab = _lab(tmp_path / "labs" / "bad.ipynb", "x = 1", "assert x == 2, 'x is 1'")
    stale = tmp_path / "outputs" / "cpu" / str(lab).lstrip("/")
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")  # an old executed copy must not survive a failure
    code, out, _ = run_pages(tmp_path, lab)
    assert code == 1
    assert "bad.ipynb: cell 3 of 3 failed" in out and "x is 1" in out
    assert not stale.exists()



# ------------------------------------------------- every exception fails its block


def _one_failure(outcomes):
    failed = [d for o, d in outcomes.values() if o in ("failure", "error")]
    assert len(failed) == 1, outcomes
    return failed[0]


@pytest.mark.parametrize("name, line, expected", [
    ("type_error.md", "type_error.md:7: this block failed at line 8",
     "TypeError: object of type 'int' has no len()"),
    ("syntax_error.md", "syntax_error.md:3: this block failed at line 5",
     "SyntaxError"),
    ("system_exit.md", "system_exit.md:3: this block failed at line 5",
     "the block raised SystemExit: 0"),
    ("keyboard_interrupt.md", "keyboard_interrupt.md:3: this block failed",
     "the block raised KeyboardInterrupt: raised by the page"),
    ("figure_error.md", "figure_error.md:3: this block failed", "notacommand"),
    ("slow.md", "slow.md:3: the block ran longer than its limit of 1 s",
     "timeout=SECONDS"),
    ("warning.md", "warning.md:3: this block failed at line 5",
     "DeprecationWarning: this API is old"),
])
def test_any_exception_fails_the_block_and_the_run(tmp_path, name, line, expected):
    code, out, outcomes = run_pages(tmp_path, name, "once.md")
    assert code == 1, out
    detail = _one_failure(outcomes)
    assert line in detail and expected in detail, detail
    # the rest of the session goes on: the next page ran whole
    assert log(tmp_path) == "123"
    assert "1 failed" in out


def test_the_type_error_page_does_not_pass(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "type_error.md")
    assert code == 1
    assert [o for o, _ in outcomes.values()] == ["passed", "failure", "skipped"]


def test_a_failing_assert_shows_its_values(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "assert_values.md")
    assert code == 1
    assert "assert 2.31 < 2.2" in _one_failure(outcomes)


def test_a_block_may_show_a_warning_it_declares(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "expected_warning.md")
    assert code == 1
    first, second = outcomes.values()
    assert first[0] == "passed"
    assert "warns=DeprecationWarning, but the block raised no such warning" in second[1]
    record = recorded(tmp_path, tmp_path / "expected_warning.md")
    (entry,) = record["blocks"].values()
    assert entry["output"] == ("after the warning\n"
                               "FutureWarning: this default will change\n")


def test_pytest_skip_skips_only_its_own_block(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "skip_one.md")
    assert code == 0, out
    assert [o for o, _ in outcomes.values()] == ["passed", "skipped", "passed"]


def test_a_page_cannot_leak_state_into_the_next(tmp_path):
    import torch

    code, out, outcomes = run_pages(
        tmp_path, "state_change.md", "state_check.md", args=["-p", "no:randomly"],
        env={"DLNOTES_TEST_CWD": str(ROOT),
             "DLNOTES_TEST_THREADS": str(torch.get_num_threads())},
    )
    assert code == 0, out
    assert [o for o, _ in outcomes.values()] == ["passed", "passed"]


def test_a_page_that_writes_into_the_repository_fails(tmp_path):
    # a checkout of its own, so that no page running beside it (pytest-xdist) sees the
    # file appear in the repository
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    leftover = checkout / "dlnotes-engine-test-leftover.txt"
    code, out, outcomes = run_pages(
        tmp_path, "leaves_file.md", env={"DLNOTES_TEST_LEFTOVER": str(leftover),
                                         "DLNOTES_REPOSITORY": str(checkout)})
    assert code == 1
    detail = _one_failure(outcomes)
    assert "leaves_file.md: the page left files in the repository" in detail
    assert leftover.name in detail


def test_the_plugins_documented_options_and_hooks_work(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "def pytest_markdown_docs_globals():\n    return {'greeting': 'hi'}\n")
    code, out, outcomes = run_pages(tmp_path, "plugin_options.md")
    assert code == 0, out
    assert [o for o, _ in outcomes.values()] == ["passed"] * 4
    (third,) = [b for b in pages.read_page(PAGES / "plugin_options.md")
                if "title=a b.py" in b.options]
    assert third.option("hl_lines") == "1 2"


def test_a_citation_records_the_formatted_value(tmp_path):
    code, out, _ = run_pages(tmp_path, "cited.md")
    assert code == 0, out
    record = recorded(tmp_path, tmp_path / "cited.md")
    (entry,) = record["blocks"].values()
    assert entry["cited"] == {"loss:.4f": "2.4546", "share:.1%": "22.2%",
                              "n:,": "228,146"}


def test_a_citation_that_cannot_be_computed_fails_with_page_and_line(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "cited_wrong.md")
    assert code == 1
    detail = _one_failure(outcomes)
    assert "cited_wrong.md:7: the prose cites {{ los:.2f }}" in detail
    assert "NameError" in detail


def test_a_snippets_module_the_page_uses_is_part_of_its_digest(tmp_path, monkeypatch):
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "helper.py").write_text("from . import other\nX = 1\n")
    (tmp_path / "snippets" / "other.py").write_text("Y = 2\n")
    (tmp_path / "snippets" / "unused.py").write_text("Z = 3\n")
    monkeypatch.setattr(pages, "ROOT", tmp_path)
    text = "# P\n\n```python\nfrom snippets import helper\n```\n"

    def digest():
        return pages.read_page(tmp_path / "p.md", text=text)[0].digest

    before = digest()
    (tmp_path / "snippets" / "unused.py").write_text("Z = 4\n")
    assert digest() == before  # a module the page does not use
    (tmp_path / "snippets" / "other.py").write_text("Y = 3\n")
    assert digest() != before  # imported by a module the page imports


def test_retry_and_mdx_metadata_work_as_the_plugin_documents(tmp_path):
    code, out, outcomes = run_pages(tmp_path, "retry_and_mdx.mdx")
    assert code == 0, out
    assert [o for o, _ in outcomes.values()] == ["passed", "passed"]  # notest: no item
    record = recorded(tmp_path, tmp_path / "retry_and_mdx.mdx")
    last = max(record["blocks"].values(), key=lambda b: b["line"])
    assert last["output"] == "passed on attempt 3\n"  # the output of the passing try


# -- the catalogue: indexes, path and cross-links from front matter --------------------


def _catalogue_docs(tmp_path, **pages_):
    """A docs folder of small pages: NAME=(order, part, tier, builds_on[, extra])."""
    docs = tmp_path / "docs"
    (docs / "s").mkdir(parents=True)
    (docs / "index.md").write_text("# Home\n\n<!-- path-summary wpm=100 -->\n")
    (docs / "path.md").write_text("# Path\n\n<!-- path part=1 -->\n\n## Two\n\n"
                                  "<!-- path part=2 -->\n")
    (docs / "s" / "index.md").write_text("# S\n\n<!-- pages section=s tier=core -->\n\n"
                                         "## Deeper\n\n<!-- pages section=s tier=deeper -->\n")
    for name, (order, part, tier, builds_on, *extra) in pages_.items():
        items = "".join(f"\n  - {b}" for b in builds_on) or " []"
        (docs / "s" / f"{name}.md").write_text(
            f"---\ndescription: About {name}.\norder: {order}\npart: {part}\ntier: {tier}\n"
            f"path_note: what {name} unlocks.\nbuilds_on:{items}\n{''.join(extra)}---\n\n"
            f"# Page {name}\n\nSome words here.\n\n<!-- builds-on -->\n\n<!-- leads-to -->\n"
            "\n```python\nx = 1\n```\n")
    return docs


def _render_catalogue(docs, page):
    import markdown

    md = markdown.Markdown(extensions=["tests.engine.catalogue"],
                           extension_configs={"tests.engine.catalogue":
                                              {"docs_dir": str(docs)}})
    return md.convert((docs / page).read_text().split("\n---\n", 1)[-1])


def _catalogue_error(docs):
    from tests.engine import catalogue

    with pytest.raises(catalogue.CatalogueError) as info:
        catalogue.load(docs)
    return str(info.value)


def test_the_catalogue_renders_path_indexes_and_cross_links(tmp_path):
    docs = _catalogue_docs(
        tmp_path, a=(10, 1, "core", []),
        b=(20, 1, "core", ["s/a.md: the basics"]),
        c=(30, 2, "advanced", ["s/a.md", "s/b.md", "some calculus"],
           "leads_to:\n  - path.md: the path again\n"))
    path = _render_catalogue(docs, "path.md")
    assert path.index('href="s/a.md">Page a</a>: what a unlocks.') < path.index("s/b.md")
    assert '<a href="s/c.md">Page c</a> <em>(advanced)</em>: what c unlocks.' in path
    assert path.count("<ol>") == 2  # one list per part
    index = _render_catalogue(docs, "s/index.md")
    assert index.index("b.md") < index.index("<h2>Deeper</h2>") < index.index("c.md")
    assert '<a href="a.md">Page a</a>: About a.' in index
    c = _render_catalogue(docs, "s/c.md")
    assert ("<strong>Builds on:</strong> <a href=\"a.md\">Page a</a>, "
            "<a href=\"b.md\">Page b</a>, some calculus.") in c
    assert '<strong>Leads to:</strong> <a href="../path.md">Path</a> (the path again).' in c
    a = _render_catalogue(docs, "s/a.md")
    assert "Builds on" not in a  # it builds on nothing
    assert ('<strong>Leads to:</strong> <a href="b.md">Page b</a>, '
            '<a href="c.md">Page c</a>.') in a
    home = _render_catalogue(docs, "index.md")
    assert "3 steps in 2 parts: 3 concept pages and 0 labs" in home
    assert "3 Python blocks that run; reading the prose alone takes about 1 hour." in home


def test_a_page_that_builds_on_a_missing_page_fails_with_file_and_line(tmp_path):
    docs = _catalogue_docs(tmp_path, a=(10, 1, "core", []),
                           b=(20, 1, "core", ["s/a.md", "s/gone.md: why"]))
    # front matter: description, order, part, tier, path_note, builds_on, a.md, gone.md
    assert _catalogue_error(docs) == (
        "docs/s/b.md:9: builds_on names s/gone.md, which is not a page under docs/")


def test_a_cycle_fails_and_names_it(tmp_path):
    docs = _catalogue_docs(tmp_path, a=(10, 1, "core", ["s/b.md"]),
                           b=(20, 1, "core", ["s/a.md"]))
    message = _catalogue_error(docs)
    assert message.startswith("docs/s/b.md:8: builds_on makes a cycle: ")
    assert "s/a.md -> s/b.md -> s/a.md" in message


def test_the_path_never_lists_a_page_before_one_it_builds_on(tmp_path):
    docs = _catalogue_docs(tmp_path, a=(30, 1, "core", []),
                           b=(20, 1, "core", ["s/a.md"]))
    assert _catalogue_error(docs) == (
        "docs/s/b.md:8: the path lists docs/s/b.md (part 1, order 20) before "
        "docs/s/a.md (part 1, order 30), which it builds on")
    docs = _catalogue_docs(tmp_path / "parts", a=(10, 2, "core", []),
                           b=(20, 1, "core", ["s/a.md"]))
    assert "before docs/s/a.md (part 2, order 10)" in _catalogue_error(docs)


def test_catalogue_fields_are_checked(tmp_path):
    docs = _catalogue_docs(tmp_path, a=(10, 1, "core", []), b=(10, 1, "core", []))
    assert _catalogue_error(docs) == "docs/s/b.md:3: order 10 is taken by docs/s/a.md"
    docs = _catalogue_docs(tmp_path / "t", a=(10, 1, "basic", []))
    assert _catalogue_error(docs).startswith("docs/s/a.md:5: `tier` is one of core, ")
    docs = _catalogue_docs(tmp_path / "o", a=(10, 1, "optional", []),
                           b=(20, 1, "core", ["s/a.md"]))
    assert "a core page builds on docs/s/a.md, which is optional" in _catalogue_error(docs)
    docs = _catalogue_docs(tmp_path / "m", a=(10, 1, "core", []))
    page = docs / "s" / "a.md"
    page.write_text(page.read_text().replace("part: 1\n", ""))
    assert _catalogue_error(docs) == ("docs/s/a.md:1: front matter needs part "
                                      "(see CONTRIBUTING, 'Add a note')")


def test_a_directive_on_an_unknown_page_or_inline_fails(tmp_path):
    from tests.engine import catalogue

    docs = _catalogue_docs(tmp_path, a=(10, 1, "core", []))
    (docs / "other.md").write_text("# Other\n\n<!-- leads-to -->\n")
    with pytest.raises(catalogue.CatalogueError, match="`leads-to` is for concept pages"):
        _render_catalogue(docs, "other.md")
    (docs / "other.md").write_text("# Other\n\nSee <!-- path part=1 --> here.\n")
    with pytest.raises(catalogue.CatalogueError, match="stands alone on its line"):
        _render_catalogue(docs, "other.md")
    example = "# Other\n\n```markdown\n<!-- leads-to -->\n```\n\nWrite `<!-- path -->`.\n"
    (docs / "other.md").write_text(example)  # examples in code are left as they are
    assert "<!-- leads-to -->" in _render_catalogue(docs, "other.md")  # not expanded
    (docs / "other.md").write_text("# Page a\n\n<!-- path part=1 -->\n")
    with pytest.raises(catalogue.CatalogueError, match="titles must be unique"):
        _render_catalogue(docs, "other.md")


def test_the_site_builds_the_catalogue_with_a_markdown_extension_not_a_hook():
    """What readers see must not depend on MkDocs hooks (other builders run Markdown
    extensions only): the catalogue is configured as an extension, and a page without
    the extension keeps its directives as comments, which the page checks refuse."""
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    names = [next(iter(e)) if isinstance(e, dict) else e
             for e in config["markdown_extensions"]]
    assert "tests.engine.catalogue" in names
    assert not any("catalogue" in hook for hook in config["hooks"])


def test_zensical_renders_what_mkdocs_renders_and_a_dropped_output_is_caught(tmp_path):
    """Both builders run the rendering extension; the page-by-page comparison finds a
    build that shows no outputs (Zensical skips what it does not know, silently)."""
    from tests.engine import sitecompare

    zensical = Path(sys.executable).parent / "zensical"
    if not zensical.exists():
        pytest.skip("zensical is not installed (requirements.txt pins it)")
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "page.md"
    page.write_text("---\ndescription: a page\n---\n\n# Page\n\n"
                    "```python\nloss = 2.4546123\nprint('loss', loss)\n```\n\n"
                    "The loss is {{ loss:.3f }}, or $\\ell$.\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DLNOTES_OUTPUTS": str(tmp_path / "outputs")}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-c", str(ROOT / "pyproject.toml"), str(page)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    extensions = ("markdown_extensions: [pymdownx.superfences, "
                  "{pymdownx.arithmatex: {generic: true}}, tests.engine.render]\n")
    (tmp_path / "mkdocs.yml").write_text(
        f"site_name: t\nsite_dir: {tmp_path / 'site'}\n"
        f"hooks: [{ROOT / 'tests/engine/mkdocs_hooks.py'}]\n" + extensions)
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr

    def zensical_build(markdown_extensions: str) -> Path:
        (tmp_path / "zensical.yml").write_text(
            "site_name: t\nsite_dir: zsite\n" + markdown_extensions)
        done = subprocess.run([str(zensical), "build", "--clean", "-f", "zensical.yml"],
                              cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return tmp_path / "zsite"

    site = zensical_build(extensions)
    problems, totals = sitecompare.compare(tmp_path / "site", site, docs)
    assert not problems, problems
    assert totals["outputs"] == totals["cited"] == totals["stamps"] == 1
    assert totals["math"] == 1
    shown = sitecompare.seen((site / "page" / "index.html").read_text())
    assert shown["outputs"] == ["loss 2.4546123"] and shown["cited"] == ["2.455"]

    site = zensical_build(extensions.replace(", tests.engine.render", ""))
    problems, _ = sitecompare.compare(tmp_path / "site", site, docs)
    assert any("outputs differ" in p for p in problems), problems
    assert any("stamp differ" in p for p in problems), problems


def test_aligned_math_renders_as_a_table_of_rows(caplog):
    """latex2mathml knows `align*` but not `aligned` (what MathJax and KaTeX take inside
    $$): the build renders it as rows and columns, and warns on any literal '&' left."""
    from tests.engine import mathml

    latex = r"\[\begin{aligned} a &= b && \text{one} \\ c &= d \end{aligned}\]"
    out = mathml.arithmatex_to_mathml(f'<div class="arithmatex">{latex}</div>', "x.md")
    assert out.count("<mtr>") == 2 and "<mi>&</mi>" not in out
    assert not caplog.records
    mathml.arithmatex_to_mathml(
        r'<div class="arithmatex">\[\begin{gathered} a &= b \end{gathered}\]</div>',
        "x.md")
    assert "literal '&'" in caplog.text


def test_the_readme_layout_names_every_engine_module_and_shared_function():
    """One concern a module, one place a shared job: the README's Layout names them."""
    layout = (ROOT / "README.md").read_text("utf8").split("## Layout", 1)[1]
    engine = sorted(p.name for p in (ROOT / "tests" / "engine").glob("*.py"))
    missing = [name for name in engine if name != "__init__.py" and name not in layout]
    assert not missing, f"README Layout does not name {missing}"
    for name in ("container_opener", "split_front_matter"):
        assert name in layout and hasattr(pages, name), name


def test_unit_times_forget_the_tests_a_file_no_longer_has(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from tests.engine import scheduling

    times = tmp_path / "test-seconds.json"
    times.write_text(json.dumps({"tests/a.py::old": 5.0, "tests/b.py::kept": 2.0}))
    monkeypatch.setattr(scheduling, "TIMES", times)
    timer = scheduling._Timer()
    timer.pytest_runtest_logreport(SimpleNamespace(nodeid="tests/a.py::new", duration=1.5))
    config = SimpleNamespace(getoption=lambda name, default=None: "loadgroup")
    timer.pytest_sessionfinish(SimpleNamespace(config=config))
    assert json.loads(times.read_text()) == {"tests/a.py::new": 1.5, "tests/b.py::kept": 2.0}


def test_a_fresh_clone_hands_out_labs_and_long_pages_first(tmp_path):
    from tests.engine.scheduling import first_guess

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "long.md").write_text("x" * 40_000)
    (tmp_path / "docs" / "short.md").write_text("# Short\n")
    units = ["tests/test_a.py::test_one", "docs/short.md", "docs/long.md",
             "docs/labs/lab.ipynb", "tests/test_b.py::<module fixtures>"]
    order = sorted(units, key=lambda u: -first_guess(u, tmp_path))
    assert order == ["docs/labs/lab.ipynb", "docs/long.md",
                     "tests/test_b.py::<module fixtures>", "tests/test_a.py::test_one",
                     "docs/short.md"]
