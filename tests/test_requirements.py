"""requirements.txt against pyproject.toml, and the README against the environment
variables the project reads.

pyproject.toml names the packages the project uses itself; requirements.txt
(`python3 tests/dev.py lock`, pip-compile) pins those and everything they need. These
checks fail when one is edited without the other: a package added to pyproject.toml but
not locked, a pin moved outside the range pyproject.toml allows, a loose line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests import dev

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf8"))["project"]
    return [Requirement(line) for line in project["dependencies"]]


def pins() -> dict[str, Version]:
    """Package (canonical name) -> pinned version, every line of requirements.txt."""
    found = {}
    for line in REQUIREMENTS.read_text("utf8").split("\n"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.!]*", version.strip()), (
            f"requirements.txt: not an exact pin of a release: {line!r}")
        key = canonicalize_name(name.strip())
        assert key not in found, f"requirements.txt pins {key} twice"
        found[key] = Version(version.strip())
    return found


def test_every_declared_dependency_is_pinned_within_its_range():
    pinned = pins()
    for requirement in declared():
        key = canonicalize_name(requirement.name)
        assert key in pinned, (
            f"{requirement.name} is in pyproject.toml but not in requirements.txt; "
            "run `python3 tests/dev.py lock`")
        assert requirement.specifier.contains(pinned[key], prereleases=True), (
            f"requirements.txt pins {key}=={pinned[key]}, outside pyproject.toml's "
            f"{requirement}; run `python3 tests/dev.py lock`")


def test_the_pins_are_what_tests_dev_installs():
    # ensure_env installs the torch line first (as it stands: no comment on it), then
    # the whole file.
    assert pins()[canonicalize_name("torch")] == Version("2.13.0")
    assert "torch==2.13.0" in REQUIREMENTS.read_text("utf8").split("\n")
    # No local build label (2.13.0+cpu): PyPI, where CI installs from, has none.
    assert all(not version.local for version in pins().values())


def test_the_header_says_how_to_regenerate():
    header = dev.requirements_header(REQUIREMENTS.read_text("utf8"))
    assert "python3 tests/dev.py lock" in header
    assert "pyproject.toml" in header
    # The reasons the two held-back pins stay where they are.
    assert "torch stays at 2.13.0" in header
    assert "zensical" in header


def test_lock_keeps_the_header_and_drops_local_build_labels():
    compiled = ("numpy==2.4.6              # via dlnotes (pyproject.toml)\n"
                "torch==2.13.0+cpu         # via dlnotes (pyproject.toml)\n"
                "zensical==0.0.73\n")
    header = dev.requirements_header("# one\n#\n# two\n\nnumpy==1.0\n")
    assert header == "# one\n#\n# two\n"
    assert dev.lock_text(compiled, header) == (
        "# one\n#\n# two\n\n"
        "numpy==2.4.6              # via dlnotes (pyproject.toml)\n"
        "torch==2.13.0             # via dlnotes (pyproject.toml)\n"
        "zensical==0.0.73\n")


def test_the_readme_names_every_environment_variable():
    used = set()
    for folder in ("tests", "snippets", ".ci", ".github"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                text = path.read_text("utf8", errors="replace")
                used |= set(re.findall(r"DLNOTES_[A-Z_]+", text))
    used.discard("DLNOTES_")  # a prefix in a pattern, as in this file
    readme = (ROOT / "README.md").read_text("utf8")
    missing = sorted(name for name in used if name not in readme)
    assert not missing, f"README.md does not list {missing}"
