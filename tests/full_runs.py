"""The full tier as independent runs, spread over the machine's cores.

A snippets module declares its full tier in one of two ways:

    full_tier()                          one run (the module's own `python -m snippets.X`)
    full_tier_runs() -> {name: kwargs}   independent runs, JSON keyword arguments each;
    full_tier_run(name, **kwargs) -> dict    one run, its results (JSON); one thread
    full_tier_merge(runs, start) -> dict     {name: results} -> docs/results/X.json;
                                             `start` is when the tier began (time.time())

`python3 tests/dev.py full` runs every run of every module (or those named) as its own
process with one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)), as many at once as
there are cores; prints progress with an ETA; and keeps each finished run in
build/full/results.json, so an interrupted tier resumes at the next unfinished run. A
module's results are merged (full_tier_merge) when its last run finishes.

With a shard (`full --shard K/N`: the runs `shards N` gives shard K) the tier merges
nothing: its runs stay in build/full/results.json and every docs/results/*.json it changed
is kept in build/full/written/. `full --combine DIR...` takes those folders from the
shards, unions their runs into build/full/results.json, copies what they wrote into
docs/results/ and merges every module whose runs are all done.

    python -m tests.full_runs plan MODULE...            the runs, as JSON
    python -m tests.full_runs run MODULE NAME KWARGS OUT one run into OUT
    python -m tests.full_runs merge MODULE RESULTS       merge a module's finished runs
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.engine.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
# where finished runs are kept, the package the modules live in and the folder they
# write their results to (the tests of this file point all three elsewhere)
STATE = Path(os.environ.get("DLNOTES_FULL_STATE", ROOT / "build" / "full"))
PACKAGE = os.environ.get("DLNOTES_FULL_PACKAGE", "snippets")
RESULTS = ROOT / "docs" / "results"
WHOLE = "full_tier"  # the one run of a module that has only full_tier()
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def plan(modules: list[str]) -> dict[str, dict[str, dict]]:
    """{module: {run name: kwargs}}."""
    found = {}
    for name in modules:
        module = importlib.import_module(f"{PACKAGE}.{name}")
        runs = getattr(module, "full_tier_runs", None)
        found[name] = runs() if runs else {WHOLE: {}}
    return found


def key(module: str, run: str, kwargs: dict) -> str:
    spec = json.dumps(kwargs, sort_keys=True)
    return f"{module}/{run}#{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


def _save(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True))


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_one(module: str, run: str, kwargs: dict, out: Path) -> None:
    mod = importlib.import_module(f"{PACKAGE}.{module}")
    if "torch" in sys.modules:  # (OMP_NUM_THREADS=1 already; this says it to torch too)
        sys.modules["torch"].set_num_threads(1)
    result = mod.full_tier_run(run, **kwargs)
    _save(out, {"result": result})


def merge(module: str, results_file: Path) -> None:
    mod = importlib.import_module(f"{PACKAGE}.{module}")
    done = _load(results_file)
    runs, start = {}, None
    for k, entry in done.items():
        if entry.get("module") == module:
            runs[entry["run"]] = entry["result"]
            start = min(start or entry["started"], entry["started"])
    order = list(mod.full_tier_runs())
    mod.full_tier_merge({n: runs[n] for n in order}, start=start or time.time())


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _env(one_thread: bool = True) -> dict[str, str]:
    """The environment of a run, a plan or a merge: the repository on the path and,
    unless a module with only full_tier() sets its own, one thread."""
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    return {**os.environ, **(ONE_THREAD if one_thread else {}), "PYTHONPATH": path}


def plan_in(python: Path, modules: list[str],
            env: dict | None = None) -> dict[str, dict[str, dict]]:
    """plan(modules), asked of `python` (the tier's own environment; it imports the
    modules and writes nothing); CalledProcessError, its stderr kept, if it fails."""
    return json.loads(subprocess.run(
        [python, "-m", "tests.full_runs", "plan", *modules], cwd=ROOT,
        env=env or _env(),
        check=True, capture_output=True, text=True).stdout.strip().split("\n")[-1])


def missing(planned: dict, module: str, done: dict) -> list[str]:
    """The runs of `module` (as module/run) that `done` does not hold."""
    return [f"{module}/{r}" for r, kw in planned[module].items()
            if key(module, r, kw) not in done]


def merge_if_done(python: Path, planned: dict, module: str, env: dict, say) -> bool:
    """Merge `module` (full_tier_merge) once build/full/results.json holds all its runs
    (a module with only full_tier() wrote its file itself); False if the merge failed."""
    results_file = STATE / "results.json"
    if WHOLE in planned[module] or missing(planned, module, _load(results_file)):
        return True
    code = subprocess.run([python, "-m", "tests.full_runs", "merge", module,
                           results_file], cwd=ROOT, env=env).returncode
    say(f"dev: merged {PACKAGE}.{module}"
        if code == 0 else f"dev: merging {PACKAGE}.{module} failed")
    return code == 0


def _digests() -> dict[str, str]:
    """sha256 of every docs/results/*.json, by file name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(RESULTS.glob("*.json"))}


def _shard_start(fresh: bool) -> dict[str, str]:
    """The digests of docs/results/*.json when this shard began: taken at its first
    start and kept in build/full/shard-start.json across resumes (--fresh takes them
    again and forgets what build/full/written/ holds)."""
    start = STATE / "shard-start.json"
    if fresh:
        start.unlink(missing_ok=True)
        shutil.rmtree(STATE / "written", ignore_errors=True)
    if not start.exists():
        _save(start, _digests())
    return _load(start)


def _keep_written(start: dict[str, str]) -> list[str]:
    """Copy each docs/results/*.json that differs from `start` (changed or new) into
    build/full/written/; their names."""
    changed = [name for name, digest in _digests().items() if start.get(name) != digest]
    for name in changed:
        atomic_write(STATE / "written" / name, (RESULTS / name).read_bytes())
    return changed


def run_all(python: Path, modules: list[str], workers: int, fresh: bool = False,
            say=print, shard: Callable[[list[str]], Iterable[str]] | None = None) -> int:
    """Every run of every module, `workers` at a time; resumable. Returns 0 or 1.

    `shard` picks this shard's runs out of all the plan's (named module/run): only those
    run, nothing is merged, and the docs/results files changed meanwhile are kept in
    build/full/written/ for `combine`."""
    results_file = STATE / "results.json"
    durations_file = STATE / "durations.json"  # seconds of past runs: for the ETA
    if fresh:
        results_file.unlink(missing_ok=True)
    env = _env()
    planned = plan_in(python, modules, env)
    start = _shard_start(fresh) if shard else {}
    runs = [(m, r, kw) for m, found in planned.items() for r, kw in found.items()]
    if shard:
        mine = set(shard([f"{m}/{r}" for m, r, _ in runs]))
        say(f"dev: full tier: this shard has {len(mine)} of the plan's {len(runs)} runs")
        runs = [(m, r, kw) for m, r, kw in runs if f"{m}/{r}" in mine]
        if not results_file.exists():  # what `combine` reads, even with no run
            _save(results_file, {})
    done = _load(results_file)
    durations = _load(durations_file)
    todo = [(m, r, kw) for m, r, kw in runs if key(m, r, kw) not in done]
    skipped = len(runs) - len(todo)
    # the longest first (by past durations), so that the last ones are short
    todo.sort(key=lambda t: -durations.get(f"{t[0]}/{t[1]}", 0.0))
    say(f"dev: full tier: {len(todo)} run(s) to do on {workers} core(s)"
        + (f", {skipped} already done (build/full/results.json)" if skipped else ""))
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[subprocess.Popen, tuple] = {}
    failed: list[str] = []
    tier_start = time.time()
    finished = 0

    def estimate(m, r):
        known = durations.get(f"{m}/{r}")
        if known is not None:
            return known
        mine = [v for k, v in durations.items() if k.startswith(f"{m}/")]
        return sum(mine) / len(mine) if mine else 60.0

    def maybe_merge(module):
        if not shard and not merge_if_done(python, planned, module, env, say):
            failed.append(f"{module} (merge)")

    for module in planned:  # modules whose runs were all done before
        if not any(m == module for m, _, _ in todo) and skipped:
            maybe_merge(module)

    while todo or running:
        while todo and len(running) < workers:
            m, r, kw = todo.pop(0)
            out = STATE / "runs" / f"{key(m, r, kw).replace('/', '--')}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)
            log = open(logs / f"{m}--{re.sub(r'[^A-Za-z0-9_.-]', '_', r)}.log", "w")
            cmd = ([python, "-u", "-m", f"{PACKAGE}.{m}"] if r == WHOLE else
                   [python, "-u", "-m", "tests.full_runs", "run", m, r, json.dumps(kw),
                    out])
            # a module with only full_tier() sets its own threads
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env=env if r != WHOLE else _env(one_thread=False))
            running[proc] = (m, r, kw, out, time.time(), log)
            say(f"dev: started {m}/{r}")
        time.sleep(0.05)  # a finished run is noticed at once; polling costs nothing
        for proc in [p for p in running if p.poll() is not None]:
            m, r, kw, out, started, log = running.pop(proc)
            log.close()
            seconds = time.time() - started
            finished += 1
            if proc.returncode or (r != WHOLE and not out.exists()):
                failed.append(f"{m}/{r}")
                say(f"dev: FAILED {m}/{r} after {seconds:.0f} s (log: "
                    f"{log.name})")
                continue
            result = _load(out).get("result") if r != WHOLE else None
            current = _load(results_file)
            current[key(m, r, kw)] = {"module": m, "run": r, "kwargs": kw,
                                      "result": result, "seconds": round(seconds, 1),
                                      "started": started}
            _save(results_file, current)
            durations[f"{m}/{r}"] = round(seconds, 1)
            _save(durations_file, durations)
            left = sum(estimate(mm, rr) for mm, rr, _ in todo)
            left += sum(max(estimate(mm, rr) - (time.time() - st), 0)
                        for mm, rr, _, _, st, _ in running.values())
            say(f"dev: [{finished}/{finished + len(todo) + len(running)}] {m}/{r} "
                f"done in {seconds:.0f} s; elapsed {_fmt(time.time() - tier_start)}, "
                f"ETA {_fmt(left / max(workers, 1))}")
            maybe_merge(m)
    if shard:
        kept = _keep_written(start)
        say(f"dev: {len(kept)} changed docs/results file(s) kept in build/full/written/"
            + (f": {', '.join(kept)}" if kept else ""))
    say(f"dev: full tier done in {_fmt(time.time() - tier_start)}; "
        f"{len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


def _read_shard(folder: Path) -> tuple[dict, list[Path]]:
    """A shard's build/full folder: its finished runs and the results files it wrote."""
    try:
        done = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"dev: {folder} is not a shard's build/full (no readable "
                 f"results.json: {e})")
    return done, sorted((folder / "written").glob("*.json"))


def _union(folders: list[Path]) -> tuple[dict, dict[str, Path]]:
    """Every shard's finished runs, and {results file name: the shard's copy}. Exits,
    naming both folders, where two shards finished a run with different results or
    wrote the same file."""
    done: dict[str, dict] = {}
    whose: dict[str, Path] = {}
    written: dict[str, Path] = {}
    for folder in folders:
        runs, files = _read_shard(folder)
        for k, entry in runs.items():
            if k in done and done[k].get("result") != entry.get("result"):
                sys.exit(f"dev: {k} has different results in {whose[k]} and {folder}")
            done.setdefault(k, entry)
            whose.setdefault(k, folder)
        for file in files:
            if file.name in written:
                sys.exit(f"dev: two shards wrote {file.name}: "
                         f"{written[file.name].parent.parent} and {folder}")
            written[file.name] = file
    return done, written


def combine(python: Path, folders: list[Path], modules: list[str], say=print) -> int:
    """The shards' build/full folders as one tier: their runs into
    build/full/results.json (replacing it), what they wrote into docs/results/, then
    every module whose runs are all done merged, as run_all merges. Returns 0, or 1
    naming the runs no shard finished and the merges that failed; a conflict between
    shards exits before anything is written."""
    done, written = _union(folders)
    env = _env()
    planned = plan_in(python, modules, env)
    _save(STATE / "results.json", done)
    for name, source in written.items():
        atomic_write(RESULTS / name, source.read_bytes())
    say(f"dev: {len(folders)} shard(s): {len(done)} finished run(s); "
        f"{len(written)} results file(s) copied into docs/results/"
        + (f": {', '.join(written)}" if written else ""))
    failed = [f"{m} (merge)" for m in planned
              if not merge_if_done(python, planned, m, env, say)]
    absent = [name for m in planned for name in missing(planned, m, done)]
    if absent:
        say(f"dev: no shard finished {len(absent)} run(s): {', '.join(absent)}")
    if failed:
        say(f"dev: failed: {', '.join(failed)}")
    return 1 if absent or failed else 0


def main(argv: list[str]) -> int:
    what, *rest = argv
    if what == "plan":
        print(json.dumps(plan(rest)))
    elif what == "run":
        module, run, kwargs, out = rest
        run_one(module, run, json.loads(kwargs), Path(out))
    elif what == "merge":
        module, results_file = rest
        merge(module, Path(results_file))
    else:
        raise SystemExit(f"unknown: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
