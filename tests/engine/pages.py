"""Read a Markdown page into the Python blocks that run, exactly as a reader sees them.

Both sides of the engine use this module: the pytest plugin (to run blocks) and the
site's rendering extension (render.py, to put recorded outputs under them). Sharing it
is what guarantees that the tests run the text the site shows.

- Admonitions (`!!!`), collapsible details (`???`) and content tabs (`===`) are flattened
  line by line (opener blanked, body dedented by 4), so line numbers stay those of the file
  and fences inside them are ordinary fences to markdown-it.
- Snippet includes (`--8<--`) inside a fence are expanded by pymdownx.snippets itself, with
  the configuration read from mkdocs.yml.
- Each running block gets a chained hash: it changes when the block or any earlier block of
  its page changes, which is how a recorded output is known to be stale.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.util
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

import markdown
import yaml
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
PYTHON_LANGS = ("python", "py", "python3")
# Container openers: `!!! TYPE ["TITLE"]`, `??? TYPE ["TITLE"]` (`???+` open) and
# `=== "TITLE"` (`===!`, `===+`). container_opener() is the one reader of this syntax.
_OPENER = re.compile(
    r'^(?P<indent> *)(?:(?P<marker>!!!|\?\?\?\+?) +(?P<type>\w+)|(?P<tab>===!?\+?)(?= +"))'
    r'(?: +"(?P<title>[^"]*)")?'
)
_FENCE = re.compile(r"^(?P<indent> *)(?P<marker>`{3,}|~{3,})(?P<info>.*)$")
# Front matter: YAML between a first line `---` and the next line `---`.
_FRONT = re.compile(r"\A---\s*\n(.*?\n)---\s*(?:\n|\Z)", re.S)


class PageError(Exception):
    """A problem in a page's source, reported as `path:line: message`."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{_rel(path)}:{line}: {message}")
        self.path, self.line = path, line


@dataclasses.dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence in the file
    source: str  # the code as the reader sees it (snippets expanded)
    options: frozenset[str]  # e.g. {"notest", "fixture:tmp_path", "timeout=300"}
    indent: int  # columns of the opening fence in the file
    end_line: int  # 1-based line of the closing fence
    digest: str = ""  # chained hash; empty for blocks that do not run
    brace: bool = True  # options written in the brace form (the house style)

    @property
    def runs(self) -> bool:
        return "notest" not in self.options

    def option(self, key: str, default: str | None = None) -> str | None:
        """The value of a `key=value` option (quotes removed), or `default`."""
        for opt in self.options:
            name, eq, value = opt.partition("=")
            if eq and name == key:
                return value
        return default

    def prefixed(self, prefix: str) -> list[str]:
        """Values of pytest-markdown-docs' `prefix:value` options, e.g. fixture:NAME."""
        return sorted(o[len(prefix) + 1 :] for o in self.options
                      if o.startswith(prefix + ":"))


@dataclasses.dataclass(frozen=True)
class Opener:
    """The first line of an admonition, a collapsible details block or a content tab."""

    indent: int  # columns before the marker; the body is indented by indent + 4
    kind: str  # "admonition" (!!!), "details" (??? or ???+) or "tab" (===)
    marker: str  # as written: "!!!", "???", "???+", "===", "===!", "===+", "===!+"
    type: str  # the admonition's type ("note", "success", ...); "" for a tab
    title: str | None  # the quoted title; None where there is none

    @property
    def folded(self) -> bool:
        """Details that start closed (`???`, not `???+`)."""
        return self.marker == "???"

    @property
    def heading(self) -> str:
        """The title a reader sees: the quoted one, else the type capitalised."""
        return self.title or self.type.capitalize()


def container_opener(line: str) -> Opener | None:
    """The container this line opens, or None if it opens none."""
    m = _OPENER.match(line)
    if m is None:
        return None
    marker = m["marker"] or m["tab"]
    kind = {"!": "admonition", "?": "details", "=": "tab"}[marker[0]]
    return Opener(indent=len(m["indent"]), kind=kind, marker=marker,
                  type=m["type"] or "", title=m["title"])


def split_front_matter(text: str) -> tuple[str, str]:
    """(the front matter's YAML, the page below it); ("", text) where there is none.

    The one reader of front matter: the build, the catalogue, the page notebooks and the
    checks all split a page here.
    """
    m = _FRONT.match(text)
    return (m[1], text[m.end():]) if m else ("", text)


