"""Output drift (tests/engine/drift.py): comparing two runs' outputs, the report it
writes, and what the site shows from it (the GPU tab, the stamp's link)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from tests.engine import drift, labs, pages, records
from tests.pytest_runs import run_pytest

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ comparing text


def test_the_same_text_is_identical():
    c = drift.compare_text("loss 2.3026\n", "loss 2.3026\n")
    assert c.status == drift.IDENTICAL and not c.diff


def test_numbers_within_tolerance():
    c = drift.compare_text("loss 2.302585, step 100\n", "loss 2.302587, step 100\n")
    assert c.status == drift.WITHIN
    assert c.max_rel == pytest.approx(2 / 2302587, rel=1e-3)
    assert not c.diff
    # torch pads columns to the widest number: spacing alone is no change
    c = drift.compare_text("tensor([ 9.99999, 1.0000])", "tensor([10.00000,  1.0000])")
    assert c.status == drift.WITHIN
    # the absolute tolerance covers numbers near zero
    assert drift.compare_text("x = 0.0", "x = 1e-7").status == drift.WITHIN
    assert drift.compare_text("x = 0.0", "x = 1e-5").status == drift.CHANGED


def test_tolerance_is_configurable():
    old, new = "val 0.9100\n", "val 0.9105\n"
    assert drift.compare_text(old, new).status == drift.CHANGED
    assert drift.compare_text(old, new, rel=1e-3).status == drift.WITHIN
    assert drift.compare_text("n 0", "n 0.001", abs_=1e-2).status == drift.WITHIN


def test_a_changed_output_comes_with_a_diff():
    old = "epoch 1\naccuracy 0.91\ndone\n"
    new = "epoch 1\naccuracy 0.95\ndone\n"
    c = drift.compare_text(old, new, names=("torch 2.13.0", "torch 2.14.1"))
    assert c.status == drift.CHANGED
    assert c.max_rel == pytest.approx(0.04 / 0.95)
    assert "--- torch 2.13.0" in c.diff and "+++ torch 2.14.1" in c.diff
    assert "-accuracy 0.91" in c.diff and "+accuracy 0.95" in c.diff
    # different words, or a different count of numbers: changed, no paired difference
    c = drift.compare_text("shape (3, 4)\n", "shape (3, 4, 1)\n")
    assert c.status == drift.CHANGED and c.max_rel is None
    assert drift.compare_text("nan", "nan ").status == drift.WITHIN
    assert drift.compare_text("inf", "-inf").status == drift.CHANGED


def test_a_warning_that_appears_in_the_output_is_a_new_warning():
    old = "after\nFutureWarning: this default will change\n"
    assert drift.compare_text(old, old).status == drift.IDENTICAL
    new = old + "UserWarning: the other one\n"
    c = drift.compare_text(old, new)
    assert c.status == drift.WARNING
    assert c.warnings == ("UserWarning: the other one",)
    # as a lab kernel prints it: the warning's file and line are not compared
    c = drift.compare_text("a\n/x/lib.py:3: UserWarning: careful\n",
                           "a\n/x/lib.py:9: UserWarning: careful\n")
    assert c.status == drift.CHANGED and not c.warnings


def test_a_torch_log_warning_in_the_output_is_a_new_warning():
    """torch logs some warnings itself (not through `warnings`): they do not fail the
    block, but a new one is reported as a new warning, time and process id aside."""
    log = ("W1202 04:06:46.561000 17984 /venv/torch/utils/cpp_extension.py:183] "
           "[0/0] No CUDA runtime is found, using CUDA_HOME='/usr/local'\n")
    c = drift.compare_text("compiled\n", log + "compiled\n")
    assert c.status == drift.WARNING
    assert c.warnings == ("torch log warning: No CUDA runtime is found, using "
                          "CUDA_HOME='/usr/local'",)
    again = log.replace("04:06:46.561000 17984", "05:10:00.000001 99")
    assert drift.compare_text(log + "x\n", again + "x\n").status == drift.CHANGED


def test_the_largest_relative_difference_leaves_out_what_abs_covers():
    old = "residual 1.6e-07, loss 0.30\n"
    c = drift.compare_text(old, "residual 2.6e-07, loss 0.30\n")
    assert c.status == drift.WITHIN and not c.max_rel
    c = drift.compare_text(old, "residual 2.6e-07, loss 0.31\n")
    assert c.status == drift.CHANGED and c.max_rel == pytest.approx(0.01 / 0.31)


def test_a_failure_raised_by_a_warning_is_told_from_other_failures():
    failure = ("docs/x.md:3: this block failed at line 5\nTraceback (most recent "
               "call last):\n  File \"docs/x.md\", line 5, in <module>\n"
               "torch.jit.TracerWarning: something moved\n"
               "--- printed before the error ---\nUserWarning: printed, not raised")
    assert drift.raised_warning(failure) == "torch.jit.TracerWarning: something moved"
    assert drift.raised_warning(failure.replace("TracerWarning", "Error")) is None


def test_figures_compare_like_text():
    svg = '<svg width="10.5pt"><path d="M 1.000001 2"/></svg>'
    assert drift.compare_figures([], []) is None
    assert drift.compare_figures([svg], [svg]) == drift.IDENTICAL
    assert drift.compare_figures([svg], [svg.replace("1.000001", "1.000002")]) == \
        drift.WITHIN
    assert drift.compare_figures([svg], [svg.replace("2", "3")]) == drift.CHANGED
    assert drift.compare_figures([svg], []) == drift.CHANGED


def test_a_change_seen_between_two_runs_of_the_first_torch_varies():
    """A timing differs between any two runs: with a second run of the first torch,
    the change is marked as varying run to run, and the site does not list it."""
    before, after = ("took 10.2 ms\n", []), ("took 12.9 ms\n", [])
    entry = drift._compare_outputs(before, after, ("took 11.7 ms\n", []), 1e-4, 1e-6)
    assert entry["status"] == drift.CHANGED and entry["varies"]
    steady = drift._compare_outputs(("acc 0.91\n", []), ("acc 0.95\n", []),
                                    ("acc 0.91\n", []), 1e-4, 1e-6)
    assert steady["status"] == drift.CHANGED and "varies" not in steady
    svg, svg2 = ['<svg d="M 1 2"/>'], ['<svg d="M 1 3"/>']
    figures = drift._compare_outputs(("x\n", svg), ("x\n", svg2), ("x\n", svg2),
                                     1e-4, 1e-6)
    assert figures["status"] == drift.IDENTICAL and figures["figures_vary"]
    report = {"pages": [{"page": "docs/t.md", "blocks": [
        {"line": 3, **entry}, {"line": 9, **steady}]}]}
    assert drift.changed_pages(report) == {"docs/t.md": [9]}


# ------------------------------------------------------------------ two real runs

DRIFTING = """\
# Drift

