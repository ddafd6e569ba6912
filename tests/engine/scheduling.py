"""How pytest-xdist spreads pages, labs and tests over workers (`--dist loadgroup`).

`tests/dev.py test` runs the suite with `-n WORKERS --dist loadgroup`. pytest 9.2 keeps a
node's id where pytest-xdist 3.8's loadgroup renames it, so xdist_group marks no longer
group; the scheduler here does what loadgroup should for this project: a page's blocks
(and a lab) stay on one worker, tests that share a module-scoped fixture stay on one
worker (the fixture runs once), every other test is scheduled on its own, and the
longest work is handed out first (by build/test-seconds.json, which each such run
updates, else by the recorded block times).
"""

from __future__ import annotations

import ast
import functools
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE_SUFFIXES = (".md", ".mdx", ".svx", ".ipynb")


@functools.lru_cache(maxsize=None)
def _sharing_tests(root: Path, path: str) -> frozenset[str]:
    """Test functions of a test module that request one of its module-scoped fixtures
    (read from its source: the controller does not import test modules)."""
    try:
        tree = ast.parse((root / path).read_text("utf8"))
    except (OSError, SyntaxError):
        return frozenset()
    shared = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and any(
                        k.arg == "scope" and getattr(k.value, "value", None) in
                        ("module", "package") for k in deco.keywords):
                    shared.add(node.name)
    return frozenset(
        node.name for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
        and shared & {a.arg for a in node.args.args})


def work_unit(nodeid: str, root: Path = ROOT) -> str:
    """What must run on one worker: the page or lab; the module's tests that share a
    module-scoped fixture; otherwise the test itself."""
    path, _, rest = nodeid.partition("::")
    if "@" in nodeid:  # an xdist_group, where xdist names it
        return nodeid.rsplit("@", 1)[-1]
    if path.endswith(PAGE_SUFFIXES):
        return path
    function = rest.split("[", 1)[0].split("::")[-1]
    if path.endswith(".py") and function in _sharing_tests(root, path):
        return f"{path}::<module fixtures>"
    return nodeid


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


TIMES = ROOT / "build" / "test-seconds.json"  # {work unit: seconds}, the last run's


def recorded_seconds() -> dict[str, float]:
    """Seconds each work unit took: the last run's (build/test-seconds.json), else a
    page's blocks and figures by its record (build/outputs/cpu)."""
    found: dict[str, float] = {}
    outputs = ROOT / "build" / "outputs" / "cpu"
    for record in outputs.rglob("*.json"):
        try:
            blocks = json.loads(record.read_text("utf8"))["blocks"].values()
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        rel = record.relative_to(outputs).as_posix()[: -len(".json")]
        found[rel] = sum(b.get("seconds", 0) + b.get("render_seconds", 0)
                         for b in blocks)
    try:
        found.update(json.loads(TIMES.read_text("utf8")))
    except (OSError, ValueError):
        pass
    return found


def first_guess(unit: str, root: Path = ROOT) -> float:
    """Seconds for a unit no run has timed yet (a fresh clone has no build/): a lab
    starts a kernel, a page costs about its size, tests sharing a module fixture build
    it; enough to hand out the long units first."""
    path = unit.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return 10.0
    if path.endswith(PAGE_SUFFIXES):
        try:
            return (root / path).stat().st_size / 5_000  # a 20 KB page: 4 s
        except OSError:
            return 0.5
    return 5.0 if unit.endswith("<module fixtures>") else 0.5


class _Timer:
    """Adds up each work unit's time (setup, call, teardown) as reports arrive; at the
    end of a whole run it is written to build/test-seconds.json."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report):
        unit = work_unit(report.nodeid)
        self.seconds[unit] = self.seconds.get(unit, 0.0) + report.duration

    def pytest_sessionfinish(self, session):
        if not self.seconds or session.config.getoption("dist", "no") == "no":
            return
        merged = {}
        try:
            merged = json.loads(TIMES.read_text("utf8"))
        except (OSError, ValueError):
            pass
        # a file this run ran keeps only this run's units (a renamed or removed test
        # must not count for its file any more); other files keep their last times
        ran = {unit.split("::", 1)[0] for unit in self.seconds}
        merged = {k: v for k, v in merged.items() if k.split("::", 1)[0] not in ran}
        merged.update({k: round(v, 3) for k, v in self.seconds.items()})
        TIMES.parent.mkdir(parents=True, exist_ok=True)
        TIMES.write_text(json.dumps(merged, indent=0, sort_keys=True))


def register_timer(config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        config.pluginmanager.register(_Timer(), "dlnotes-test-seconds")


def make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    seconds = recorded_seconds()

    class PagesTogether(LoadScopeScheduling):
        """loadscope with our work units, the longest first (by the last run)."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid, config.rootpath)

        def schedule(self) -> None:
            assert self.collection_is_completed
            if self.collection is not None:
                for node in self.nodes:
                    self._reschedule(node)
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = list(next(iter(self.registered_collections.values())))
            if not self.collection:
                return
            units: dict[str, dict[str, bool]] = {}
            for nodeid in self.collection:
                units.setdefault(self._split_scope(nodeid), {})[nodeid] = False
            for unit in sorted(units, key=lambda u: -seconds.get(u, first_guess(u))):
                self.workqueue[unit] = units[unit]
            for _ in range(len(self.nodes) - len(self.workqueue)):
                unused, _ = self.assigned_work.popitem()
                unused.shutdown()
            for node in self.nodes:
                self._assign_work_unit(node)
            for node in self.nodes:
                self._reschedule(node)
            if not self.workqueue:
                for node in self.nodes:
                    node.shutdown()

    return PagesTogether(config, log)
