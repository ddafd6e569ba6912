"""tests/dev.py: every command line the workflows, .ci/run and the docs name still parses.

Each one is run with --dry-run, which prints what it would run and runs, installs and
downloads nothing; so a workflow step that could not start (an option that does not
exist, a misspelt command) fails here, not on a runner. Also: what the parser refuses,
that --help and --dry-run create nothing, and that `serve` runs stale labs first.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from tests.engine import labs

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests" / "dev.py"
VENV_PYTHON = ROOT / ".venv" / ("Scripts" if os.name == "nt" else "bin") / "python"

# `python3 tests/dev.py ...` up to the end of the line, or of the inline code span.
_COMMAND = re.compile(r"\bpython3? tests/dev\.py\b(?P<rest>[^`\n]*)")
_PLACEHOLDER = re.compile(r"\[[A-Z_.]+\]")  # an optional metavar in the docs: [NAME]


def _words(rest: str) -> tuple[str, ...]:
    """The arguments after tests/dev.py, as the shell splits them, up to ; && | or #."""
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if set(word) <= set("();<>|&"):
            break
        if not _PLACEHOLDER.fullmatch(word):
            words.append(word)
    return tuple(words)


def _commands_in(text: str) -> list[tuple[str, ...]]:
    return [_words(m["rest"]) for m in _COMMAND.finditer(text.replace("\\\n", " "))]


def _workflow_runs(path: Path) -> list[str]:
    """The `run:` scripts of every step of every job (multi-line blocks included), with
    the step's `env:` values put in for `"$NAME"`, once for each value of a matrix entry
    they name (`${{ matrix.shard }}`)."""
    workflow = yaml.safe_load(path.read_text("utf8"))
    return [script for job in workflow["jobs"].values()
            for step in job.get("steps", []) if "run" in step
            for script in _each_matrix_value(_with_env(step["run"], step.get("env", {})),
                                             job.get("strategy", {}).get("matrix", {}))]


def _with_env(script: str, env: dict) -> str:
    """`script` with each "$NAME" (quoted, as the workflows write them) of the step's
    environment replaced by its value."""
    for name, value in env.items():
        script = script.replace(f'"${name}"', str(value))
    return script


def _each_matrix_value(script: str, matrix: dict) -> list[str]:
    """`script` with each `${{ matrix.NAME }}` replaced by each of NAME's values."""
    for name, values in matrix.items():
        found = re.search(r"\$\{\{\s*matrix\." + re.escape(name) + r"\s*\}\}", script)
        if found and isinstance(values, list):
            return [done for value in values for done in _each_matrix_value(
                script.replace(found[0], str(value)), matrix)]
    return [script]


def documented_commands() -> list[tuple[str, tuple[str, ...]]]:
    """(where, arguments) for every tests/dev.py command line the project names."""
    found = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for script in _workflow_runs(path):
            found += [(path.name, c) for c in _commands_in(script)]
    ci = "\n".join(line for line in (ROOT / ".ci" / "run").read_text("utf8").split("\n")
                   if not line.lstrip().startswith("#"))
    found += [(".ci/run", c) for c in _commands_in(ci)]
    for doc in ("README.md", ".github/CONTRIBUTING.md"):
        found += [(doc, c) for c in _commands_in((ROOT / doc).read_text("utf8"))]
    return found


FOUND = documented_commands()
UNIQUE = sorted({args for _, args in FOUND})


def dev(*args: str, cwd: Path = ROOT, script: Path = DEV, env: dict | None = None):
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120,
    )


def planned(out: str) -> list[str]:
    return [line.removeprefix("dev: would run: ") for line in out.split("\n")
            if line.startswith("dev: would run: ")]