```python
import os
import warnings
case = os.environ["DRIFT_CASE"]
print("loss", 2.302585 if case == "old" else 2.302587)
```

```python
print("accuracy", 0.91 if case == "old" else 0.95)
```

```python
print("the same in both runs")
```

```python
if case == "new":
    warnings.warn("this default will change", FutureWarning)
print("fine")
```

```python
print("after the warning")
```
"""

FAILING = """\
# Fails

```python
import os
print(1 / (os.environ["DRIFT_CASE"] == "old"))
```
"""


def _run(tmp_path: Path, case: str, *paths: Path) -> tuple[Path, Path]:
    outputs, junit = tmp_path / f"outputs-{case}", tmp_path / f"junit-{case}.xml"
    run_pytest(["-q", "-p", "no:cacheprovider", "-c", ROOT / "pyproject.toml",
                "--rootdir", tmp_path, f"--junitxml={junit}", *paths],
               env={**os.environ, "PYTHONPATH": str(ROOT), "DRIFT_CASE": case,
                    "DLNOTES_OUTPUTS": str(outputs)})
    return outputs, junit


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same two pages run twice, as under two torch versions: each block's output
    drifts in its own way between the runs."""
    tmp = tmp_path_factory.mktemp("drift")
    drifting, failing = tmp / "drifting.md", tmp / "failing.md"
    drifting.write_text(DRIFTING)
    failing.write_text(FAILING)
    old, _ = _run(tmp, "old", drifting, failing)
    new, junit = _run(tmp, "new", drifting, failing)
    report = drift.compare_runs(old, new, junit_path=junit,
                                page_paths=[drifting, failing], labs=[])
    return report, drifting, failing


