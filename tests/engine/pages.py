"""Read a Markdown page into the Python blocks that run, exactly as a reader sees them.

Both sides of the engine use this module: the pytest plugin (to run blocks) and the
MkDocs hook (to put recorded outputs under them). Sharing it is what guarantees that
the tests run the text the site shows.

- Admonitions (`!!!`), collapsible details (`???`) and content tabs (`===`) are flattened
  line by line (opener blanked, body dedented by 4), so line numbers stay those of the file
  and fences inside them are ordinary fences to markdown-it.
- Snippet includes (`--8<--`) inside a fence are expanded by pymdownx.snippets itself, with
  the configuration read from mkdocs.yml.
- Each running block gets a chained hash: it changes when the block or any earlier block of
  its page changes, which is how a recorded output is known to be stale.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from pathlib import Path

import markdown
import yaml
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
PYTHON_LANGS = ("python", "py", "python3")
_CONTAINER = re.compile(r'^(?P<indent> *)(?:(?:!!!|\?\?\?\+?) +\w|===!?\+? +")')
_FENCE = re.compile(r"^(?P<indent> *)(?P<marker>`{3,}|~{3,})(?P<info>.*)$")


class PageError(Exception):
    """A problem in a page's source, reported as `path:line: message`."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{_rel(path)}:{line}: {message}")
        self.path, self.line = path, line


@dataclasses.dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence in the file
    source: str  # the code as the reader sees it (snippets expanded)
    options: frozenset[str]  # e.g. {"notest"}
    indent: int  # columns of the opening fence in the file
    end_line: int  # 1-based line of the closing fence
    digest: str = ""  # chained hash; empty for blocks that do not run

    @property
    def runs(self) -> bool:
        return "notest" not in self.options


