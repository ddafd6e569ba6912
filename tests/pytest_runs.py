"""Fresh pytest runs for the engine's own tests, without importing torch for each one.

The engine's tests run test pages in a pytest of their own, as a reader's run would be.
Starting a Python that imports torch, numpy, matplotlib and pytest costs about 3 s of CPU,
so each test process keeps one server that imports them once and then forks a child per
run: the child has just the server's imports (nothing has run in it) and runs
`pytest.main(args)` in the working folder and environment given, its output captured as
a subprocess's would be. Where fork is missing (Windows), or DLNOTES_FORK_RUNS=0, each
run is a plain subprocess.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SERVER = r"""
import json, os, signal, sys, traceback
import numpy, torch, matplotlib, matplotlib.pyplot  # noqa: F401 - imported once, here
import markdown, markdown_it, yaml, pytest, xdist  # noqa: F401
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            signal.alarm(int(request["timeout"]))
            code = pytest.main(request["args"])
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""

_server: subprocess.Popen | None = None


def _start() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        _server = subprocess.Popen(
            [sys.executable, "-c", _SERVER], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        atexit.register(_stop)
    return _server


def start() -> None:
    """Start the warm server now (it takes seconds), so that the first run is fast."""
    if _forking():
        _start()


def _stop() -> None:
    if _server is not None and _server.poll() is None:
        _server.stdin.close()
        _server.wait(timeout=30)


def _forking() -> bool:
    return hasattr(os, "fork") and os.environ.get("DLNOTES_FORK_RUNS", "1") != "0"


def run_pytest(args, *, env: dict, cwd: Path = ROOT, timeout: float = 300):
    """`python -m pytest ARGS` in cwd with exactly env; returns (exit code, output:
    stdout and stderr together)."""
    args = [str(a) for a in args]
    if not _forking():
        done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr
    server = _start()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "output.txt"
        server.stdin.write(json.dumps({"args": args, "env": dict(env), "cwd": str(cwd),
                                       "out": str(out), "timeout": timeout}) + "\n")
        server.stdin.flush()
        code = json.loads(server.stdout.readline())
        return code, out.read_text("utf8", errors="replace") if out.exists() else ""
