"""The full tier's runner (tests/full_runs.py) on a package of tiny full tiers."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tests import full_runs

SPLIT = textwrap.dedent('''
    import json, os, time
    from pathlib import Path

    OUT = Path(os.environ["FAKE_OUT"])

    def full_tier_runs(n=3):
        return {f"run {i}": {"i": i} for i in range(n)}

    def full_tier_run(name, i):
        import torch
        marker = OUT / f"ran-{i}"
        marker.write_text(str(torch.get_num_threads()))
        if os.environ.get("FAKE_FAIL") == str(i):
            raise SystemExit(1)
        return {"square": i * i, "threads": torch.get_num_threads()}

    def full_tier_merge(runs, start):
        (OUT / "merged.json").write_text(json.dumps(runs))
        return runs

    def full_tier():
        return full_tier_merge({n: full_tier_run(n, **kw)
                                for n, kw in full_tier_runs().items()}, time.time())
''')

WHOLE = textwrap.dedent('''
    import os
    from pathlib import Path

    def full_tier():
        (Path(os.environ["FAKE_OUT"]) / "whole.txt").write_text("done")

    if __name__ == "__main__":
        full_tier()
''')


@pytest.fixture
def fake(tmp_path, monkeypatch):
    package = tmp_path / "pkg" / "fakesnips"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "split.py").write_text(SPLIT)
    (package / "whole.py").write_text(WHOLE)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkg"))
    monkeypatch.setenv("FAKE_OUT", str(out))
    monkeypatch.setenv("DLNOTES_FULL_PACKAGE", "fakesnips")
    monkeypatch.setattr(full_runs, "PACKAGE", "fakesnips")
    monkeypatch.setattr(full_runs, "STATE", tmp_path / "state")
    return out


def test_runs_in_parallel_one_thread_each_then_merge(fake):
    said = []
    code = full_runs.run_all(sys.executable, ["split", "whole"], 2, say=said.append)
    assert code == 0, said
    merged = json.loads((fake / "merged.json").read_text())
    assert list(merged) == ["run 0", "run 1", "run 2"]  # the plan's order
    assert [r["square"] for r in merged.values()] == [0, 1, 4]
    assert {r["threads"] for r in merged.values()} == {1}
    assert (fake / "whole.txt").read_text() == "done"  # only full_tier(): one run
    assert any("ETA" in line for line in said)


def test_an_interrupted_tier_resumes_at_the_next_unfinished_run(fake, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    said = []
    assert full_runs.run_all(sys.executable, ["split"], 1, say=said.append) == 1
    assert any("FAILED split/run 1" in line for line in said)
    assert not (fake / "merged.json").exists()
    for marker in fake.glob("ran-*"):
        marker.unlink()
    monkeypatch.delenv("FAKE_FAIL")
    assert full_runs.run_all(sys.executable, ["split"], 1, say=said.append) == 0
    assert sorted(p.name for p in fake.glob("ran-*")) == ["ran-1"]  # only what failed
    assert list(json.loads((fake / "merged.json").read_text())) == [
        "run 0", "run 1", "run 2"]
