"""Tests for snippets.data.

The real data sets are read from the shared folder (never downloaded); the
download logic runs against a small HTTP server on 127.0.0.1. Any attempt to
open another URL fails the test.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import pathlib
import threading
import urllib.request
from collections import Counter

import pytest
import torch

from snippets import data

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _shared_dir() -> pathlib.Path | None:
    if env := os.environ.get("DLNOTES_DATA_DIR"):
        return pathlib.Path(env)
    p = ROOT.parent / "shared" / "data"
    return p if p.is_dir() else None


SHARED = _shared_dir()  # read before any test changes the environment


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty cache in tmp, no override dir, fresh per-process caches, and
    every URL that is not on 127.0.0.1 refused and reported."""
    monkeypatch.setenv("DLNOTES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLNOTES_DATA_DIR", raising=False)
    monkeypatch.delenv("DLNOTES_OFFLINE", raising=False)
    monkeypatch.setattr(data, "TIMEOUT", 5)
    monkeypatch.setattr(data, "_VERIFIED", set())
    data._names.cache_clear()
    data._mnist.cache_clear()
    outside = []
    real_urlopen = urllib.request.urlopen

    def guarded(req, *args, **kwargs):
        url = getattr(req, "full_url", req)
        if not url.startswith("http://127.0.0.1:"):
            outside.append(url)
            raise OSError(f"test refused network access to {url}")
        return real_urlopen(req, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    yield
    data._names.cache_clear()
    data._mnist.cache_clear()
    assert outside == [], f"tests must not touch the network: {outside}"


@pytest.fixture
def shared(monkeypatch):
    if SHARED is None:
        pytest.skip("no shared data folder: set DLNOTES_DATA_DIR to a folder "
                    "holding names.txt and mnist/ (see ../shared/data)")
    if not SHARED.is_dir():  # set but wrong: say so rather than skip quietly
        pytest.fail(f"DLNOTES_DATA_DIR={SHARED} is not a folder")
    monkeypatch.setenv("DLNOTES_DATA_DIR", str(SHARED))
    monkeypatch.setenv("DLNOTES_OFFLINE", "1")
    return SHARED


class Server:
    """Serves files from `root`; `drop_after[path] = n` sends only n bytes
    of that file while announcing its full length, then hangs up."""

    def __init__(self, root: pathlib.Path):
        self.root, self.drop_after, self.log = root, {}, []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                srv.log.append(self.path)
                f = srv.root / self.path.lstrip("/")
                if not f.is_file():
                    self.send_error(404)
                    return
                body = f.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:srv.drop_after.get(self.path)])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def put(self, name: str, content: bytes) -> None:
        f = self.root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content)


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "www")
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)
    assert not srv.thread.is_alive()


CONTENT = bytes(range(256)) * 40  # 10,240 bytes of fake data


def register(monkeypatch, name, urls, content=CONTENT, algo="sha256",
             subdir=""):
    """Add `name` to the registry with the true size and digest of content."""
    e = data.Entry(len(content), algo, hashlib.new(algo, content).hexdigest(),
                   tuple(urls), subdir)
    monkeypatch.setitem(data.REGISTRY, name, e)
    return e


def cache_files() -> list[str]:
    c = data.cache_dir()
    return sorted(p.name for p in c.iterdir()) if c.exists() else []


# ---- the real data, from the shared folder ----

def test_names_match_readme(shared):
    words = data.names()
    assert len(words) == 32_033
    assert len(set(words)) == 29_494
    assert min(map(len, words)) == 2 and max(map(len, words)) == 15
    assert set("".join(words)) == set("abcdefghijklmnopqrstuvwxyz")
    words.clear()  # the caller's copy only
    assert len(data.names()) == 32_033