def test_the_documented_commands_are_found():
    where = {source for source, _ in FOUND}
    assert {"ci.yml", "gpu.yml", "links.yml", "pages.yml", ".ci/run", "README.md",
            ".github/CONTRIBUTING.md"} <= where
    assert len(FOUND) >= 30, FOUND
    assert sum(s.endswith(".yml") for s, _ in FOUND) >= 12
    for expected in [
        ("gpu.yml", ("test", "--require-cuda")),
        ("gpu.yml", ("full", "--shard", "1/2")),  # once for each of the matrix's shards
        ("gpu.yml", ("full", "--shard", "2/2")),
        ("gpu.yml", ("full", "--combine", "build/full-shards/*")),
        ("ci.yml", ("browser",)),  # from a multi-line `run: |` block
        ("pages.yml", ("notebooks", "build/notebooks")),
        (".ci/run", ("lint",)),
        ("README.md", ("serve",)),
        ("README.md", ("full",)),  # the table's `full [NAME]`
        (".github/CONTRIBUTING.md",
         ("test", "docs/foundations/my-idea.md::[CodeFence#3][line:42]")),
    ]:
        assert expected in FOUND
    assert {args[0] for args in UNIQUE} >= {"test", "serve", "build", "browser", "bench",
                                            "data", "new", "full", "notebooks", "lint"}


@pytest.mark.parametrize("args", UNIQUE, ids=shlex.join)
def test_documented_command_dry_runs(args):
    done = dev("--dry-run", *args)
    assert done.returncode == 0, done.stderr + done.stdout
    if args[0] == "new":  # runs no command; it writes the page and edits the nav
        assert f"dev: would write: docs/{args[1]}.md" in done.stdout.split("\n")
    else:
        assert planned(done.stdout), done.stdout