def front_matter_lines(text: str) -> int:
    """How many of the page's first lines its front matter takes (0 where none)."""
    m = _FRONT.match(text)
    return m[0].count("\n") + (not m[0].endswith("\n")) if m else 0


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
            opener = container_opener(lines[i])
            if opener:
                k = opener.indent
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
    """Return (language, options, brace_form) of a fence's info string.

    Both forms that pytest-markdown-docs documents are understood: the plain form
    (`python notest`) and superfences' brace form (`{.python notest}`), including
    quoted values (`title="a b.py"`, `hl_lines="1 2"`), ids (`#id`) and extra classes
    (`.other`). Quotes are removed from values; ids and extra classes are not options.
    """
    info = info.strip()
    brace = info.startswith("{") and info.endswith("}")
    try:
        parts = shlex.split(info[1:-1] if brace else info)
    except ValueError:  # an unbalanced quote: keep what whitespace gives
        parts = (info[1:-1] if brace else info).split()
    if brace:
        classes = [p[1:] for p in parts if p.startswith(".")]
        lang = classes[0] if classes else ""
        opts = {p for p in parts if not p.startswith((".", "#"))}
    else:
        lang = parts[0] if parts else ""
        opts = set(parts[1:])
    return lang, frozenset(opts), brace


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
    tokens = PageParser(path).parse(text)
    code = "\n".join(
        t.content for t in tokens
        if t.type == "fence" and parse_info(t.info)[0] in PYTHON_LANGS
    )
    # The chain starts from the snippets modules the page uses: editing one of them
    # makes the page's recorded outputs stale, like editing a block does.
    chain = hashlib.sha256(b"dlnotes-v2").hexdigest()
    for name in snippet_modules(code):
        data = (ROOT / "snippets" / f"{name}.py").read_bytes()
        chain = hashlib.sha256(f"{chain}\0{name}\0".encode() + data).hexdigest()
    blocks = []
    for i, tok in enumerate(tokens):
        if tok.type != "fence" or not tok.map:
            continue
        lang, opts, brace = parse_info(tok.info)
        line = tok.map[0] + 1
        if lang not in PYTHON_LANGS:
            continue
        if path.suffix == ".mdx" and i >= 2:  # {/* pmd-metadata: notest ... */}
            opts = opts | _mdx_metadata(tokens[i - 2])
        digest = ""
        if "notest" not in opts:
            chain = hashlib.sha256(f"{chain}\0{tok.content}".encode()).hexdigest()
            digest = chain
        blocks.append(
            Block(
                line=line,
                source=tok.content,
                options=frozenset(opts),
                indent=_indent(raw_lines[tok.map[0]]),
                end_line=tok.map[1],
                digest=digest,
                brace=brace,
            )
        )
    return tuple(blocks)


def _mdx_metadata(token) -> set[str]:
    """Options from an MDX comment right above a fence, as pytest-markdown-docs reads."""
    text = token.content.strip() if token.type == "inline" else ""
    if not (text.startswith("{/*") and text.endswith("*/}") and "pmd-metadata:" in text):
        return set()
    return set(text[3:-3].replace("pmd-metadata:", "").split())


def _module_path(name: str, root: Path) -> Path | None:
    """The file of module `name` (dotted, under root's package), or None if no such file."""
    parts = name.split(".")
    if parts[0] != root.name:
        return None
    base = root.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py") if parts[1:] else None):
        if path is not None and path.is_file():
            return path
    return None


def _imports(tree: ast.AST, package: str | None) -> set[str]:
    """Every module an AST may import, anywhere in it (function bodies included).

    Relative imports are resolved against `package` (None for top-level code, where a
    relative import cannot work and is ignored). `from M import n` names both M and
    M.n, since n may be a submodule; names that are no module's file drop out later.
    Constant-string calls of importlib.import_module and __import__ count too.
    """
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                try:
                    base = importlib.util.resolve_name(
                        "." * node.level + (node.module or ""), package)
                except ImportError:  # beyond the top-level package
                    continue
            else:
                base = node.module
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # "M.*": see below
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(
                    first, ast.Constant) and isinstance(first.value, str):
                name, anchor = first.value, package
                if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    anchor = node.args[1].value
                if name.startswith("."):
                    try:
                        name = importlib.util.resolve_name(name, anchor)
                    except (ImportError, ValueError, TypeError):
                        continue
                found.add(name)
    return found


