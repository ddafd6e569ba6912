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
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-rA",
         f"--junitxml={junit}", *args, *copies],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300,
    )
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            detail = "".join(
                (c.get("message") or "") + (c.text or "") for c in case
            )
            outcomes[case.get("name")] = (kinds[0] if kinds else "passed", detail)
    return proc.returncode, proc.stdout + proc.stderr, outcomes


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
    assert "failing.md:7: this block failed" in failure
    assert "failing.md:9" in failure  # the failing line itself
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


def test_bare_fence_options_fail_collection_with_page_and_line(tmp_path):
    code, out, _ = run_pages(tmp_path, "bare_options.md")
    assert code != 0
    assert "bare_options.md:7: fence options must use the brace form" in out


def test_page_classes_pickle_figures_are_recorded_and_seeds_reset(tmp_path):
    code, out, _ = run_pages(tmp_path, "pickle_and_seed.md", "seed_again.md")
    assert code == 0, out
    os.environ["DLNOTES_OUTPUTS"] = str(tmp_path / "outputs")
    try:
        first = records.load(tmp_path / "pickle_and_seed.md", "cpu")
        second = records.load(tmp_path / "seed_again.md", "cpu")
    finally:
        del os.environ["DLNOTES_OUTPUTS"]
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


def test_stale_and_missing_outputs_fail_the_strict_build(tmp_path):
    """Record a page, change one block, and build: the build names page and line."""
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "page.md"
    page.write_text(
        "# Page\n\n```python\nx = 1\nprint(x)\n```\n\n```python\nprint(x + 1)\n```\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DLNOTES_OUTPUTS": str(tmp_path / "outputs")}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-c", str(ROOT / "pyproject.toml"),
                    str(page)], cwd=ROOT, env=env, check=True, capture_output=True)
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"site_name: t\ndocs_dir: {docs}\nsite_dir: {tmp_path / 'site'}\n"
        f"hooks: [{ROOT / 'tests/engine/mkdocs_hooks.py'}]\n"
        "markdown_extensions: [pymdownx.superfences]\n"
    )

    def build(*args):
        return subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "-f", str(config), *args],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )

    fresh = build("--strict")
    assert fresh.returncode == 0, fresh.stderr
    html = (tmp_path / "site" / "page" / "index.html").read_text()
    assert "dl-output" in html and "2/2 blocks ran" in html

    page.write_text(page.read_text().replace("x = 1", "x = 2"))
    stale = build("--strict")
    assert stale.returncode != 0
    assert "page.md:3: recorded output is stale" in stale.stderr
    assert "page.md:8: recorded output is stale" in stale.stderr  # a later block, too
    assert "python3 tests/dev.py test" in stale.stderr

    lenient = build()  # as in `mkdocs serve`: a placeholder says how to refresh
    assert lenient.returncode == 0
    html = (tmp_path / "site" / "page" / "index.html").read_text()
    assert html.count("Output stale") == 2


def test_gpu_outputs_show_beside_cpu_outputs_when_they_differ(tmp_path):
    """A block whose GPU run printed something else gets CPU and GPU tabs."""
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "speed.md"
    page.write_text("# Speed\n\n```python\nprint('measured')\n```\n\n"
                    "```python\nprint('same everywhere')\n```\n")
    outputs = tmp_path / "outputs"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DLNOTES_OUTPUTS": str(outputs)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-c", str(ROOT / "pyproject.toml"), str(page)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    cpu = json.loads(next((outputs / "cpu").rglob("speed.md.json")).read_text())
    gpu = json.loads(json.dumps(cpu))
    gpu["run"]["device"] = "NVIDIA H100 80GB HBM3"
    first = min(gpu["blocks"].values(), key=lambda b: b["line"])
    first["output"] = "measured on the GPU\n"
    target = outputs / "cuda" / next((outputs / "cpu").rglob("speed.md.json")).relative_to(
        outputs / "cpu")
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(gpu))
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"site_name: t\ndocs_dir: {docs}\nsite_dir: {tmp_path / 'site'}\n"
        f"hooks: [{ROOT / 'tests/engine/mkdocs_hooks.py'}]\n"
        "markdown_extensions: [pymdownx.superfences, "
        "{pymdownx.tabbed: {alternate_style: true}}]\n"
    )
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr
    html = (tmp_path / "site" / "speed" / "index.html").read_text()
    assert html.count("tabbed-set") == 1  # only the block whose outputs differ
    assert "GPU: NVIDIA H100 80GB HBM3" in html and "measured on the GPU" in html
    assert "2/2 blocks ran on NVIDIA H100 80GB HBM3" in html  # the GPU stamp


def test_xdist_keeps_each_page_on_one_worker(tmp_path):
    code, out, outcomes = run_pages(
        tmp_path, "once.md", "containers.md", args=["-n", "2"]
    )
    assert code == 0, out
    assert len(outcomes) == 3 + 5
    assert log(tmp_path) == "123"  # no block of once.md ran twice


def _lab(path: Path, *sources: str) -> Path:
    import nbformat

    cells = [nbformat.v4.new_markdown_cell("# A lab")]
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.slow
def test_a_lab_runs_and_keeps_its_executed_copy(tmp_path):
    from tests.engine import notebooks

    lab = _lab(tmp_path / "labs" / "good.ipynb", "x = 6 * 7", "print(x)")
    code, out, _ = run_pages(tmp_path, lab)
    assert code == 0, out
    done = tmp_path / "outputs" / "cpu" / str(lab).lstrip("/")
    import nbformat

    nb = nbformat.read(done, as_version=4)
    assert nb.cells[2].outputs[0]["text"] == "42\n"
    assert nb.cells[1].execution_count == 1  # the set-up cell is not shown
    assert nb.metadata["dlnotes"]["source_sha256"] == notebooks.source_sha256(lab)
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