@pytest.mark.parametrize("args", [
    ["full", "--tier", "full"],
    ["--dry-run", "full", "--tier", "full"],
    ["full", "no-such-module"],
    ["full", "--shard", "3/2"],
    ["full", "--shard", "0/2"],
    ["full", "--shard", "half"],
    ["full", "--shard", "1/2", "--combine", "build/full"],
    ["full", "--combine"],
    ["full", "--combine", "build/full", "--fresh"],
    ["data", "--bogus"],
    ["data", "everything"],
    ["links", "--strict"],
    ["notebooks"],
    ["new", "Not/Kebab", "Title"],
    ["drift"],  # --torch is required
    ["drift", "--torch", "two"],
    ["drift", "--torch", "2.14.1", "--rel", "tight"],
    ["no-such-command"],
    ["--bogus", "test"],
    [],
], ids=lambda a: shlex.join(a) or "(nothing)")
def test_refused_with_usage(args):
    done = dev(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage:" in done.stderr
    assert "would run" not in done.stdout


def test_pass_through_arguments_keep_their_order():
    args = ["docs/x.md", "-k", "foo and not bar", "--require-cuda", "-x",
            "docs/y.md::[CodeFence#3][line:42]", "-p", "no:cacheprovider"]
    done = dev("--dry-run", "test", *args)
    assert done.returncode == 0, done.stderr
    assert shlex.split(planned(done.stdout)[-1])[-len(args):] == args
    done = dev("--dry-run", "build", "--quiet")
    assert planned(done.stdout)[-1].endswith("mkdocs build --strict --quiet")


def _bare_copy(tmp_path: Path) -> Path:
    """tests/dev.py and requirements.txt alone in a fresh root: no .venv, nothing else."""
    (tmp_path / "tests").mkdir()
    shutil.copy(DEV, tmp_path / "tests" / "dev.py")
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    return tmp_path / "tests" / "dev.py"


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_help_and_refusals_create_nothing(tmp_path):
    script = _bare_copy(tmp_path)
    before = _tree(tmp_path)
    done = dev("--help", cwd=tmp_path, script=script)
    assert done.returncode == 0 and "usage:" in done.stdout
    for command in ("test", "serve", "build", "browser", "bench", "data", "new", "full",
                    "lint", "links", "notebooks"):
        assert command in done.stdout
        sub = dev(command, "--help", cwd=tmp_path, script=script)
        assert sub.returncode == 0 and "usage:" in sub.stdout, sub.stderr
    assert dev("full", "--tier", "full", cwd=tmp_path, script=script).returncode == 2
    assert _tree(tmp_path) == before


def test_dry_run_plans_the_install_but_creates_nothing(tmp_path):
    script = _bare_copy(tmp_path)
    before = _tree(tmp_path)
    done = dev("--dry-run", "test", "--require-cuda", cwd=tmp_path, script=script)
    assert done.returncode == 0, done.stderr
    plan = planned(done.stdout)
    assert plan[0].endswith("-m venv .venv")
    assert any(" -m pip install " in line and "torch==" in line for line in plan)
    assert plan[-1] == ".venv/bin/python -m pytest --require-cuda"
    assert _tree(tmp_path) == before  # no .venv, no stamp, no data


def test_drift_plans_its_own_environment_and_outputs(tmp_path, monkeypatch):
    """The other torch gets its own venv and outputs folder; the pinned run's are kept."""
    monkeypatch.delenv("DLNOTES_OUTPUTS", raising=False)  # set inside a drift run
    monkeypatch.delenv("DLNOTES_TORCH_INDEX", raising=False)  # set in CI
    script = _bare_copy(tmp_path)
    before = _tree(tmp_path)
    done = dev("--dry-run", "drift", "--torch", "2.14.1", "--rel", "1e-3",
               cwd=tmp_path, script=script)
    assert done.returncode == 0, done.stderr
    plan = planned(done.stdout)
    assert any(line.endswith("-m venv build/drift/venv-torch2.14.1") for line in plan)
    assert any(line.startswith("build/drift/venv-torch2.14.1/bin/python -m pip install")
               and line.endswith("torch==2.14.1") for line in plan)
    suite = next(line for line in plan if " -m pytest " in line and "junitxml" in line)
    assert suite.startswith(
        f"DLNOTES_OUTPUTS={tmp_path / 'build/drift/outputs-torch2.14.1'} "
        "build/drift/venv-torch2.14.1/bin/python -m pytest")
    first, final = [shlex.split(line) for line in plan
                    if "tests.engine.drift compare" in line]
    assert first[first.index("--old") + 1] == "build/outputs"
    assert first[first.index("--rel") + 1] == "0.001"
    assert "--publish" not in first
    # what changed or failed runs once more with the pinned torch, then the final
    # report marks what varies between those two runs, and what fails with both
    assert any(line.endswith("-m tests.engine.drift again-targets "
                             "build/drift/report-torch2.14.1.json") for line in plan)
    assert any(line.startswith("DLNOTES_OUTPUTS=") and "outputs-pinned-again .venv/"
               in line for line in plan)
    assert final[final.index("--again") + 1] == "build/drift/outputs-pinned-again"
    assert final[final.index("--again-junit") + 1] == "build/drift/junit-pinned-again.xml"
    assert final[final.index("--publish") + 1] == "docs/results/drift.json"
    assert "dev: would write: build/drift/requirements-torch2.14.1.txt" in done.stdout
    assert _tree(tmp_path) == before
    # pytest arguments select part of the suite: the site's copy is left alone
    done = dev("--dry-run", "drift", "--torch", "2.14.1", "docs/x.md", "-x",
               cwd=tmp_path, script=script)
    suite = next(line for line in planned(done.stdout) if "junitxml" in line)
    assert suite.endswith(" docs/x.md -x") and "--publish" not in done.stdout
    # --compare-only: the report again, from the last run's outputs; nothing installed
    done = dev("--dry-run", "drift", "--torch", "2.14.1", "--compare-only",
               cwd=tmp_path, script=script)
    plan = planned(done.stdout)
    # (this test may itself run inside a drift environment: sys.executable is then one)
    assert not [line for line in plan if line.startswith("build/drift/venv-torch")
                or line.endswith("-m venv build/drift/venv-torch2.14.1")]
    assert sum("tests.engine.drift compare" in line for line in plan) == 2
    assert _tree(tmp_path) == before


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """An empty outputs folder in place of build/outputs: every lab's copy is missing."""
    out = tmp_path / "outputs"
    monkeypatch.setenv("DLNOTES_OUTPUTS", str(out))
    return out


def _executed_copy(lab: Path, sha: str) -> None:
    """An executed copy of `lab` stamped as run from cells whose digest is `sha`."""
    nb = nbformat.read(lab, as_version=4)
    nb.metadata["dlnotes"] = {"source_sha256": sha}
    path = labs.executed_path(lab, "cpu")
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_stale_labs_follow_the_executed_copy(outputs):
    found = labs.labs()
    assert found, "no docs/labs/*.ipynb"
    rels = [lab.relative_to(ROOT).as_posix() for lab in found]
    assert labs.lab_state(found[0]) == ("missing", {})
    assert labs.stale_labs() == rels
    _executed_copy(found[0], labs.source_sha256(found[0]))
    assert labs.lab_state(found[0])[0] == "current"
    assert labs.stale_labs() == rels[1:]
    _executed_copy(found[0], "0" * 64)  # executed from cells that have changed since
    assert labs.lab_state(found[0])[0] == "stale"
    assert labs.stale_labs() == rels


@pytest.mark.skipif(not VENV_PYTHON.exists(), reason="serve's plan is read in .venv")
def test_serve_runs_stale_labs_before_serving(outputs):
    found = labs.labs()
    _executed_copy(found[0], labs.source_sha256(found[0]))  # current: not re-run
    done = dev("--dry-run", "serve", env={"DLNOTES_OUTPUTS": str(outputs)})
    assert done.returncode == 0, done.stderr
    plan = planned(done.stdout)
    assert plan[-1].endswith("mkdocs serve --dirty")  # a save rebuilds one page
    record = shlex.split(next(line for line in plan if " -m pytest " in line))
    for lab in found[1:]:
        assert lab.relative_to(ROOT).as_posix() in record
    assert found[0].relative_to(ROOT).as_posix() not in record
    assert "docs/foundations/cross-entropy.md" in record  # no recorded outputs either
    assert not outputs.joinpath("cpu", "docs", "foundations").exists()  # nothing ran


def test_new_writes_a_page_the_catalogue_places_in_its_section_and_the_path(tmp_path):
    """`new` touches two files, the page and mkdocs.yml; the section index, the path and
    the Leads to line of the page it builds on follow from the page's front matter."""
    import markdown

    from tests.engine import catalogue

    root = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copytree(ROOT / ".github", root / ".github")
    (root / "tests").mkdir()
    shutil.copy(DEV, root / "tests" / "dev.py")
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    before = _tree(root)
    done = dev("new", "workflow/my-idea", "My idea", cwd=root, script=root / "tests/dev.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _tree(root) - before == {"docs/workflow/my-idea.md"}
    assert "- workflow/my-idea.md" in (root / "mkdocs.yml").read_text()
    cat = catalogue.load(root / "docs")
    new = cat.entries["workflow/my-idea.md"]
    last = max((e for e in cat.entries.values() if e.section == "workflow"
                and e.rel != new.rel), key=lambda e: (e.part, e.order))
    assert (new.part, new.title, new.tier) == (last.part, "My idea", "core")
    assert cat.path_order()[cat.path_order().index(last.rel) + 1] == new.rel
    assert new.rel in cat.dependents("foundations/cross-entropy.md")

    def render(page):
        md = markdown.Markdown(extensions=["tests.engine.catalogue"], extension_configs={
            "tests.engine.catalogue": {"docs_dir": str(root / "docs")}})
        return md.convert((root / "docs" / page).read_text().split("\n---\n", 1)[1])

    assert '<a href="my-idea.md">My idea</a>' in render("workflow/index.md")
    assert '<a href="workflow/my-idea.md">My idea</a>' in render("path.md")
    assert '<a href="../workflow/my-idea.md">My idea</a>' in render(
        "foundations/cross-entropy.md")
