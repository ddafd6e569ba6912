"""Data sets for the pages: the makemore names and MNIST, verified and cached.

A file is looked up in $DLNOTES_DATA_DIR, then in the cache directory, then
downloaded from its public URLs (unless DLNOTES_OFFLINE=1); every copy is
checked against its published size and checksum before use.
Command line: `python -m snippets.data fetch [names|mnist|all]`, `... where`.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pathlib
import sys
import tempfile
import urllib.request
from typing import NamedTuple

import numpy as np
import torch


class DataUnavailable(RuntimeError):
    """A data file is neither on this machine nor downloadable now."""


class DataCorrupt(RuntimeError):
    """A data file does not match its published size, checksum or format."""


class Entry(NamedTuple):
    size: int  # bytes
    algo: str  # "sha256", or "md5" where no sha256 is published
    digest: str
    urls: tuple[str, ...]  # tried in order
    subdir: str = ""  # optional folder for it inside $DLNOTES_DATA_DIR


_NAMES = "https://raw.githubusercontent.com/karpathy/makemore/master/"
_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
          "http://yann.lecun.com/exdb/mnist/")  # mirrors, in this order
REGISTRY: dict[str, Entry] = {"names.txt": Entry(
    228_145, "sha256",
    "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
    (_NAMES + "names.txt",))}
for _f, _size, _algo, _digest in [
    ("train-images-idx3-ubyte.gz", 9_912_422, "md5",  # no sha256 published
     "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", 28_881, "sha256",
     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", 1_648_877, "sha256",
     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", 4_542, "sha256",
     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
]:
    REGISTRY[_f] = Entry(_size, _algo, _digest,
                         tuple(m + _f for m in _MNIST), "mnist")

SPLITS = {"names": ("names.txt",),
          "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
TIMEOUT = 30  # seconds a download may stall before it is abandoned
_VERIFIED: set[tuple] = set()  # files checked in this process, by stat key


def cache_dir() -> pathlib.Path:
    """Where downloads go: $DLNOTES_CACHE_DIR, else
    $XDG_CACHE_HOME/dlnotes, else ~/.cache/dlnotes."""
    if d := os.environ.get("DLNOTES_CACHE_DIR"):
        return pathlib.Path(d).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(xdg).expanduser() / "dlnotes"


def _entry(filename: str) -> Entry:
    if filename not in REGISTRY:
        raise ValueError(f"unknown data file {filename!r}; "
                         f"known: {', '.join(REGISTRY)}")
    return REGISTRY[filename]


def _digest(p: pathlib.Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _key(p: pathlib.Path, e: Entry) -> tuple:
    st = p.stat()  # a changed file gets a new key and is checked again
    return (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, e)


def _mismatch(p: pathlib.Path, e: Entry) -> str | None:
    """None when p matches e (remembered per process), else what differs."""
    if (key := _key(p, e)) in _VERIFIED:
        return None
    size, digest = key[2], _digest(p, e.algo)
    if size != e.size or digest != e.digest:
        return (f"expected {e.size} bytes with {e.algo} {e.digest}, "
                f"found {size} bytes with {e.algo} {digest}")
    _VERIFIED.add(key)
    return None


def _local(filename: str) -> pathlib.Path | None:
    """A verified copy in $DLNOTES_DATA_DIR or the cache; never the network."""
    e = _entry(filename)
    if override := os.environ.get("DLNOTES_DATA_DIR"):
        root = pathlib.Path(override).expanduser()
        for p in dict.fromkeys([root / filename, root / e.subdir / filename]):
            if p.is_file():
                if bad := _mismatch(p, e):  # the user's file: report, keep
                    raise DataCorrupt(f"{p} is corrupt ({bad}); it was not "
                                      f"used. Replace it with a copy from "
                                      f"{e.urls[0]} or unset DLNOTES_DATA_DIR.")
                return p
    p = cache_dir() / filename
    if p.is_file():
        if _mismatch(p, e) is None:
            return p
        p.unlink()  # a corrupt cached copy is ours: drop it, fetch again
    return None


def _advice(filename: str, e: Entry) -> str:
    return (f"To fix: connect to the internet and run `python -m snippets.data "
            f"fetch`, or set DLNOTES_DATA_DIR to a folder holding {filename} "
            f"(download it from {e.urls[0]}).")


def _download(url: str, filename: str, e: Entry) -> pathlib.Path:
    dest = cache_dir() / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part",
                               dir=dest.parent)
    try:
        h, n = hashlib.new(e.algo), 0
        req = urllib.request.Request(url, headers={"User-Agent": "dlnotes"})
        with os.fdopen(fd, "wb") as f, \
                urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            print(f"downloading {filename} ({e.size:,} bytes) from {url}",
                  file=sys.stderr)
            while chunk := r.read(1 << 16):
                n += len(chunk)
                if n > e.size:
                    raise DataCorrupt(f"more than the expected {e.size} bytes")
                h.update(chunk)
                f.write(chunk)
        if n != e.size or h.hexdigest() != e.digest:
            raise DataCorrupt(f"expected {e.size} bytes with {e.algo} "
                              f"{e.digest}, got {n} bytes with {e.algo} "
                              f"{h.hexdigest()}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)  # atomic: dest is whole or absent
    except BaseException:
        os.unlink(tmp)
        raise
    _VERIFIED.add(_key(dest, e))
    return dest


def path(filename: str) -> pathlib.Path:
    """Local path of a verified copy of `filename`, downloading if needed."""
    e = _entry(filename)
    if (p := _local(filename)) is not None:
        return p
    if os.environ.get("DLNOTES_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise DataUnavailable(
            f"{filename} is in neither DLNOTES_DATA_DIR "
            f"({os.environ.get('DLNOTES_DATA_DIR') or 'unset'}) nor the cache "
            f"{cache_dir()}, and DLNOTES_OFFLINE=1 forbids downloading it. "
            + _advice(filename, e))
    errors = []
    for url in e.urls:
        try:
            return _download(url, filename, e)
        except Exception as exc:  # try the next mirror, report all at the end
            errors.append(f"{url}: {exc}")
    raise DataUnavailable(f"could not download {filename} ("
                          + "; ".join(errors) + "). " + _advice(filename, e))


def _files(split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, not {split!r}")
    return SPLITS[split]


def available(split: str) -> bool:
    """Whether "names", "train" or "test" is on this machine (no network)."""
    return all(_local(f) is not None for f in _files(split))


@functools.lru_cache(maxsize=None)
def _names() -> tuple[str, ...]:
    text = path("names.txt").read_text(encoding="utf-8")
    return tuple(w for w in text.splitlines() if w)


def names() -> list[str]:
    """The 32,033 makemore names, in file order (a fresh list each call)."""
    return list(_names())


def _read_idx(p: pathlib.Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions, gzip-compressed."""
    try:
        with gzip.open(p, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataCorrupt(f"{p}: not a readable gzip file ({exc})") from exc
    head = 4 + 4 * ndim
    if len(raw) < head or raw[:4] != bytes([0, 0, 8, ndim]):
        raise DataCorrupt(f"{p}: bad IDX header {raw[:4].hex()}, expected "
                          f"{bytes([0, 0, 8, ndim]).hex()} (uint8, {ndim}-d)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    body = np.frombuffer(raw, np.uint8, offset=head)
    if body.size != int(np.prod(dims)):
        raise DataCorrupt(f"{p}: header gives shape {dims} but the file holds "
                          f"{body.size} values")
    return body.reshape(dims)


@functools.lru_cache(maxsize=None)
def _mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    image_file, label_file = _files(split)
    x = _read_idx(path(image_file), 3)
    y = _read_idx(path(label_file), 1)
    if x.shape[1:] != (28, 28) or len(x) != len(y) or y.max(initial=0) > 9:
        raise DataCorrupt(f"MNIST {split}: images {x.shape} and labels "
                          f"{y.shape} (max {y.max(initial=0)}) do not fit")
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def mnist(split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images uint8 (N, 28, 28) and labels int64 (N,), fresh copies."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    x, y = _mnist(split)
    return x.clone(), y.clone()


# Files the quick tier can do without; `fetch` still tries them and reports their absence.
OPTIONAL = {
    "train-images-idx3-ubyte.gz": "the quick tier trains on a split of the test set; "
    "the full tier needs it",
}


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m snippets.data")
    sub = ap.add_subparsers(dest="cmd", required=True)
    fetch = sub.add_parser("fetch", help="download into the cache, verified")
    fetch.add_argument("what", nargs="?", default="all",
                       choices=("names", "mnist", "all"))
    sub.add_parser("where", help="show where each file resolves (no network)")
    args = ap.parse_args(argv)
    files = list(REGISTRY)
    if args.cmd == "fetch" and args.what != "all":
        files = [f for f in files if (REGISTRY[f].subdir == "mnist")
                 == (args.what == "mnist")]
    print(f"DLNOTES_DATA_DIR={os.environ.get('DLNOTES_DATA_DIR', '')} "
          f"cache={cache_dir()}")
    rc = 0
    for f in files:
        try:
            where = path(f) if args.cmd == "fetch" else _local(f) or "missing"
        except DataUnavailable as exc:
            if f in OPTIONAL:
                where = f"not available (optional: {OPTIONAL[f]}): {exc}"
            else:
                where, rc = f"FAILED: {exc}", 1
        except DataCorrupt as exc:
            where, rc = f"FAILED: {exc}", 1
        print(f"{f:28} {where}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
