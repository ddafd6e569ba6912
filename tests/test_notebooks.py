"""Page notebooks: built from the page, and they run outside the repository.

Three tiers:
- unit tests of the notebook's cells and of how it finds the `snippets` modules a page
  needs (every import form, followed through the package);
- a cheap check on every run, for every page with code: its set-up cell, run in an empty
  folder in one Python process without the repository on sys.path, fetches exactly the
  modules that the page's imports, and those modules' own imports, load (seconds, no
  kernel);
- executing notebooks in a fresh Jupyter kernel in an empty folder, as Colab does, and
  comparing what they print with the page's recorded output: three pages on every run
  (`slow`), every page only on request (marker `notebooks`, deselected by default in
  pyproject.toml; the scheduled workflow .github/workflows/notebooks.yml runs it):

      python3 tests/dev.py test -q docs --ignore=docs/labs      # record the pages' outputs
      .venv/bin/python -m pytest -m notebooks tests/test_notebooks.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.engine import notebooks, pages, records

ROOT = Path(__file__).resolve().parents[1]
SITE = "https://example.org/dl-notes/"

# One page run as a reader's notebook here: it has snippet includes and reads MNIST
# through snippets.data (the page suite runs every page already; every page's notebook
# runs with `-m notebooks`).
RUN = ["docs/foundations/mnist-baseline.md"]
# Every page that has code, so every page that gets a notebook.
PAGES = sorted(
    pages._rel(p) for p in (ROOT / "docs").rglob("*.md")
    if any(b.runs for b in pages.read_page(p))
)


def _outputs(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")


# A printed line with a time in it (`0.42 ms`, `11.8 s`, `195 ns`) is measured afresh on
# every run, and so is every figure beside it (speed-ups, rates): the numbers of such a
# line are not compared, its words are.
_TIMED = re.compile(r"\d\s*[mµun]?s\b")
_NUMBER = re.compile(r"\s*\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Figures that vary from run to run though no time is printed: a page's arithmetic at
# rounding level. Not compared either; each is a page to fix.
_NOISE = {
    # a float32 least-squares residual, 1.6e-07 to 2.6e-07 from run to run
    "docs/foundations/activations.md": re.compile(r"(?<=linear stack )\S+(?=,)"),
}


def _comparable(rel: str, text: str) -> str:
    """Printed output with the figures that cannot repeat masked (see above)."""
    if rel in _NOISE:
        text = _NOISE[rel].sub("#", text)
    return "\n".join(_NUMBER.sub(" #", line) if _TIMED.search(line) else line
                     for line in text.split("\n"))


def _sources(rel: str) -> list[str]:
    return [b.source for b in pages.read_page(ROOT / rel) if b.runs]


# ---------------------------------------------------------------- the notebook's cells


def test_notebook_mirrors_the_page(tmp_path):
    page = tmp_path / "docs" / "p.md"
    page.parent.mkdir()
    page.write_text(
        "---\ndescription: x\n---\n\n# Title\n\nIntro.\n\n"
        "```python\nfrom snippets.data import names\nx = 1\n```\n\n"
        '!!! note "Why"\n\n    Inside a note.\n\n    ```python\n    y = x + 1\n    ```\n\n'
        "```{.python notest}\nnot run\n```\n\n"
        '=== "First"\n\n    ```python\n    z = 2\n    ```\n\nThe end.\n'
    )
    nb = notebooks.page_notebook(page, SITE)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["code", "markdown", "code", "markdown", "code", "markdown",
                     "markdown", "code", "markdown"]
    assert "data.py" in nb.cells[0].source and SITE in nb.cells[0].source
    assert nb.cells[2].source == "from snippets.data import names\nx = 1"
    assert nb.cells[3].source == "**Why**\n\nInside a note."
    assert nb.cells[4].source == "y = x + 1"  # dedented out of the admonition
    assert nb.cells[5].source == "```python\nnot run\n```"
    assert nb.cells[6].source == "**First**"  # a tab's title, kept as a bold line
    assert "description" not in nb.cells[1].source  # front matter dropped


def test_snippet_includes_are_expanded():
    nb = notebooks.page_notebook(ROOT / RUN[0], SITE)
    text = "\n".join(c.source for c in nb.cells)
    assert "--8<--" not in text
    blocks = [b for b in pages.read_page(ROOT / RUN[0]) if b.runs]
    code = [c.source for c in nb.cells if c.cell_type == "code"][1:]
    assert code == [b.source.rstrip("\n") for b in blocks]


def test_a_block_that_is_not_python_is_named(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# T\n\n```python\nx = 1\n```\n\n```python\ndef (\n```\n")
    with pytest.raises(pages.PageError, match=r"p\.md:7: not Python"):
        notebooks.page_notebook(page, SITE)


def test_timings_are_not_compared_but_the_words_around_them_are():
    recorded = "3540 positions\none row:   575.8 ms (x2.1)\nloss 2.31\n"
    assert _comparable("p.md", recorded) == _comparable(
        "p.md", "3540 positions\none row: 35945.1 ms (x17.7)\nloss 2.31\n")
    assert _comparable("p.md", recorded) != _comparable(
        "p.md", "3540 positions\none row: 575.8 us (x2.1)\nloss 2.31\n")
    assert _comparable("p.md", recorded) != _comparable(
        "p.md", "3541 positions\none row: 575.8 ms (x2.1)\nloss 2.31\n")
    # every figure of a timed line goes, whatever its width
    assert _comparable("p.md", "100,000 products: loop 5.5 ms, op 0.028 ms") == (
        " # products: loop # ms, op # ms")
    # the page whose least-squares residual is rounding noise
    noisy = "relative residual: linear stack {}, with ReLUs 0.30\n"
    page = "docs/foundations/activations.md"
    assert _comparable(page, noisy.format("1.6e-07")) == _comparable(
        page, noisy.format("2.6e-07"))


def test_setup_cell_fetches_nothing_for_a_page_without_snippets():
    cell = notebooks.setup_cell([], SITE)
    assert "urlretrieve" not in cell and "torch.manual_seed(0)" in cell


# ---------------------------------------------------------------- finding the modules


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A `snippets` package in tmp_path with these files (path -> source)."""
    root = tmp_path / "snippets"
    for name, source in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(source))
    return root