def _all_names(path: Path | None) -> list[str]:
    """A package's `__all__`, where its __init__.py sets it to a list of strings."""
    if path is None or path.name != "__init__.py":
        return []
    for node in ast.parse(path.read_text("utf8")).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple))
                and any(getattr(t, "id", "") == "__all__" for t in node.targets)):
            return [e.value for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def snippet_modules(code: str | Iterable[str], root: Path | None = None) -> list[str]:
    """The modules of the `snippets` package (root) that code needs, with what they import.

    Found by parsing, so every import form counts: `import snippets.x (as y)`,
    `from snippets import x, y`, `from snippets.x import f`, `from snippets import *`
    (the modules in `__all__`), imports inside functions, constant-string
    `importlib.import_module` calls, and relative imports inside the package's own
    modules; followed transitively. Each module is its path under root without `.py`
    ("data", "sub/__init__"); a package's `__init__` comes with any of its modules
    (importing one runs it). Code that uses no snippets needs none: [].
    """
    root = ROOT / "snippets" if root is None else root
    sources = [code] if isinstance(code, str) else list(code)
    todo = [name for source in sources for name in _imports(_parse(source), None)]
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name.endswith(".*"):  # from a package import *: the submodules in its __all__
            name = name[:-2]
            todo += [f"{name}.{n}" for n in _all_names(_module_path(name, root))]
        parts = name.split(".")
        # importing a.b.c runs a/__init__.py, a/b/__init__.py, then a/b/c
        for depth in range(1, len(parts) + 1):
            path = _module_path(".".join(parts[:depth]), root)
            if path is None or path in files:
                continue
            files.add(path)
            module = ".".join(parts[:depth])
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            todo += _module_imports(path, package, path.stat().st_mtime_ns)
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in files)


@functools.lru_cache(maxsize=None)
def _module_imports(path: Path, package: str, _mtime_ns: int) -> list[str]:
    """What a snippets module imports, parsed once per version of the file (every page
    that uses the module asks)."""
    return list(_imports(ast.parse(path.read_text("utf8"), str(path)), package))


def _parse(source: str) -> ast.AST:
    try:
        return ast.parse(source)
    except SyntaxError:  # the block fails when it runs, with its page line
        return ast.Module(body=[], type_ignores=[])


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


# ------------------------------------------------------------------ cited values
#
# Prose cites what a block computed instead of typing it: `{{ expr }}` or
# `{{ expr:fmt }}` is the value of the Python expression `expr` in the page's
# namespace right after the last block above it ran, formatted with `format(value,
# fmt)` (`.4f`, `.1%`, `,`, `,.0f`, ...). The test run records the formatted text with
# that block's output; the build puts it in the sentence. A number quoted from
# elsewhere is marked `{{q TEXT | SOURCE }}` and rendered as a quotation.

_CITE = re.compile(r"\{\{(?P<body>.*?)\}\}")
_SPEC = re.compile(r"[<>^=]?[+\- ]?z?#?0?\d*[,_]?(?:\.\d+)?[bcdeEfFgGnosxX%]?")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1|\$\$.*?\$\$|(?<![\\\w])\$[^$\s][^$]*?\$")


@dataclasses.dataclass(frozen=True)
class Citation:
    line: int  # 1-based line of the page
    text: str  # the whole `{{ ... }}` as written
    body: str  # what is inside the braces, stripped: the key in a block's record
    expr: str = ""  # a cited value: the expression ...
    spec: str = ""  # ... and its format spec
    quote: str = ""  # a quotation: the quoted text ...
    source: str = ""  # ... and where it comes from
    after: Block | None = None  # the block whose namespace a value is read from

    def evaluate(self, namespace: dict) -> str:
        return format(eval(self.expr, namespace), self.spec)  # noqa: S307 - page code


def prose_lines(text: str) -> list[str]:
    """The page's lines with fenced code, inline code and math blanked out."""
    lines = flatten_containers(text).split("\n")
    out, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence:
            end = _fence_end(lines, i, fence)
            out += [""] * (end - i + 1)
            i = end + 1
            continue
        out.append(lines[i])
        i += 1
    joined = "\n".join(out)
    # math blocks may span lines: blank them but keep the line count
    joined = re.sub(r"\$\$.*?\$\$", lambda m: "\n" * m[0].count("\n"), joined, flags=re.S)
    return [_CODE_SPAN.sub(lambda m: " " * len(m[0]), line) for line in joined.split("\n")]


def read_citations(path: Path | str, text: str | None = None) -> list[Citation]:
    """Every `{{ ... }}` in the prose of a page, tied to the block above it."""
    path = Path(path)
    if text is None:
        text = path.read_text("utf8")
    return list(_read_citations(path, text, _snippets_stamp()))