def _rel(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def flatten_containers(text: str) -> str:
    """Dedent the bodies of admonitions, details and tabs; keep every line in place."""
    lines = text.split("\n")
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(lines):
            fence = _FENCE.match(lines[i])
            if fence:  # skip a fenced block whole: its text is code, not Markdown
                i = _fence_end(lines, i, fence) + 1
                continue
            m = _CONTAINER.match(lines[i])
            if m:
                k = len(m["indent"])
                lines[i] = ""
                j = i + 1
                while j < len(lines) and (
                    not lines[j].strip() or _indent(lines[j]) >= k + 4
                ):
                    if lines[j].strip():
                        lines[j] = lines[j][:k] + lines[j][k + 4 :]
                    j += 1
                changed = True
            i += 1
    return "\n".join(lines)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _fence_end(lines: list[str], start: int, fence: re.Match) -> int:
    marker = fence["marker"]
    for j in range(start + 1, len(lines)):
        close = _FENCE.match(lines[j])
        if (
            close
            and close["marker"][0] == marker[0]
            and len(close["marker"]) >= len(marker)
            and not close["info"].strip()
        ):
            return j
    return len(lines) - 1


def parse_info(info: str) -> tuple[str, frozenset[str], bool]:
    """Return (language, options, brace_form) of a fence's info string."""
    info = info.strip()
    if info.startswith("{") and info.endswith("}"):
        parts = info[1:-1].split()
        lang = next((p[1:] for p in parts if p.startswith(".")), "")
        opts = {p for p in parts if not p.startswith(".")}
        return lang, frozenset(opts), True
    parts = info.split()
    return (parts[0] if parts else ""), frozenset(parts[1:]), False


@functools.lru_cache(maxsize=None)
def snippet_preprocessor():
    """pymdownx.snippets configured exactly as mkdocs.yml configures it."""
    config = _snippets_config()
    base = config.get("base_path", ["."])
    base = [base] if isinstance(base, str) else base
    config["base_path"] = [str((ROOT / b).resolve()) for b in base]
    config.pop("auto_append", None)  # appended to whole pages by MkDocs, never to fences
    md = markdown.Markdown(
        extensions=["pymdownx.snippets"],
        extension_configs={"pymdownx.snippets": config},
    )
    return md.preprocessors["snippet"]


def _snippets_config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    Loader.add_multi_constructor("!", lambda *a: None)
    data = yaml.load((ROOT / "mkdocs.yml").read_text("utf8"), Loader=Loader)
    for ext in data.get("markdown_extensions", []):
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            return dict(ext["pymdownx.snippets"] or {})
    return {}


def expand_snippets(code: str) -> str:
    if "--8<--" not in code:
        return code
    pre = snippet_preprocessor()
    return "\n".join(pre.run(code.split("\n")))


class PageParser(MarkdownIt):
    """markdown-it that sees fences inside containers and expands snippet includes.

    pytest-markdown-docs collects with this parser (see plugin.py), so its items are
    exactly the blocks read_page() finds.
    """

    def __init__(self, path: Path | None = None):
        super().__init__("commonmark")
        self.path = path

    def parse(self, src, env=None):
        tokens = super().parse(flatten_containers(src), env)
        for tok in tokens:
            if tok.type == "fence" and parse_info(tok.info)[0] in PYTHON_LANGS:
                try:
                    tok.content = expand_snippets(tok.content)
                except Exception as e:  # noqa: BLE001 - report it at the page's line
                    where = self.path or Path("<page>")
                    raise PageError(where, tok.map[0] + 1, f"snippet include: {e}")
        return tokens


def read_page(path: Path | str, text: str | None = None) -> list[Block]:
    """All Python blocks of a page, in order, with chained hashes for those that run."""
    path = Path(path)
    if text is None:
        text = path.read_text("utf8")
    return list(_read_page(path, text, _snippets_stamp()))


def _snippets_stamp() -> tuple:
    """Changes whenever an includable file changes, so remembered pages are re-read."""
    return tuple(
        (p.name, p.stat().st_mtime_ns) for p in sorted((ROOT / "snippets").glob("*.py"))
    )


@functools.lru_cache(maxsize=256)
def _read_page(path: Path, text: str, _stamp: tuple) -> tuple[Block, ...]:
    """read_page, remembered: a page is read by collection, the runner and the build."""
    raw_lines = text.split("\n")
    blocks, chain = [], hashlib.sha256(b"dlnotes-v1").hexdigest()
    for tok in PageParser(path).parse(text):
        if tok.type != "fence" or not tok.map:
            continue
        lang, opts, brace = parse_info(tok.info)
        line = tok.map[0] + 1
        if lang not in PYTHON_LANGS:
            continue
        if opts and not brace:
            raise PageError(
                path,
                line,
                f"fence options must use the brace form, e.g. "
                f"```{{.python {' '.join(sorted(opts))}}}, not ```{tok.info.strip()}",
            )
        unknown = {o for o in opts if o != "notest" and "=" not in o}
        if unknown:
            raise PageError(path, line, f"unknown fence option(s): {sorted(unknown)}")
        digest = ""
        if "notest" not in opts:
            chain = hashlib.sha256(f"{chain}\0{tok.content}".encode()).hexdigest()
            digest = chain
        blocks.append(
            Block(
                line=line,
                source=tok.content,
                options=opts,
                indent=_indent(raw_lines[tok.map[0]]),
                end_line=tok.map[1],
                digest=digest,
            )
        )
    return tuple(blocks)


def scan_python_fences(text: str) -> list[int]:
    """Lines of every Python fence opener, found by a plain line scan (no Markdown parser).

    Independent of read_page on purpose: the fence check compares the two, so a fence the
    parser misses (say, in a construct it does not understand) fails the suite.
    """
    lines, found, i = text.split("\n"), [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m:
            if parse_info(m["info"])[0] in PYTHON_LANGS:
                found.append(i + 1)
            i = _fence_end(lines, i, m)
        i += 1
    return found