@pytest.mark.parametrize("code, expected", [
    ("import snippets.a", ["a"]),
    ("import snippets.a as alias", ["a"]),
    ("from snippets.a import f", ["a"]),
    ("from snippets import a", ["a"]),
    ("from snippets import a, b", ["a", "b"]),
    ("from snippets import (a,\n    b as bee)", ["a", "b"]),
    ("from snippets import helper", []),  # a name defined in __init__.py, not a module
    ("import snippets", []),
    ("def f():\n    from snippets import a\n", ["a"]),  # inside a function
    ("try:\n    import snippets.b\nexcept ImportError:\n    pass\n", ["b"]),
    ("import importlib\nm = importlib.import_module('snippets.a')", ["a"]),
    ("from importlib import import_module\nimport_module('.b', 'snippets')", ["b"]),
    ("__import__('snippets.c')", ["c"]),
    ("from snippets.a import *", ["a"]),
    ("from snippets import *", ["b"]),  # the modules named in __init__'s __all__
    ("from . import a", None),  # relative, at top level: not the package's
    ("import torch, os.path", None),
])
def test_snippet_modules_each_import_form(tmp_path, code, expected):
    root = _package(tmp_path, {"__init__.py": "helper = 1\n__all__ = ['helper', 'b']\n",
                               "a.py": "", "b.py": "",
                               "c.py": ""})
    found = notebooks.snippet_modules(code, root)
    assert found == ([] if expected is None else sorted(["__init__", *expected]))


def test_snippet_modules_follow_relative_and_nested_imports(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from .base import VERSION\n",  # runs on every import
        "base.py": "VERSION = 1\n",
        "a.py": "from . import results\nfrom .data import names\n",
        "data.py": "import os\nnames = []\n",
        "results.py": """\
            def load():
                from .store import read   # only when called
                return read()
            """,
        "store.py": "import json\nfrom snippets import fmt\ndef read(): return fmt\n",
        "fmt.py": "from snippets.deep import inner\n",
        "deep/__init__.py": "",
        "deep/inner.py": "from ..base import VERSION\n",
        "unused.py": "import snippets.a\n",
    })
    assert notebooks.snippet_modules("from snippets.a import names", root) == [
        "__init__", "a", "base", "data", "deep/__init__", "deep/inner", "fmt",
        "results", "store"]
    # several sources (a page's blocks), each parsed on its own
    assert notebooks.snippet_modules(["x = 1", "import snippets.base"], root) == [
        "__init__", "base"]


