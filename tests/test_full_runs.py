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
        # run 0 asks torch (a second's import); the others read what torch reads
        if i == 0:
            import torch
            threads = torch.get_num_threads()
        else:
            threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
        marker = OUT / f"ran-{i}"
        marker.write_text(str(threads))
        if os.environ.get("FAKE_FAIL") == str(i):
            raise SystemExit(1)
        return {"square": i * i, "threads": threads}

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
        (Path(os.environ["FAKE_OUT"]) / "whole.json").write_text('"done"')

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
    monkeypatch.setattr(full_runs, "RESULTS", out)  # where the fake tiers write
    return out


def test_runs_in_parallel_one_thread_each_then_merge(fake, tmp_path, monkeypatch):
    said = []
    code = full_runs.run_all(sys.executable, ["split", "whole"], 2, say=said.append)
    assert code == 0, said
    merged = json.loads((fake / "merged.json").read_text())
    assert list(merged) == ["run 0", "run 1", "run 2"]  # the plan's order
    assert [r["square"] for r in merged.values()] == [0, 1, 4]
    assert {r["threads"] for r in merged.values()} == {1}
    assert (fake / "whole.json").read_text() == '"done"'  # only full_tier(): one run
    assert any("ETA" in line for line in said)
    # the same tier on two runners (`full --shard K/2`), then `full --combine`: the
    # same results files as this one run (one test: each run is a process)
    single = _results(fake)
    assert sorted(single) == ["merged.json", "whole.json"]
    assert _results(_two_shards_combined(tmp_path, monkeypatch)) == single


def _two_shards_combined(tmp_path, monkeypatch):
    """Shards 1/2 and 2/2 of the fake tier run apart (each its own state and results
    folders, as on two runners), then combined on a third; its results folder."""
    from tests import dev

    picked, said = [], []
    for k in (1, 2):
        out = _as(monkeypatch, tmp_path, f"shard{k}")

        def pick(runs, k=k):
            picked.append((runs, dev.full_shard((k, 2), runs)))  # `shards 2`'s split
            return picked[-1][1]

        assert full_runs.run_all(sys.executable, ["split", "whole"], 2, shard=pick,
                                 say=said.append) == 0, said
        assert "merged.json" not in _results(out)  # a shard merges nothing
        assert _results(full_runs.STATE / "written") == _results(out)
    (plan, first), (again, second) = picked
    assert plan == again == ["split/run 0", "split/run 1", "split/run 2",
                             "whole/full_tier"]
    assert not set(first) & set(second) and sorted(first + second) == plan
    # split's runs on both runners: its merge needs both shards
    assert all(any(r.startswith("split/") for r in runs) for runs in (first, second))
    combined = _as(monkeypatch, tmp_path, "combined")
    shards = [tmp_path / "shard1" / "full", tmp_path / "shard2" / "full"]
    assert full_runs.combine(sys.executable, shards, ["split", "whole"],
                             say=said.append) == 0, said
    assert len(json.loads((full_runs.STATE / "results.json").read_text())) == 4
    return combined


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


def _as(monkeypatch, tmp_path, name):
    """Point the runner and the fake tiers at a machine of their own: its state and
    results folders under tmp_path/name."""
    out = tmp_path / name / "results"
    out.mkdir(parents=True)
    monkeypatch.setenv("FAKE_OUT", str(out))
    monkeypatch.setattr(full_runs, "RESULTS", out)
    monkeypatch.setattr(full_runs, "STATE", tmp_path / name / "full")
    return out


def _results(folder):
    return {p.name: p.read_text() for p in folder.glob("*.json")}


def _shard_dir(folder, runs, written=()):
    """A shard's build/full as `combine` reads it: results.json holding `runs`
    ({(module, run, kwargs): result}), and written/NAME for each of `written`."""
    done = {full_runs.key(m, r, kw): {"module": m, "run": r, "kwargs": kw,
                                      "result": result, "seconds": 1.0, "started": 0.0}
            for (m, r, kw), result in runs}
    (folder / "written").mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(done))
    for name in written:
        (folder / "written" / name).write_text('"done"')
    return folder


def _split(*numbers, result=None):
    """The fake split tier's runs `numbers`, each with its result (or `result`)."""
    return [(("split", f"run {i}", {"i": i}), result or {"square": i * i, "threads": 1})
            for i in numbers]


def test_combine_refuses_shards_that_disagree_and_writes_nothing(fake, tmp_path):
    one = _shard_dir(tmp_path / "one", _split(0, 1), ["whole.json"])
    two = _shard_dir(tmp_path / "two", _split(1, result={"square": 9}) + _split(2))
    with pytest.raises(SystemExit, match=rf"split/run 1#\w+ has different results "
                       rf"in {one} and {two}"):
        full_runs.combine(sys.executable, [one, two], ["split", "whole"])
    three = _shard_dir(tmp_path / "three", _split(2), ["whole.json"])
    with pytest.raises(SystemExit, match=f"two shards wrote whole.json: {one} and "
                       f"{three}"):
        full_runs.combine(sys.executable, [one, three], ["split", "whole"])
    assert not full_runs.STATE.exists() and not list(fake.iterdir())


def test_combine_merges_what_is_complete_and_names_the_runs_missing(fake, tmp_path):
    whole = [(("whole", "full_tier", {}), None)]
    one = _shard_dir(tmp_path / "one", _split(0, 1) + whole, ["whole.json"])
    said = []
    assert full_runs.combine(sys.executable, [one], ["split", "whole"],
                             say=said.append) == 1
    assert "dev: no shard finished 1 run(s): split/run 2" in said
    assert (fake / "whole.json").exists() and not (fake / "merged.json").exists()