def test_mnist_test_split_matches_readme(shared):
    x, y = data.mnist("test")
    assert x.shape == (10_000, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (10_000,) and y.dtype == torch.int64
    assert int(x.max()) == 255 and int(x.min()) == 0
    counts = dict(Counter(y.tolist()))
    assert counts == {0: 980, 1: 1135, 2: 1032, 3: 1010, 4: 982,
                      5: 892, 6: 958, 7: 1028, 8: 974, 9: 1009}


def test_mnist_returns_copies_callers_cannot_share(shared):
    x, y = data.mnist()
    first_x, first_y = x[0].clone(), y[0].item()
    x.zero_()
    y.fill_(-1)
    x2, y2 = data.mnist()
    assert torch.equal(x2[0], first_x) and y2[0].item() == first_y
    assert x2.data_ptr() != x.data_ptr()


def test_available_with_shared_data(shared):
    assert data.available("test") and data.available("names")
    has_train = any((shared / d / "train-images-idx3-ubyte.gz").is_file()
                    for d in ("", "mnist"))
    assert data.available("train") == has_train


def test_unknown_split_or_file_is_an_error():
    with pytest.raises(ValueError, match="split"):
        data.available("valid")
    with pytest.raises(ValueError, match="split"):
        data.mnist("names")
    with pytest.raises(ValueError, match="unknown data file"):
        data.path("nope.txt")


# ---- lookup in the override folder and the cache ----

def test_override_dir_direct_or_in_mnist_subfolder(tmp_path, monkeypatch):
    register(monkeypatch, "a.bin", ["http://127.0.0.1:9/a.bin"],
             subdir="mnist")
    override = tmp_path / "override"
    (override / "mnist").mkdir(parents=True)
    (override / "mnist" / "a.bin").write_bytes(CONTENT)
    monkeypatch.setenv("DLNOTES_DATA_DIR", str(override))
    monkeypatch.setenv("DLNOTES_OFFLINE", "1")
    assert data.path("a.bin") == override / "mnist" / "a.bin"
    (override / "a.bin").write_bytes(CONTENT)
    assert data.path("a.bin") == override / "a.bin"


def test_available_never_downloads(server, monkeypatch):
    server.put("a.bin", CONTENT)
    register(monkeypatch, "a.bin", [server.url("a.bin")])
    monkeypatch.setitem(data.SPLITS, "fake", ("a.bin",))
    assert data.available("fake") is False
    assert server.log == [] and cache_files() == []
    data.path("a.bin")
    assert data.available("fake") is True


def test_verification_is_remembered_until_the_file_changes(tmp_path,
                                                            monkeypatch):
    register(monkeypatch, "a.bin", ["http://127.0.0.1:9/a.bin"])
    f = tmp_path / "a.bin"
    f.write_bytes(CONTENT)
    monkeypatch.setenv("DLNOTES_DATA_DIR", str(tmp_path))
    calls = []
    real_digest = data._digest
    monkeypatch.setattr(data, "_digest",
                        lambda p, algo: calls.append(p) or real_digest(p, algo))
    for _ in range(3):
        assert data.path("a.bin") == f
    assert len(calls) == 1
    f.write_bytes(CONTENT[::-1])  # same size, other bytes
    os.utime(f, ns=(1, 1))  # a different mtime even on coarse clocks
    with pytest.raises(data.DataCorrupt):
        data.path("a.bin")
    assert len(calls) == 2


def test_corrupt_override_file_raises_and_is_kept(server, tmp_path,
                                                  monkeypatch):
    server.put("a.bin", CONTENT)
    e = register(monkeypatch, "a.bin", [server.url("a.bin")])
    override = tmp_path / "override"
    override.mkdir()
    bad = b"x" * len(CONTENT)
    (override / "a.bin").write_bytes(bad)
    monkeypatch.setenv("DLNOTES_DATA_DIR", str(override))
    with pytest.raises(data.DataCorrupt) as err:
        data.path("a.bin")
    msg = str(err.value)
    assert str(override / "a.bin") in msg
    assert e.digest in msg and hashlib.sha256(bad).hexdigest() in msg
    assert (override / "a.bin").read_bytes() == bad  # the user's file stays
    assert server.log == [] and cache_files() == []  # and is not bypassed
    monkeypatch.setitem(data.SPLITS, "fake", ("a.bin",))
    with pytest.raises(data.DataCorrupt):  # loud, not a quiet False
        data.available("fake")


# ---- downloads from the local server ----

@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_good_download_lands_in_cache(server, monkeypatch, algo):
    server.put("m/a.bin", CONTENT)
    register(monkeypatch, "a.bin", [server.url("m/a.bin")], algo=algo)
    p = data.path("a.bin")
    assert p == data.cache_dir() / "a.bin" and p.read_bytes() == CONTENT
    assert cache_files() == ["a.bin"]  # no temporary file left behind
    assert server.log == ["/m/a.bin"]
    assert data.path("a.bin") == p and server.log == ["/m/a.bin"]
    monkeypatch.setenv("DLNOTES_OFFLINE", "1")
    assert data.path("a.bin") == p


def test_corrupt_download_is_rejected_and_leaves_nothing(server, monkeypatch):
    server.put("a.bin", b"x" * len(CONTENT))
    e = register(monkeypatch, "a.bin", [server.url("a.bin")])
    with pytest.raises(data.DataUnavailable) as err:
        data.path("a.bin")
    assert e.digest in str(err.value) and server.url("a.bin") in str(err.value)
    assert cache_files() == []


@pytest.mark.parametrize("how", ["short file", "connection dropped"])
def test_truncated_download_is_rejected_and_leaves_nothing(server,
                                                           monkeypatch, how):
    if how == "short file":
        server.put("a.bin", CONTENT[:5000])
    else:
        server.put("a.bin", CONTENT)
        server.drop_after["/a.bin"] = 5000
    register(monkeypatch, "a.bin", [server.url("a.bin")])
    with pytest.raises(data.DataUnavailable, match="5000 bytes"):
        data.path("a.bin")
    assert cache_files() == []
    assert server.log == ["/a.bin"]


def test_oversized_download_is_cut_off(server, monkeypatch):
    server.put("a.bin", CONTENT + b"extra")
    register(monkeypatch, "a.bin", [server.url("a.bin")])
    with pytest.raises(data.DataUnavailable, match="more than the expected"):
        data.path("a.bin")
    assert cache_files() == []


def test_second_mirror_used_when_first_is_404(server, monkeypatch):
    server.put("two/a.bin", CONTENT)
    register(monkeypatch, "a.bin",
             [server.url("one/a.bin"), server.url("two/a.bin")])
    assert data.path("a.bin").read_bytes() == CONTENT
    assert server.log == ["/one/a.bin", "/two/a.bin"]
    assert cache_files() == ["a.bin"]


def test_all_mirrors_failing_reports_each(server, monkeypatch):
    urls = [server.url("one/a.bin"), server.url("two/a.bin")]
    register(monkeypatch, "a.bin", urls)
    with pytest.raises(data.DataUnavailable) as err:
        data.path("a.bin")
    msg = str(err.value)
    assert all(u in msg for u in urls) and "404" in msg
    assert "DLNOTES_DATA_DIR" in msg and cache_files() == []


def test_offline_with_empty_cache_says_what_to_do(server, monkeypatch):
    server.put("a.bin", CONTENT)
    register(monkeypatch, "a.bin", [server.url("a.bin")])
    monkeypatch.setenv("DLNOTES_OFFLINE", "1")
    with pytest.raises(data.DataUnavailable) as err:
        data.path("a.bin")
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert "a.bin" in msg and "DLNOTES_DATA_DIR" in msg
    assert "python -m snippets.data fetch" in msg
    assert server.url("a.bin") in msg
    assert server.log == []


def test_corrupt_cached_file_is_replaced(server, monkeypatch):
    server.put("a.bin", CONTENT)
    register(monkeypatch, "a.bin", [server.url("a.bin")])
    cached = data.cache_dir() / "a.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"junk")
    assert data.path("a.bin") == cached and cached.read_bytes() == CONTENT
    assert server.log == ["/a.bin"] and cache_files() == ["a.bin"]


def test_corrupt_cached_file_offline_is_dropped_not_used(monkeypatch):
    register(monkeypatch, "a.bin", ["http://127.0.0.1:9/a.bin"])
    cached = data.cache_dir() / "a.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"junk")
    monkeypatch.setenv("DLNOTES_OFFLINE", "1")
    with pytest.raises(data.DataUnavailable):
        data.path("a.bin")
    assert cache_files() == []


# ---- parsing and the command line ----

def _gz(tmp_path, name, raw):
    p = tmp_path / name
    p.write_bytes(gzip.compress(raw))
    return p


def test_idx_parser_rejects_bad_headers(tmp_path):
    good = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    assert data._read_idx(_gz(tmp_path, "ok.gz", good), 1).tolist() == [1, 2, 3]
    magic = _gz(tmp_path, "magic.gz", bytes([0, 0, 8, 3]) + good[4:])
    with pytest.raises(data.DataCorrupt, match="magic.gz.*bad IDX header"):
        data._read_idx(magic, 1)
    short = _gz(tmp_path, "short.gz", good[:-1])
    with pytest.raises(data.DataCorrupt, match="short.gz.*shape"):
        data._read_idx(short, 1)
    plain = tmp_path / "plain.gz"
    plain.write_bytes(good)
    with pytest.raises(data.DataCorrupt, match="plain.gz.*gzip"):
        data._read_idx(plain, 1)


def test_cli_where_and_fetch(server, monkeypatch, capsys):
    server.put("a.bin", CONTENT)
    e = register(monkeypatch, "a.bin", [server.url("a.bin")])
    monkeypatch.setattr(data, "REGISTRY", {"a.bin": e})
    assert data.main(["where"]) == 0
    assert "missing" in capsys.readouterr().out and server.log == []
    assert data.main(["fetch", "all"]) == 0
    out = capsys.readouterr().out
    assert str(data.cache_dir() / "a.bin") in out
    assert data.main(["where"]) == 0
    assert str(data.cache_dir() / "a.bin") in capsys.readouterr().out
    monkeypatch.setenv("DLNOTES_OFFLINE", "1")
    (data.cache_dir() / "a.bin").unlink()
    assert data.main(["fetch"]) == 1
    assert "FAILED" in capsys.readouterr().out