def test_each_block_gets_its_outcome(two_runs):
    report, drifting, failing = two_runs
    first, second = report["pages"]
    assert first["page"] == pages._rel(drifting)
    assert [b["status"] for b in first["blocks"]] == [
        drift.WITHIN, drift.CHANGED, drift.IDENTICAL, drift.WARNING, drift.NOT_RUN]
    lines = [b.line for b in pages.read_page(drifting)]
    assert [b["line"] for b in first["blocks"]] == lines
    changed, warned, skipped = first["blocks"][1], first["blocks"][3], first["blocks"][4]
    assert "-accuracy 0.91" in changed["diff"] and "+accuracy 0.95" in changed["diff"]
    assert warned["warnings"] == ["FutureWarning: this default will change"]
    assert "an earlier block failed" in skipped["reason"]
    (failed,) = second["blocks"]
    assert failed["status"] == drift.FAILED
    assert "ZeroDivisionError" in failed["error"]
    assert first["counts"] == {drift.IDENTICAL: 1, drift.WITHIN: 1, drift.CHANGED: 1,
                               drift.WARNING: 1, drift.NOT_RUN: 1}
    assert report["totals"][drift.FAILED] == 1
    assert "no_baseline" not in failed  # it passed in the first run
    assert drift.again_targets(report) == [pages._rel(drifting)]
    assert report["from"]["torch"] == report["to"]["torch"]  # one torch here
    assert first["from_run"]["torch"] and first["to_run"]["date"]
    assert drift.changed_pages(report) == {
        pages._rel(drifting): [lines[1], lines[3]], pages._rel(failing): [lines_of(failing)]}
    assert drift.exit_code(report) == 1


def lines_of(page: Path) -> int:
    (block,) = pages.read_page(page)
    return block.line


def test_the_page_that_prints_the_report_is_left_out(tmp_path):
    """docs/versions.md prints the report: comparing it would compare two reports."""
    assert drift.prints_report(ROOT / "docs" / "versions.md")
    assert not drift.prints_report(ROOT / "docs" / "foundations" / "tensors.md")
    report = drift.compare_runs(tmp_path, tmp_path, labs=[])
    listed = {p["page"] for p in report["pages"]}
    assert "docs/versions.md" not in listed and "docs/foundations/tensors.md" in listed


def test_a_block_without_a_baseline_is_said_so(two_runs, tmp_path):
    _, drifting, _ = two_runs
    report = drift.compare_runs(tmp_path / "nothing", tmp_path / "nothing",
                                page_paths=[drifting], labs=[])
    assert {b["status"] for b in report["pages"][0]["blocks"]} == {drift.NO_BASELINE}


# ------------------------------------------------------------------ labs


def _lab(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print(1.0)"),
        nbformat.v4.new_code_cell("import warnings"),
    ])
    lab = tmp_path / "labs" / "lab.ipynb"
    lab.parent.mkdir()
    nbformat.write(nb, lab)
    return lab


def _executed(lab: Path, base: Path, texts: list[str], torch: str) -> None:
    nb = nbformat.read(lab, as_version=4)
    for cell, text in zip(nb.cells, texts):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nb.metadata["dlnotes"] = {"source_sha256": labs.source_sha256(lab),
                              "torch": torch, "date": "2026-01-01"}
    path = base / "cpu" / pages._rel(lab).lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_labs_compare_cell_by_cell(tmp_path):
    lab = _lab(tmp_path)
    _executed(lab, tmp_path / "old", ["loss 1.0000000\n", "ok\n"], "2.13.0")
    _executed(lab, tmp_path / "new",
              ["loss 1.0000001\n", "ok\n/lib/x.py:3: UserWarning: careful\n"], "2.14.1")
    entry = drift.compare_lab(lab, tmp_path / "old", tmp_path / "new")
    assert entry["lab"] and entry["to_run"]["torch"] == "2.14.1"
    assert [(b["cell"], b["status"]) for b in entry["blocks"]] == [
        (1, drift.WITHIN), (2, drift.WARNING)]


def test_a_lab_that_failed_names_its_cell(tmp_path):
    lab = _lab(tmp_path)
    _executed(lab, tmp_path / "old", ["1.0\n", ""], "2.13.0")
    junit = {(pages._rel(lab).strip("/").replace("/", "."), "lab"):
             ("failure", f"{pages._rel(lab)}: cell 2 of 2 failed:\nNameError: x")}
    entry = drift.compare_lab(lab, tmp_path / "old", tmp_path / "new", junit=junit)
    ((cell, status),) = [(b["cell"], b["status"]) for b in entry["blocks"]]
    assert (cell, status) == (2, drift.FAILED)


# ------------------------------------------------------------------ the report