def test_snippet_modules_of_the_real_package():
    assert notebooks.snippet_modules("from snippets.mnist import flat") == [
        "__init__", "data", "mnist", "results"]
    assert notebooks.snippet_modules("import torch") == []
    # `from snippets import results` inside makemore_part5.py: a regex on
    # `snippets.X` missed it, and the wavenet notebook stopped with ImportError.
    wavenet = notebooks.snippet_modules(_sources("docs/makemore/wavenet.md"))
    assert "results" in wavenet
    assert notebooks.results_files(wavenet) == sorted(
        p.name for p in (ROOT / "docs" / "results").glob("*.json"))


def test_subpackage_modules_are_fetched_into_their_folders(tmp_path):
    cell = notebooks.setup_cell(["__init__", "deep/__init__", "deep/inner"], SITE)
    (tmp_path / "site" / "deep").mkdir(parents=True)
    for name in ("__init__.py", "deep/__init__.py", "deep/inner.py"):
        (tmp_path / "site" / name).write_text(f"NAME = {name!r}\n")
    work = tmp_path / "work"
    work.mkdir()
    script = cell.split("\nimport random")[0]  # the fetching part, without torch
    env = {**_clean_env(), notebooks.SNIPPETS_ENV: (tmp_path / "site").as_uri() + "/"}
    subprocess.run([sys.executable, "-I", "-c", script], cwd=work, env=env, check=True)
    assert (work / "snippets" / "deep" / "inner.py").read_text() == (
        "NAME = 'deep/inner.py'\n")


# ---------------------------------------------------------------- cheap check: every page

# Run in one fresh interpreter (python -I: the repository is not on sys.path). For each
# case: an empty folder as cwd, the notebook's set-up cell run there (it fetches from the
# repository's snippets/ by file:// URL), then every import of the snippets package in
# the page's code performed by Python's own import system, and every import in each
# snippets module so loaded (relative ones, and those inside functions, included),
# until nothing new loads. Reported per case: the imports that failed, the modules that
# did not come from the fetched copy, and what was fetched but never loaded.
_CHECK = r'''
import ast, importlib, importlib.util, json, os, sys

cases, repo = json.load(sys.stdin)
sys.path.insert(0, "")  # the working folder, as in a Jupyter kernel
report = {"sys.path": [p for p in sys.path
                       if os.path.realpath(p or ".") == os.path.realpath(repo)]}

def ours(name):
    return name == "snippets" or name.startswith("snippets.")

def imports(tree, package):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level and package is None:
                continue
            name = node.module
            if node.level:
                name = importlib.util.resolve_name(
                    "." * node.level + (node.module or ""), package)
            yield name, [a.name for a in node.names]

for case in cases:
    for name in [m for m in sys.modules if ours(m)]:
        del sys.modules[name]
    os.chdir(case["dir"])
    here = os.path.realpath(case["dir"]) + os.sep
    os.environ["DLNOTES_SNIPPETS_URL"] = case["url"]
    os.environ["DLNOTES_RESULTS_URL"] = case["results_url"]
    problems = []
    try:
        exec(case["setup"], {})
    except Exception as e:
        problems.append(f"set-up cell: {type(e).__name__}: {e}")
    importlib.invalidate_caches()
    fetched = sorted(
        os.path.relpath(os.path.join(d, f), "snippets")[:-3]
        for d, _, fs in os.walk("snippets") for f in fs if f.endswith(".py"))
    todo = [("page", ast.parse(source), None) for source in case["sources"]]
    scanned = set()
    while todo:
        where, tree, package = todo.pop()
        for module, names in imports(tree, package):
            if not ours(module):
                continue
            try:
                loaded = importlib.import_module(module)
                if names == ["*"]:
                    names = list(getattr(loaded, "__all__", []))
                for name in names:
                    if not hasattr(loaded, name):  # a submodule, as `from` finds it
                        importlib.import_module(f"{module}.{name}")
            except Exception as e:
                what = f"from {module} import {', '.join(names)}" if names else (
                    f"import {module}")
                problems.append(f"{where}: {what}: {type(e).__name__}: {e}")
        for name, loaded in list(sys.modules.items()):
            if not ours(name) or name in scanned:
                continue
            scanned.add(name)
            file = os.path.realpath(getattr(loaded, "__file__", None) or "?")
            if not file.startswith(here):
                problems.append(f"{name} was loaded from {file}, not the fetched copy")
                continue
            with open(file, encoding="utf8") as f:
                todo.append((name, ast.parse(f.read()), loaded.__package__))
    used = sorted(
        os.path.relpath(os.path.realpath(sys.modules[n].__file__), here + "snippets")[:-3]
        for n in scanned if getattr(sys.modules.get(n), "__file__", None))
    unused = sorted(set(fetched) - set(used))
    if unused:
        problems.append(f"fetched but never imported: {unused}")
    report[case["name"]] = problems
print(json.dumps(report))
'''


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "MPLBACKEND", "PYTHONHOME")}


