"""Output drift: how the recorded outputs of two runs compare, block by block.

Two runs are two folders of records (records.py), or two device kinds in one folder:
the pinned torch against another torch version (`tests/dev.py drift`), or the CPU run
against the CUDA run (the GPU tab that render.py puts under a block). For each
running block the printed output is

- identical: the same text;
- within tolerance: the same text once the numbers in it are taken out, and each pair
  of numbers close (|a - b| <= max(abs, rel * max(|a|, |b|)), as math.isclose);
  spaces and tabs are ignored, since torch pads columns to the widest number;
- changed: anything else, shown as a unified diff;
- new warning: the block now fails on a warning (the engine makes warnings errors), or
  its output shows a warning (`Category: message`) that the other run did not;
- failed: the block has no output in the new run and the run's junit XML says it
  failed (its error is kept);
- not run: no output and no failure (skipped after an earlier block failed, or the page
  was not selected);
- no baseline: the first run has no current output for the block.

Figures are compared the same way (their SVG text) and reported beside the status.
Labs (docs/labs/*.ipynb) are compared cell by cell through their executed copies.

Some outputs are measurements (timings, throughput) that differ between two runs of
the same torch. Given a second run of the first torch (`--again`: the pages with a
changed block, run once more), a changed block whose output also differs between the
two runs of the first torch is marked `varies`: a measurement, not drift, and not
listed as changed for the site.

    python -m tests.engine.drift compare --old build/outputs --new OTHER_OUTPUTS \\
        [--old-kind cpu] [--new-kind cpu] [--junit JUNIT.xml] [--rel 1e-4] [--abs 1e-6] \\
        [--again OUTPUTS_OF_A_SECOND_RUN] --json REPORT.json [--markdown REPORT.md] \
        [--publish docs/results/drift.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import difflib
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from .files import atomic_write

DEFAULT_REL = 1e-4
DEFAULT_ABS = 1e-6

IDENTICAL = "identical"
WITHIN = "within tolerance"
CHANGED = "changed"
WARNING = "new warning"
FAILED = "failed"
NOT_RUN = "not run"
NO_BASELINE = "no baseline"
STATUSES = (IDENTICAL, WITHIN, CHANGED, WARNING, FAILED, NOT_RUN, NO_BASELINE)
# What a reader of the page should look at: its outputs are not what they were.
DIFFERENT = (CHANGED, WARNING, FAILED)

REPORT_VERSION = 1
PAGE_NOTEBOOKS_NOTE = (
    "Page notebooks are built from the pages by the site build (the same blocks, "
    "snippet includes expanded, no stored outputs), so they follow the pages: a "
    "page's result here holds for its notebook.")

# A number as Python, numpy and torch print them: 3, -0.25, 1.5e-07, 2., .5, inf, nan.
_NUMBER = re.compile(
    r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|(?<![\w.])[-+]?(?:inf|nan)(?!\w)")
_SPACES = re.compile(r"[ \t]+")
# `Category: message` anywhere in a line: the engine writes a declared warning as
# `FutureWarning: ...`; a lab kernel prints `path:line: UserWarning: ...`.
_WARNING = re.compile(r"\b((?:[A-Za-z_]\w*\.)*[A-Z]\w*Warning): (.*)$", re.M)
# torch's own log lines (glog style), e.g. `W1202 04:06:46.561000 17984 torch/x.py:183]
# [0/0] No CUDA runtime is found`: a warning (W) or error (E) that is not a Python one.
_LOG = re.compile(r"^([WE])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+\] "
                  r"(?:\[[^\]\n]*\] )?(.*)$", re.M)


# ------------------------------------------------------------------ text


@dataclasses.dataclass
class Comparison:
    status: str
    max_rel: float | None = None  # largest relative difference of paired numbers
    diff: str = ""  # unified diff, when changed or a new warning
    warnings: tuple[str, ...] = ()  # new `Category: message` lines

    def as_dict(self) -> dict:
        out = {"status": self.status}
        if self.max_rel and math.isfinite(self.max_rel):
            out["max_rel"] = float(f"{self.max_rel:.3g}")
        if self.diff:
            out["diff"] = self.diff
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def split_numbers(text: str) -> tuple[list[str], list[float]]:
    """The text around the numbers (without spaces and tabs) and the numbers, in order."""
    parts, numbers, at = [], [], 0
    for m in _NUMBER.finditer(text):
        parts.append(_SPACES.sub("", text[at:m.start()]))
        numbers.append(float(m[0]))
        at = m.end()
    parts.append(_SPACES.sub("", text[at:]))
    return parts, numbers


def _close(a: float, b: float, rel: float, abs_: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def _relative(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def warning_lines(text: str) -> list[str]:
    """`Category: message` of every warning a text shows (paths and line numbers of
    the code that warned are left out: they move between library versions), and of
    torch's log warnings and errors (`torch log warning: message`; their time and
    process id left out too)."""
    found = [f"{m[1]}: {m[2].strip()}" for m in _WARNING.finditer(text)]
    kinds = {"W": "torch log warning", "E": "torch log error"}
    return found + [f"{kinds[m[1]]}: {m[2].strip()}" for m in _LOG.finditer(text)]


def unified_diff(old: str, new: str, names=("before", "after")) -> str:
    lines = difflib.unified_diff(old.rstrip("\n").split("\n"),
                                 new.rstrip("\n").split("\n"),
                                 fromfile=names[0], tofile=names[1], lineterm="", n=2)
    return "\n".join(lines)


def compare_text(old: str, new: str, *, rel: float = DEFAULT_REL,
                 abs_: float = DEFAULT_ABS, names=("before", "after")) -> Comparison:
    """Compare two printed outputs: identical, within tolerance, changed, new warning."""
    seen = set(warning_lines(old))
    new_warnings = tuple(w for w in dict.fromkeys(warning_lines(new)) if w not in seen)
    if old == new:
        return Comparison(IDENTICAL)
    old_parts, old_numbers = split_numbers(old)
    new_parts, new_numbers = split_numbers(new)
    same_shape = old_parts == new_parts and len(old_numbers) == len(new_numbers)
    max_rel = None
    if len(old_numbers) == len(new_numbers):
        # the largest relative difference among pairs the absolute tolerance does not
        # cover (1.6e-07 against 2.6e-07 is within it, however large its ratio)
        max_rel = max((_relative(a, b) for a, b in zip(old_numbers, new_numbers)
                       if not abs(a - b) <= abs_), default=0.0)
    if same_shape and not new_warnings and all(
            _close(a, b, rel, abs_) for a, b in zip(old_numbers, new_numbers)):
        return Comparison(WITHIN, max_rel)
    status = WARNING if new_warnings else CHANGED
    return Comparison(status, max_rel if same_shape else None,
                      unified_diff(old, new, names), new_warnings)


def compare_figures(old: list[str], new: list[str], *, rel: float = DEFAULT_REL,
                    abs_: float = DEFAULT_ABS) -> str | None:
    """identical / within tolerance / changed for a block's figures (SVG texts); None
    when neither run drew any."""
    if not old and not new:
        return None
    if len(old) != len(new):
        return CHANGED
    statuses = {compare_text(a, b, rel=rel, abs_=abs_).status for a, b in zip(old, new)}
    if statuses <= {IDENTICAL}:
        return IDENTICAL
    return WITHIN if statuses <= {IDENTICAL, WITHIN} else CHANGED


# ------------------------------------------------------------------ junit


def read_junit(path: Path | str | None) -> dict[tuple[str, str], tuple[str, str]]:
    """(classname, name) -> (outcome, text) for each test case of a junit XML file;
    outcome is "passed", "failure", "error" or "skipped"."""
    if not path or not Path(path).exists():
        return {}
    cases = {}
    for case in ET.parse(path).iter("testcase"):
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                body = child.text or ""
                message = child.get("message") or ""
                text = body if message and message in body else \
                    "\n".join(filter(None, [message, body]))
                break
        cases[(case.get("classname") or "", case.get("name") or "")] = (outcome, text)
    return cases


def junit_result(junit: dict, rel: str, name: str) -> tuple[str | None, str]:
    """The junit outcome of the item `rel::name` (a page's block, a lab). pytest names
    it by its path from the rootdir with dots for slashes (`docs.x.md`); a page outside
    the repository (the engine's tests) is found by that name's tail."""
    dotted = rel.strip("/").replace("/", ".")
    for (classname, case), result in junit.items():
        if case == name and classname and (
                dotted == classname or dotted.endswith("." + classname)):
            return result
    return None, ""


def raised_warning(error: str) -> str | None:
    """`Category: message` if a failure's exception is a warning turned error."""
    text = error.split("--- printed before the error ---", 1)[0]
    text = text.split("Traceback (most recent call last):")[-1]
    found = [line for line in text.split("\n")
             if re.match(r"\s*(?:E\s+)?(?:[A-Za-z_]\w*\.)*[A-Z]\w*Warning: ", line)]
    if not found:
        return None
    return re.sub(r"^\s*(?:E\s+)?", "", found[-1]).strip()


def _short(error: str, limit: int = 4000) -> str:
    error = error.strip()
    return error if len(error) <= limit else "...\n" + error[-limit:]


def _missing(rel: str, name: str, junit: dict, had_old: bool) -> dict:
    """A block or lab with no output in the new run: why, from the junit XML."""
    outcome, text = junit_result(junit, rel, name)
    if outcome in ("failure", "error"):
        warned = raised_warning(text)
        entry = {"status": WARNING, "warnings": [warned]} if warned else \
            {"status": FAILED}
        entry["error"] = _short(text)
        if not had_old:  # the first run has no output for it either
            entry["no_baseline"] = True
        return entry
    if outcome == "skipped":
        return {"status": NOT_RUN, "reason": text.strip().split("\n")[-1]}
    dotted = rel.strip("/").replace("/", ".")
    collect = [t for (cls, nm), (o, t) in junit.items()
               if o in ("failure", "error") and not cls and (
                   nm == dotted or dotted.endswith("." + nm))]
    if collect:  # the page could not be collected at all
        return {"status": FAILED, "error": _short(collect[0])}
    if outcome == "passed":
        return {"status": NOT_RUN, "reason": "it skipped itself or recorded nothing"}
    return {"status": NOT_RUN if had_old else NO_BASELINE,
            "reason": "no result in the new run"}


# ------------------------------------------------------------------ records


def _record(base: Path, kind: str, rel: str) -> dict:
    path = Path(base) / kind / (rel.lstrip("/") + ".json")
    if not path.exists():
        return {"page": rel, "run": {}, "blocks": {}}
    return json.loads(path.read_text("utf8"))


def _stamp(run: dict) -> dict:
    return {k: run[k] for k in ("torch", "device", "date", "commit") if k in run}


def prints_report(page: Path) -> bool:
    """A page whose front matter says `drift_report: true` prints the drift report
    (docs/versions.md): its outputs follow the report, not torch, so it is left out."""
    from . import pages

    front = pages.split_front_matter(Path(page).read_text("utf8"))[0]
    return bool(re.search(r"(?m)^drift_report:\s*true\s*$", front))


def _compare_outputs(before: tuple[str, list[str]], after: tuple[str, list[str]],
                     again: tuple[str, list[str]] | None, rel: float, abs_: float) -> dict:
    """One block's (text, figures) in two runs; `again` is a second run of the first
    torch, when there is one: what differs there too varies run to run."""
    entry = compare_text(before[0], after[0], rel=rel, abs_=abs_).as_dict()
    figures = compare_figures(before[1], after[1], rel=rel, abs_=abs_)
    if figures:
        entry["figures"] = figures
    if again is not None:
        if entry["status"] == CHANGED and compare_text(
                before[0], again[0], rel=rel, abs_=abs_).status not in (IDENTICAL, WITHIN):
            entry["varies"] = True
        if figures == CHANGED and compare_figures(
                before[1], again[1], rel=rel, abs_=abs_) == CHANGED:
            entry["figures_vary"] = True
    return entry


def _block_outputs(entry: dict | None) -> tuple[str, list[str]] | None:
    if entry is None:
        return None
    return entry["output"], [f["svg"] for f in entry.get("figures", [])]


def compare_page(page: Path, old_base: Path, new_base: Path, *, old_kind: str = "cpu",
                 new_kind: str = "cpu", junit: dict | None = None,
                 rel: float = DEFAULT_REL, abs_: float = DEFAULT_ABS,
                 again_base: Path | None = None) -> dict | None:
    """One page's blocks compared between two runs; None for a page without code."""
    from . import pages

    blocks = [b for b in pages.read_page(page) if b.runs]
    if not blocks:
        return None
    rel_path = pages._rel(page)
    old, new = _record(old_base, old_kind, rel_path), _record(new_base, new_kind, rel_path)
    again = _record(again_base, old_kind, rel_path) if again_base else {"blocks": {}}
    out = []
    for index, block in enumerate(blocks, 1):
        before, after = old["blocks"].get(block.digest), new["blocks"].get(block.digest)
        entry = {"line": block.line, "digest": block.digest[:16]}
        if before is not None and after is not None:
            entry.update(_compare_outputs(
                _block_outputs(before), _block_outputs(after),
                _block_outputs(again["blocks"].get(block.digest)), rel, abs_))
        elif after is None:
            name = f"[CodeFence#{index}][line:{block.line}]"
            entry.update(_missing(rel_path, name, junit or {}, before is not None))
            if before is None and entry["status"] == NOT_RUN:
                entry["status"] = NO_BASELINE
        else:
            entry["status"] = NO_BASELINE
        out.append(entry)
    return {"page": rel_path, "from_run": _stamp(old.get("run", {})),
            "to_run": _stamp(new.get("run", {})), "blocks": out,
            "counts": _counts(out)}


def _lab_cells(path: Path) -> tuple[list[tuple[str, list[str]]], dict]:
    """(text, figures) of each code cell of an executed notebook, and its metadata."""
    nb = json.loads(path.read_text("utf8"))
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text, figures = [], []
        for o in cell.get("outputs", []):
            kind = o.get("output_type")
            if kind == "stream":
                text.append("".join(o.get("text", "")))
            elif kind in ("execute_result", "display_data"):
                data = o.get("data", {})
                text.append("".join(data.get("text/plain", "")) + "\n")
                for mime in ("image/svg+xml", "image/png"):
                    if mime in data:
                        figures.append("".join(data[mime]))
            elif kind == "error":
                text.append(f"{o.get('ename')}: {o.get('evalue')}\n")
        cells.append(("".join(text), figures))
    return cells, nb.get("metadata", {}).get("dlnotes", {})


def compare_lab(lab: Path, old_base: Path, new_base: Path, *, old_kind: str = "cpu",
                new_kind: str = "cpu", junit: dict | None = None,
                rel: float = DEFAULT_REL, abs_: float = DEFAULT_ABS,
                again_base: Path | None = None) -> dict:
    """A lab's code cells compared through the executed copies of two runs."""
    from . import pages
    from .labs import source_sha256

    rel_path = pages._rel(lab)
    current = source_sha256(lab)
    old_path = Path(old_base) / old_kind / rel_path.lstrip("/")
    new_path = Path(new_base) / new_kind / rel_path.lstrip("/")
    old_cells, old_meta = _lab_cells(old_path) if old_path.exists() else ([], {})
    new_cells, new_meta = _lab_cells(new_path) if new_path.exists() else ([], {})
    old_ok = old_path.exists() and old_meta.get("source_sha256") == current
    new_ok = new_path.exists() and new_meta.get("source_sha256") == current
    again_path = Path(again_base or "/nonexistent") / old_kind / rel_path.lstrip("/")
    again_cells, again_meta = _lab_cells(again_path) if again_path.exists() else ([], {})
    if again_meta.get("source_sha256") != current:
        again_cells = []
    out = []
    if not new_ok:
        entry = {"cell": None, **_missing(rel_path, "lab", junit or {}, old_ok)}
        cell = re.search(r": cell (\d+) of \d+ failed", entry.get("error", ""))
        entry["cell"] = int(cell[1]) if cell else None
        out.append(entry)
    elif not old_ok:
        out.append({"cell": None, "status": NO_BASELINE})
    else:
        for n, (before, after) in enumerate(zip(old_cells, new_cells), 1):
            again = again_cells[n - 1] if len(again_cells) >= n else None
            out.append({"cell": n, **_compare_outputs(before, after, again, rel, abs_)})
    return {"page": rel_path, "lab": True, "from_run": _stamp(old_meta),
            "to_run": _stamp(new_meta), "blocks": out, "counts": _counts(out)}


def _counts(entries: list[dict]) -> dict:
    counts = Counter(e["status"] for e in entries)
    return {s: counts[s] for s in STATUSES if counts[s]}


def _label(runs: list[dict], kind: str) -> dict:
    torches = Counter(r["torch"] for r in runs if r.get("torch"))
    devices = Counter(r["device"] for r in runs if r.get("device"))
    torch = torches.most_common(1)[0][0] if torches else "unknown"
    device = devices.most_common(1)[0][0] if devices else kind
    return {"torch": torch, "device": device, "kind": kind,
            "label": f"torch {torch} ({kind})"}


def compare_runs(old_base: Path, new_base: Path, *, old_kind: str = "cpu",
                 new_kind: str = "cpu", junit_path: Path | None = None,
                 rel: float = DEFAULT_REL, abs_: float = DEFAULT_ABS,
                 page_paths: list[Path] | None = None, labs: list[Path] | None = None,
                 meta: dict | None = None, again_base: Path | None = None,
                 again_junit: Path | None = None) -> dict:
    """The report: every page's blocks and every lab's cells, two runs compared, and
    the engine's tests that failed in run two. `again_base` and `again_junit` are a
    second run of run one's torch (of what changed or failed): blocks that differ
    there too vary run to run, tests that fail there too fail with either torch."""
    from . import pages
    from .labs import labs as all_labs

    junit = read_junit(junit_path)
    docs = pages.ROOT / "docs"
    if page_paths is None:
        page_paths = [p for p in sorted(docs.rglob("*.md")) if not prints_report(p)]
    if labs is None:
        labs = all_labs()
    kw = dict(old_kind=old_kind, new_kind=new_kind, junit=junit, rel=rel, abs_=abs_,
              again_base=again_base)
    entries = [e for p in page_paths if (e := compare_page(p, old_base, new_base, **kw))]
    entries += [compare_lab(lab, old_base, new_base, **kw) for lab in labs]
    totals = Counter()
    for e in entries:
        totals.update(e["counts"])
    again = read_junit(again_junit)
    tests = []
    for (cls, name), (outcome, text) in sorted(junit.items()):
        if outcome not in ("failure", "error") or not cls.startswith("tests"):
            continue
        test = {"test": f"{cls}::{name}", "file": _test_file(cls), "outcome": outcome,
                "error": _short(text, 2000)}
        if (cls, name) in again:
            test["first_torch"] = "passed" if again[(cls, name)][0] == "passed" \
                else "failed too"
        if test.get("first_torch") == "failed too":  # not this torch's: its gist
            test["error"] = _short(text).split("\n")[0][:300]
        tests.append(test)
    report = {
        "version": REPORT_VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "from": _label([e["from_run"] for e in entries], old_kind),
        "to": _label([e["to_run"] for e in entries], new_kind),
        "tolerance": {"rel": rel, "abs": abs_},
        "totals": {s: totals[s] for s in STATUSES},
        # changed blocks whose output differs between two runs of the first torch too
        "varies": sum(b.get("varies", False) for e in entries for b in e["blocks"]),
        "pages": entries,
        "engine_tests": tests,
        "page_notebooks": PAGE_NOTEBOOKS_NOTE,
    }
    if meta:
        report["environment"] = meta
    return report


# ------------------------------------------------------------------ reading reports


def _test_file(classname: str) -> str:
    """The file of a junit test case (`tests.test_x.TestY` -> tests/test_x.py)."""
    from . import pages

    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        rel = "/".join(parts[:end]) + ".py"
        if (pages.ROOT / rel).exists():
            return rel
    return "/".join(parts) + ".py"


def again_targets(report: dict) -> list[str]:
    """What to run once more with the first torch: the pages and labs with a changed
    block, and the test files with a failed engine test."""
    found = [p["page"] for p in report["pages"]
             if any(b["status"] == CHANGED or b.get("figures") == CHANGED
                    for b in p["blocks"])]
    return found + sorted({t["file"] for t in report["engine_tests"]})


def new_test_failures(report: dict) -> list[dict]:
    """Engine tests that fail with run two's torch and not (as far as known) with
    run one's."""
    return [t for t in report["engine_tests"] if t.get("first_torch") != "failed too"]


def load_report(path: Path | str) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text("utf8")) if path.exists() else None


def differs(block: dict) -> bool:
    """A block whose output is not what it was: changed (and not a measurement that
    varies run to run), failed, or warns anew."""
    return block["status"] in DIFFERENT and not block.get("varies")


def changed_pages(report: dict | None) -> dict[str, list[int]]:
    """Pages (docs/... paths) whose outputs the report finds different: the lines of
    their blocks (or cells of labs) that changed, failed or warn anew."""
    found = {}
    for entry in (report or {}).get("pages", []):
        lines = [b.get("line", b.get("cell")) for b in entry["blocks"] if differs(b)]
        if lines:
            found[entry["page"]] = lines
    return found


def exit_code(report: dict) -> int:
    """1 when a block failed or warns anew, or an engine test failed that does not
    fail with the first torch too; else 0."""
    totals = report["totals"]
    return 1 if (totals.get(FAILED) or totals.get(WARNING)
                 or new_test_failures(report)) else 0


# ------------------------------------------------------------------ writing reports


def _where(page: dict, block: dict) -> str:
    if page.get("lab"):
        return f"{page['page']} cell {block['cell']}" if block.get("cell") else page["page"]
    return f"{page['page']}:{block['line']}"


def _fence(body: str, lang: str) -> list[str]:
    ticks = "`" * max(3, 1 + max(map(len, re.findall(r"`+", body)), default=0))
    return [f"{ticks}{lang}", *body.rstrip("\n").split("\n"), ticks]


def summary(report: dict) -> str:
    """A few lines for the console: totals, then each block that is not the same."""
    t = report["totals"]
    tol = report["tolerance"]
    varies = report.get("varies", 0)
    lines = [f"drift: {report['from']['label']} -> {report['to']['label']}, "
             f"tolerance rel {tol['rel']:g} abs {tol['abs']:g}",
             "drift: " + ", ".join(f"{t[s]} {s}" for s in STATUSES if t.get(s))
             + (f" ({varies} of the changed vary between two runs of "
                f"{report['from']['label']} too)" if varies else "")]
    for page in report["pages"]:
        for block in page["blocks"]:
            if block["status"] in (IDENTICAL, WITHIN):
                if block.get("figures") == CHANGED:
                    lines.append(f"  {_where(page, block)}: figures changed"
                                 + (" (they vary run to run)"
                                    if block.get("figures_vary") else ""))
                continue
            extra = ""
            if block.get("max_rel") is not None:
                extra = f" (largest relative difference {block['max_rel']:.2g})"
            if block.get("varies"):
                extra += "; varies run to run"
            if block.get("warnings"):
                extra = f": {block['warnings'][0]}"
            if block["status"] == FAILED:
                extra = ": " + block["error"].strip().split("\n")[-1][:160]
            if block.get("no_baseline"):
                extra += " (no output from the first run either)"
            lines.append(f"  {_where(page, block)}: {block['status']}{extra}")
    both = [t for t in report["engine_tests"] if t not in new_test_failures(report)]
    for test in new_test_failures(report):
        lines.append(f"  engine test {test['test']}: {test['outcome']}")
    if both:
        files = Counter(t["file"] for t in both)
        lines.append(f"  engine tests that fail with {report['from']['label']} too: "
                     + ", ".join(f"{n} in {f}" for f, n in sorted(files.items())))
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The report as a readable Markdown document."""
    t, tol = report["totals"], report["tolerance"]
    old, new = report["from"], report["to"]
    out = [f"# Output drift: {old['label']} → {new['label']}", "",
           f"Compared on {report['date']}: {old['label']} on {old['device']} against "
           f"{new['label']} on {new['device']}. Numbers are parsed out of the printed "
           f"text; a pair is within tolerance when it differs by at most "
           f"max({tol['abs']:g}, {tol['rel']:g} × the larger).", "",
           "| outcome | blocks and lab cells |", "| --- | ---: |"]
    out += [f"| {s} | {t.get(s, 0)} |" for s in STATUSES]
    if report.get("varies"):
        out += ["", f"Of the changed, {report['varies']} also differ between two runs of "
                f"{old['label']} (the pages with a changed block were run once more with "
                "it): measurements that vary run to run, not drift."]
    env = report.get("environment")
    if env:
        out += ["", "## The other environment", ""]
        labels = {"install_seconds": ("installing it took", "s"),
                  "downloaded_mb": ("downloaded while installing", "MB"),
                  "local_wheels_mb": ("installed from wheels already on disk", "MB"),
                  "venv_gb": ("its environment on disk", "GB"),
                  "torch_index": ("torch from", ""),
                  "suite_seconds": ("the suite's run took", "s")}
        for key, value in env.items():
            label, unit = labels.get(key, (key.replace("_", " "), ""))
            out.append(f"- {label}: {value}{' ' + unit if unit else ''}")
    out += ["", "## Differences", ""]
    any_difference = False
    for page in report["pages"]:
        shown = [b for b in page["blocks"]
                 if b["status"] not in (IDENTICAL, WITHIN, NO_BASELINE)
                 or b.get("figures") == CHANGED]
        if not shown:
            continue
        any_difference = True
        out += [f"### {page['page']}", ""]
        for b in shown:
            note = f", largest relative difference {b['max_rel']:.2g}" \
                if b.get("max_rel") is not None else ""
            if b.get("varies"):
                note += (f"; it also differs between two runs of {old['label']}: a "
                         "measurement that varies run to run, not drift")
            figures = f", figures {b['figures']}" if b.get("figures") else ""
            if b.get("figures_vary"):
                figures += " (they vary run to run)"
            out += [f"- **{_where(page, b)}**: {b['status']}{note}{figures}"]
            if b.get("warnings"):
                out += ["", *[f"    {w}" for w in b["warnings"]]]
            if b.get("diff"):
                out += ["", *[("    " + s) if s else s for s in _fence(b["diff"], "diff")]]
            if b.get("error"):
                out += ["", *[("    " + s) if s else s for s in _fence(b["error"], "text")]]
            if b.get("reason"):
                out += [f"  ({b['reason']})"]
            if b.get("no_baseline"):
                out += [f"  (the run with {old['label']} has no output for it either)"]
        out.append("")
    if not any_difference:
        out += ["None: every block and lab cell printed the same, or within tolerance.", ""]
    new_failures = new_test_failures(report)
    both = [t for t in report["engine_tests"] if t not in new_failures]
    if report["engine_tests"]:
        out += ["## Engine tests that failed", ""]
        for test in new_failures:
            out += [f"- `{test['test']}` ({test['outcome']})", "",
                    *[("    " + s) if s else s for s in _fence(test["error"], "text")], ""]
        if both:
            out += [f"These fail with {old['label']} too (run once more with it), so "
                    "they are not caused by the newer torch:", ""]
            out += [f"- `{t['test']}`: {t['error'].strip().split(chr(10))[0][:200]}"
                    for t in both]
            out.append("")
    out += ["## Page notebooks", "", report["page_notebooks"], "",
            "## Every page", "",
            f"| page | {old['label']} | {new['label']} | outcome |",
            "| --- | --- | --- | --- |"]
    for page in report["pages"]:
        runs = [f"{p.get('torch', '—')} ({p.get('date', 'not run')})"
                for p in (page["from_run"], page["to_run"])]
        counts = ", ".join(f"{n} {s}" for s, n in page["counts"].items())
        out.append(f"| {page['page']} | {runs[0]} | {runs[1]} | {counts} |")
    return "\n".join(out) + "\n"


def write_report(report: dict, json_path: Path | str, markdown_path: Path | str | None
                 = None, publish: Path | str | None = None) -> None:
    """Write the JSON report (and its Markdown, and the copy the site publishes),
    each atomically."""
    text = json.dumps(report, indent=1, sort_keys=False) + "\n"
    targets = [(json_path, text), (publish, text)]
    if markdown_path:
        targets.append((markdown_path, markdown(report)))
    for path, data in targets:
        if not path:
            continue
        atomic_write(path, data)


# ------------------------------------------------------------------ command line


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.engine.drift",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("again-targets", help="print what to run once more with run "
                                             "one's torch, one a line")
    t.add_argument("report", type=Path)
    c = sub.add_parser("compare", help="compare two runs' records; write the report")
    c.add_argument("--old", required=True, type=Path, help="outputs folder of run one")
    c.add_argument("--new", required=True, type=Path, help="outputs folder of run two")
    c.add_argument("--old-kind", default="cpu", choices=("cpu", "cuda"))
    c.add_argument("--new-kind", default="cpu", choices=("cpu", "cuda"))
    c.add_argument("--junit", type=Path, help="run two's junit XML (errors of failures)")
    c.add_argument("--rel", type=float, default=DEFAULT_REL)
    c.add_argument("--abs", type=float, default=DEFAULT_ABS)
    c.add_argument("--json", required=True, type=Path, help="where to write the report")
    c.add_argument("--markdown", type=Path, help="where to write it as Markdown")
    c.add_argument("--publish", type=Path, help="a copy for the site (docs/results/)")
    c.add_argument("--again", type=Path,
                   help="outputs folder of a second run of run one's torch (of the "
                        "pages that changed): blocks that differ there too vary")
    c.add_argument("--again-junit", type=Path,
                   help="junit XML of that second run (engine tests that fail there "
                        "too fail with either torch)")
    c.add_argument("--meta", help="JSON object: facts about run two's environment")
    c.add_argument("--strict", action="store_true",
                   help="exit 1 when a block failed or warns anew")
    ns = parser.parse_args(argv)
    if ns.command == "again-targets":
        print("\n".join(again_targets(load_report(ns.report))))
        return 0
    report = compare_runs(ns.old, ns.new, old_kind=ns.old_kind, new_kind=ns.new_kind,
                          junit_path=ns.junit, rel=ns.rel, abs_=ns.abs,
                          meta=json.loads(ns.meta) if ns.meta else None,
                          again_base=ns.again, again_junit=ns.again_junit)
    write_report(report, ns.json, ns.markdown, ns.publish)
    print(summary(report), flush=True)
    print(f"drift: report in {ns.json}" + (f" and {ns.markdown}" if ns.markdown else ""))
    return exit_code(report) if ns.strict else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