def _report() -> dict:
    changed = drift.compare_text("acc 0.91\n", "acc 0.95\n", names=("a", "b"))
    return {
        "version": drift.REPORT_VERSION, "date": "2026-01-02",
        "from": {"torch": "2.13.0+cpu", "device": "CPU", "kind": "cpu",
                 "label": "torch 2.13.0+cpu (cpu)"},
        "to": {"torch": "2.14.1", "device": "CPU", "kind": "cpu",
               "label": "torch 2.14.1 (cpu)"},
        "tolerance": {"rel": 1e-4, "abs": 1e-6},
        "totals": {**dict.fromkeys(drift.STATUSES, 0), drift.IDENTICAL: 1,
                   drift.CHANGED: 1, drift.FAILED: 1},
        "pages": [
            {"page": "docs/a.md", "from_run": {"torch": "2.13.0+cpu", "date": "d1"},
             "to_run": {"torch": "2.14.1", "date": "d2"},
             "blocks": [{"line": 3, "status": drift.IDENTICAL},
                        {"line": 9, **changed.as_dict(), "figures": drift.CHANGED}],
             "counts": {drift.IDENTICAL: 1, drift.CHANGED: 1}},
            {"page": "docs/b.md", "from_run": {}, "to_run": {},
             "blocks": [{"line": 4, "status": drift.FAILED,
                         "error": "Traceback\nZeroDivisionError: division by zero"}],
             "counts": {drift.FAILED: 1}},
        ],
        "engine_tests": [],
        "page_notebooks": drift.PAGE_NOTEBOOKS_NOTE,
        "environment": {"install_seconds": 61.5, "venv_gb": 7.1},
    }


def test_the_report_is_written_as_json_and_markdown(tmp_path):
    report = _report()
    out, md, site = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "docs/drift.json"
    drift.write_report(report, out, md, site)
    assert json.loads(out.read_text()) == report == drift.load_report(site)
    text = md.read_text()
    assert text.startswith("# Output drift: torch 2.13.0+cpu (cpu) → torch 2.14.1 (cpu)")
    assert "| changed | 1 |" in text and "| within tolerance | 0 |" in text
    assert "### docs/a.md" in text and "**docs/a.md:9**: changed" in text
    assert "figures changed" in text
    assert "```diff" in text and "+acc 0.95" in text
    assert "ZeroDivisionError: division by zero" in text
    assert "docs/a.md:3" not in text  # identical blocks are only counted
    assert "## Page notebooks" in text and "follow the pages" in text
    assert "| docs/a.md | 2.13.0+cpu (d1) | 2.14.1 (d2) | 1 identical, 1 changed |" in text
    assert "- installing it took: 61.5 s" in text
    assert "- its environment on disk: 7.1 GB" in text
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_console_summary_lists_what_is_not_the_same():
    lines = drift.summary(_report()).split("\n")
    assert lines[0] == ("drift: torch 2.13.0+cpu (cpu) -> torch 2.14.1 (cpu), "
                        "tolerance rel 0.0001 abs 1e-06")
    assert lines[1] == "drift: 1 identical, 1 changed, 1 failed"
    assert lines[2].startswith("  docs/a.md:9: changed (largest relative difference")
    assert lines[3] == "  docs/b.md:4: failed: ZeroDivisionError: division by zero"
    assert len(lines) == 4


def test_engine_tests_that_fail_with_both_torches_are_told_apart(tmp_path):
    """A failed engine test is run again with the first torch: one that fails there
    too is not the new torch's doing, and does not fail the command."""
    def junit(path, cases):
        body = "".join(
            f'<testcase classname="tests.test_pages" name="{name}">'
            + (f'<failure message="{name} broke">trace</failure>' if bad else "")
            + "</testcase>" for name, bad in cases)
        path.write_text(f"<testsuites><testsuite>{body}</testsuite></testsuites>")
        return path
    new = junit(tmp_path / "new.xml", [("test_a", True), ("test_b", True),
                                       ("test_c", False)])
    again = junit(tmp_path / "again.xml", [("test_a", True), ("test_b", False)])
    report = drift.compare_runs(tmp_path, tmp_path, junit_path=new, page_paths=[],
                                labs=[], again_junit=again)
    tests = {t["test"]: t for t in report["engine_tests"]}
    assert tests["tests.test_pages::test_a"]["first_torch"] == "failed too"
    assert tests["tests.test_pages::test_b"]["first_torch"] == "passed"
    assert tests["tests.test_pages::test_a"]["file"] == "tests/test_pages.py"
    assert [t["test"] for t in drift.new_test_failures(report)] == [
        "tests.test_pages::test_b"]
    assert drift.exit_code(report) == 1
    assert drift.again_targets(report) == ["tests/test_pages.py"]
    text = drift.markdown(report)
    assert "fail with torch unknown (cpu) too" in text and "test_a broke" in text
    assert "engine tests that fail with" in drift.summary(report)
    report["engine_tests"] = [tests["tests.test_pages::test_a"]]
    assert drift.exit_code(report) == 0