def check_setup(cases: dict[str, tuple[str, list[str]]], tmp_path: Path) -> dict:
    """{name: (set-up cell, page sources)} -> {name: problems}, in one subprocess."""
    payload = []
    for i, (name, (setup, sources)) in enumerate(cases.items()):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        payload.append({
            "name": name, "dir": str(folder), "setup": setup, "sources": sources,
            "url": (ROOT / "snippets").as_uri() + "/",
            "results_url": (ROOT / "docs" / "results").as_uri() + "/",
        })
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _CHECK], input=json.dumps([payload, str(ROOT)]),
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report.pop("sys.path") == [], "the repository was on sys.path"
    return report


def _old_regex_modules(code: str) -> list[str]:
    """What a regex on `snippets.X` found: `from snippets import X` and relative
    imports were invisible to it."""
    pattern = re.compile(r"^\s*(?:from|import)\s+snippets\.(\w+)", re.M)
    todo, seen = pattern.findall(code), {"__init__"}
    while todo:
        name = todo.pop()
        if name in seen or not (ROOT / "snippets" / f"{name}.py").exists():
            continue
        seen.add(name)
        todo += pattern.findall((ROOT / "snippets" / f"{name}.py").read_text("utf8"))
    return sorted(seen)


WAVENET = "docs/makemore/wavenet.md"


@pytest.fixture(scope="module")
def setup_report(tmp_path_factory):
    """Every page's set-up cell checked, and three deliberately wrong module lists."""
    cases = {}
    for rel in PAGES:
        nb = notebooks.page_notebook(ROOT / rel, SITE)
        cases[rel] = (nb.cells[0].source, _sources(rel))
    sources = _sources(WAVENET)
    short = [m for m in notebooks.snippet_modules(sources) if m != "results"]
    cases["wavenet without results"] = (notebooks.setup_cell(short, SITE), sources)
    old = _old_regex_modules("\n".join(sources))
    cases["wavenet, regex discovery"] = (notebooks.setup_cell(old, SITE), sources)
    plain = ["from snippets.data import names"]
    extra = [*notebooks.snippet_modules(plain), "micrograd"]
    cases["one module too many"] = (notebooks.setup_cell(extra, SITE), plain)
    return check_setup(cases, tmp_path_factory.mktemp("setup"))


@pytest.mark.parametrize("rel", PAGES)
def test_setup_cell_fetches_exactly_what_the_page_imports(rel, setup_report):
    assert setup_report[rel] == []


def test_the_check_flags_a_module_list_that_is_short(setup_report):
    assert "results" not in _old_regex_modules("\n".join(_sources(WAVENET)))
    for case in ("wavenet without results", "wavenet, regex discovery"):
        problems = setup_report[case]
        # what the notebook stopped with: makemore_part5.py's `from snippets import
        # results` finds no module
        assert any("cannot import name 'results' from 'snippets'" in p
                   for p in problems), (case, problems)