@functools.lru_cache(maxsize=256)
def _read_citations(path: Path, text: str, stamp: tuple) -> tuple[Citation, ...]:
    running = [b for b in _read_page(path, text, stamp) if b.runs]
    found = []
    for n, line in enumerate(prose_lines(text), 1):
        for m in _CITE.finditer(line):
            body = m["body"].strip()
            after = next((b for b in reversed(running) if b.end_line < n), None)
            if body.startswith("q ") and "|" in body:
                quote, _, source = body[2:].partition("|")
                if not quote.strip() or not source.strip():
                    raise PageError(path, n, f"a quotation needs text and a source: "
                                    f"{{{{q TEXT | SOURCE}}}}, not {m[0]}")
                found.append(Citation(n, m[0], body, quote=quote.strip(),
                                      source=source.strip()))
                continue
            expr, spec = body, ""
            if ":" in body:
                left, _, right = body.rpartition(":")
                if _SPEC.fullmatch(right.strip()) and _compiles(left):
                    expr, spec = left.strip(), right.strip()
            if not _compiles(expr):
                raise PageError(path, n, f"{m[0]} is not a Python expression "
                                "(optionally followed by :format-spec)")
            if after is None:
                raise PageError(path, n, f"{m[0]} cites a value before any block ran; "
                                "a cited value comes from the blocks above it")
            found.append(Citation(n, m[0], body, expr=expr, spec=spec, after=after))
    return tuple(found)


def _compiles(expr: str) -> bool:
    try:
        compile(expr.strip(), "<citation>", "eval")
    except SyntaxError:
        return False
    return bool(expr.strip())


# ------------------------------------------------------------- house-style checks
#
# The engine accepts every fence option pytest-markdown-docs documents, in both
# forms. Pages in docs/ keep to the brace form, because bare words after the
# language break Material's rendering, and use only options the project knows.

KNOWN_OPTIONS = ("notest", "continuation")
KNOWN_PREFIXES = ("fixture:", "retry:")
KNOWN_KEYS = ("timeout", "warns", "title", "hl_lines", "linenums")


def style_problems(path: Path | str) -> list[str]:
    """`page:line: problem` for each fence that breaks the house style."""
    path = Path(path)
    problems = []
    for b in read_page(path):
        where = f"{_rel(path)}:{b.line}"
        if b.options and not b.brace:
            problems.append(f"{where}: fence options must use the brace form, e.g. "
                            f"```{{.python {' '.join(sorted(b.options))}}}")
        for o in sorted(b.options):
            key = o.partition("=")[0]
            if not (o in KNOWN_OPTIONS or o.startswith(KNOWN_PREFIXES)
                    or ("=" in o and key in KNOWN_KEYS)):
                problems.append(f"{where}: unknown fence option {o!r}")
    return problems


# -------------------------------------------------------- numbers in the prose
#
# Every number in a page's prose is cited ({{ expr }}), quoted ({{q ... | source}}),
# or one of the few kinds that are neither a measurement nor a quotation: small
# counts (0 to 10), years, version numbers, and numbers that are part of a name
# (int8, fp16, 2D, GPT-2). The References section is about sources, not results.

_NUMBER = re.compile(r"(?<![\w.,])[-−+]?\d+(?:[.,]\d+)*(?:\s?%)?")
_VERSION_WORDS = re.compile(r"(?:torch|PyTorch|Python|CUDA|version|v|NumPy|numpy|"
                            r"Zensical|MkDocs|Material|pytest-markdown-docs|ONNX|"
                            r"opset|Markdown|mkdocs-material|CPython)\s*$", re.I)
_ATTR = re.compile(r"\{\s*[:.#][^}]*\}|\[\^[^\]]+\]|\]\([^)]*\)|<[^>]+>|&\w+;")


def bare_numbers(path: Path | str, text: str | None = None) -> list[str]:
    """`page:line: number` for each number in the prose that is neither cited nor
    quoted nor exempt."""
    path = Path(path)
    if text is None:
        text = path.read_text("utf8")
    lines = prose_lines(text)
    front = front_matter_lines(text)
    lines[:front] = [""] * front
    found, skipping = [], False
    for n, line in enumerate(lines, 1):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            skipping = heading[1].strip().lower().startswith(("references", "sources"))
        if skipping:
            continue
        line = _CITE.sub(" ", line)
        line = re.sub(r"^\s*\d+[.)]\s", " ", line)  # an ordered-list marker
        line = re.sub(r"<!--.*?-->", " ", line)
        line = _ATTR.sub(" ", line)
        for m in _NUMBER.finditer(line):
            token = m[0]
            after = line[m.end() : m.end() + 1]
            if after and (after.isalpha() or after == "_"):
                continue  # 2D, 3rd, 16x
            before = line[: m.start()]
            if re.search(r"[A-Za-z][-.]?$", before) and not before.endswith(" "):
                continue  # int8, fp16, GPT-2, L2, x86
            digits = token.lstrip("-−+").replace(",", "")
            if re.fullmatch(r"\d", digits) or digits == "10":
                continue  # a small count
            if re.fullmatch(r"(19|20)\d\d", digits):
                continue  # a year
            if re.fullmatch(r"\d+\.\d+\.\d+", digits) or _VERSION_WORDS.search(before):
                continue  # a version
            found.append(f"{_rel(path)}:{n}: {token.strip()}")
    return found