def test_what_the_site_reads_from_the_report():
    report = _report()
    assert drift.changed_pages(report) == {"docs/a.md": [9], "docs/b.md": [4]}
    assert drift.changed_pages(None) == {}
    assert drift.exit_code(report) == 1
    report["totals"][drift.FAILED] = 0
    assert drift.exit_code(report) == 0


def test_the_command_line_writes_the_report(two_runs, tmp_path):
    _, drifting, _ = two_runs
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.engine.drift", "compare", "--old",
         str(tmp_path / "none"), "--new", str(tmp_path / "none"), "--json", str(out),
         "--meta", '{"suite_seconds": 1.5}', "--strict"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "drift: report in" in done.stdout
    report = json.loads(out.read_text())
    assert report["environment"] == {"suite_seconds": 1.5}
    assert {p["page"] for p in report["pages"]} >= {"docs/foundations/tensors.md"}


# ------------------------------------------------------------------ the site


def _block_record(page: Path, outputs: list[str], run: dict) -> dict:
    blocks = [b for b in pages.read_page(page) if b.runs]
    return {"page": pages._rel(page), "run": run, "blocks": {
        b.digest: {"line": b.line, "output": out, "figures": [], "seconds": 0.01,
                   "render_seconds": 0.0} for b, out in zip(blocks, outputs)}}


def test_the_gpu_tab_says_how_cuda_output_compares(tmp_path, monkeypatch):
    """Identical: no tab. Within tolerance: the GPU tab's title says so. Otherwise a
    third tab shows the difference. A page the drift report lists links to it."""
    docs = tmp_path / "docs"
    (docs / "results").mkdir(parents=True)
    page = docs / "speed.md"
    page.write_text(textwrap.dedent("""\
        # Speed

        ```python
        print("same everywhere")
        ```

        ```python
        print("loss 2.302585")
        ```

        ```python
        print("measured 10.0 ms")
        ```
        """))
    (docs / "versions.md").write_text("# PyTorch versions\n")
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DLNOTES_OUTPUTS", str(outputs))
    run = {"device": "CPU (x86_64, 2 cores)", "torch": "2.13.0+cpu", "python": "3.11",
           "commit": "abc", "date": "2026-01-01"}
    records.save(page, "cpu", _block_record(
        page, ["same everywhere\n", "loss 2.302585\n", "measured 10.0 ms\n"], run))
    records.save(page, "cuda", _block_record(
        page, ["same everywhere\n", "loss 2.302587\n", "measured 1.2 ms\n"],
        {**run, "device": "NVIDIA H100 80GB HBM3"}))
    lines = [b.line for b in pages.read_page(page)]
    (docs / "results" / "drift.json").write_text(json.dumps({
        "to": {"torch": "2.99.0"},
        "pages": [{"page": pages._rel(page),
                   "blocks": [{"line": lines[2], "status": drift.CHANGED}]}]}))
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"site_name: t\ndocs_dir: {docs}\nsite_dir: {tmp_path / 'site'}\n"
        f"hooks: [{ROOT / 'tests/engine/mkdocs_hooks.py'}]\n"
        "markdown_extensions: [pymdownx.superfences, "
        "{pymdownx.tabbed: {alternate_style: true}}]\n")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr
    html = (tmp_path / "site" / "speed" / "index.html").read_text()
    assert html.count('class="tabbed-set') == 2  # not for the identical block
    assert "GPU: NVIDIA H100 80GB HBM3 (within tolerance: rel 0.0001, abs 1e-06)" in html
    assert html.count(">Difference<") == 1  # only the block that really differs
    assert "measured 1.2 ms" in html and "-measured 10.0 ms" in html
    assert ('outputs changed with torch 2.99.0: <a href="../versions/">see PyTorch '
            "versions</a>") in html
    assert html.count("data-search-exclude") == html.count("dl-output")
    # a report that does not list the page: no link
    (docs / "results" / "drift.json").write_text(json.dumps(
        {"to": {"torch": "2.99.0"}, "pages": []}))
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr
    assert "outputs changed with torch" not in (
        tmp_path / "site" / "speed" / "index.html").read_text()