def test_the_check_flags_a_module_fetched_for_nothing(setup_report):
    assert setup_report["one module too many"] == [
        "fetched but never imported: ['micrograd']"]


# ---------------------------------------------------------------- executing notebooks


def _execute(rel: str, folder: Path) -> tuple[int, int]:
    """Run the page's notebook in a fresh kernel in an empty folder, fetching snippets
    from the repository by file:// URL as a reader's copy fetches them from the site;
    its printed output must be the page's recorded output."""
    from nbclient import NotebookClient

    nb = notebooks.page_notebook(ROOT / rel, SITE)
    env = _clean_env()
    env[notebooks.SNIPPETS_ENV] = (ROOT / "snippets").as_uri() + "/"
    env[notebooks.RESULTS_ENV] = (ROOT / "docs" / "results").as_uri() + "/"
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute(env=env)
    errors = [o for c in nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    fetched = {p.relative_to(folder / "snippets").with_suffix("").as_posix()
               for p in (folder / "snippets").rglob("*.py")}
    assert fetched == set(notebooks.snippet_modules(_sources(rel)))  # not the repo's
    # Where this commit's test run recorded the page, the notebook printed the same
    # (timings aside).
    recorded = records.load(ROOT / rel, "cpu")["blocks"]
    blocks = [b for b in pages.read_page(ROOT / rel) if b.runs]
    cells = [c for c in nb.cells if c.cell_type == "code"][1:]
    compared = 0
    for block, cell in zip(blocks, cells, strict=True):
        if block.digest in recorded:
            got = _comparable(rel, _outputs(cell))
            assert got == _comparable(rel, recorded[block.digest]["output"]), (
                f"{rel}:{block.line}: the notebook printed something else")
            compared += 1
    print(f"{rel}: {compared}/{len(blocks)} outputs compared with the record")
    return compared, len(blocks)


@pytest.mark.slow
@pytest.mark.parametrize("rel", RUN)
def test_page_notebook_runs_outside_the_repository(rel, tmp_path):
    """Executed in an empty folder, fetching snippets as a reader's copy would."""
    _execute(rel, tmp_path)


@pytest.mark.notebooks
@pytest.mark.parametrize("rel", PAGES)
def test_every_page_notebook_runs_and_prints_what_the_page_recorded(rel, tmp_path):
    compared, blocks = _execute(rel, tmp_path)
    assert compared == blocks, (
        f"{rel}: only {compared} of {blocks} blocks have a current record; record "
        f"them first: python3 tests/dev.py test {rel}")


def test_cited_values_and_quotations_reach_the_notebook(tmp_path, monkeypatch):
    page = tmp_path / "p.md"
    page.write_text("# P\n\n```python\nloss = 2.4546\n```\n\n"
                    "The loss is {{ loss:.2f }}; {{q 2.454 | makemore part 1 }}.\n")
    monkeypatch.setenv("DLNOTES_OUTPUTS", str(tmp_path / "outputs"))
    (block,) = pages.read_page(page)
    records.save(page, "cpu", {"page": "p.md", "run": {}, "blocks": {
        block.digest: {"line": 3, "output": "", "figures": [], "seconds": 0.0,
                       "cited": {"loss:.2f": "2.45"}}}})
    nb = notebooks.page_notebook(page, SITE)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "The loss is 2.45; 2.454 (quoted: makemore part 1)." in text
    assert "{{" not in text


def test_exercise_solutions_are_hidden_cells_in_the_notebook(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# P\n\n```python\nx = 1\n```\n\n## Exercises\n\n1. Add one.\n\n"
                    '??? success "Solution"\n\n    ```python\n    y = x + 1\n    ```\n')
    nb = notebooks.page_notebook(page, SITE)
    code = [c for c in nb.cells if c.cell_type == "code"][1:]
    assert [c.source for c in code] == ["x = 1", "y = x + 1"]
    assert "solution" not in code[0].metadata.get("tags", [])
    assert code[1].metadata["tags"] == ["solution"]
    assert code[1].metadata["jupyter"] == {"source_hidden": True}
