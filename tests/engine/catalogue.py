"""The catalogue: section indexes, the learning path and the Builds on / Leads to lines,
made from each page's front matter when the site is built.

A concept page (docs/SECTION/NAME.md, not index.md) and a lab (docs/labs/NAME.ipynb, the
same fields under the notebook metadata key `dlnotes`) carry:

    order: 120           # place in the learning path (unique; leave gaps)
    part: 2              # the path's part: docs/path.md has `<!-- path part=2 -->`
    tier: core           # core (read in order), optional or advanced (the index's
                         # "Going deeper" list; the path marks them)
    path_note: one line on what the step unlocks
    short_title: Loss vs metric    # optional; link text (default: the page's title)
    builds_on:           # pages it needs, paths from docs/; `PATH: why` adds a note;
      - foundations/gradients.md   # an entry that is not a path is shown as text
    leads_to:            # optional: notes on pages that build on this one, or further
      - foundations/sgd.md: the loss it minimises   # pages to read that do not

A Python-Markdown extension (not an MkDocs hook, so that any builder that runs Markdown
extensions renders the same site) expands these lines, each alone on its line:

    <!-- builds-on -->                     the page's **Builds on:** line
    <!-- leads-to -->                      **Leads to:** every page that builds on it
    <!-- pages section=NAME tier=core -->  a section's core pages (tier=deeper: the rest)
    <!-- path part=N -->                   part N of the learning path, numbered steps
    <!-- path-summary wpm=N -->            steps, pages, words and blocks of the path, and
                                           the reading time at N words a minute (the page
                                           quotes the rate with its source)

A page knows which page it is from its `# Title` line (titles are unique). Any error in
the catalogue (a missing page, a cycle, a page the path lists before one it builds on, a
missing field) raises CatalogueError naming the file and line, and fails the build.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

from . import pages

ROOT = Path(__file__).resolve().parents[2]
TIERS = ("core", "optional", "advanced")
REQUIRED = ("order", "part", "tier", "path_note", "builds_on")


class CatalogueError(Exception):
    """An inconsistency in the pages' front matter; the message starts with file:line."""


@dataclass
class Link:
    target: str | None  # a page path from docs/, or None for a prerequisite shown as text
    text: str  # the path, or the text shown
    note: str  # shown in parentheses after the link
    line: int


@dataclass
class Entry:
    rel: str  # path from docs/, posix
    path: Path
    title: str
    description: str
    order: int
    part: int
    tier: str
    note: str
    short: str
    builds_on: list[Link] = field(default_factory=list)
    leads_to: list[Link] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # field -> line in the file

    @property
    def section(self) -> str:
        return self.rel.split("/", 1)[0]

    @property
    def is_lab(self) -> bool:
        return self.rel.endswith(".ipynb")

    def where(self, key: str | None = None, line: int | None = None) -> str:
        """`docs/x.md:LINE` for a field of this entry (no line for a notebook)."""
        name = f"docs/{self.rel}"
        if self.is_lab:
            return f"{name} (metadata dlnotes{'.' + key if key else ''})"
        n = line if line is not None else self.lines.get(key or "", 1)
        return f"{name}:{n}"


def _front_matter(text: str) -> tuple[dict, dict[str, int], dict[str, list[int]]]:
    """Front matter as data, the line of each key, and the line of each list item."""
    source = pages.split_front_matter(text)[0]
    if not source:
        return {}, {}, {}
    data = yaml.safe_load(source) or {}
    node = yaml.compose(source)
    lines, items = {}, {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[key.value] = key.start_mark.line + 2
            if isinstance(value, yaml.SequenceNode):
                items[key.value] = [v.start_mark.line + 2 for v in value.value]
    return (data if isinstance(data, dict) else {}), lines, items


def _title(text: str) -> str:
    text = pages.split_front_matter(text)[1]  # comments in front matter are no title
    m = re.search(r"^# (.+?)\s*$", text, re.M)
    return m[1] if m else ""


def _links(value, lines: list[int], where, key: str) -> list[Link]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogueError(f"{where(key)}: `{key}` must be a list")
    out = []
    for i, item in enumerate(value):
        line = lines[i] if i < len(lines) else 0
        if isinstance(item, dict) and len(item) == 1:
            (text, note), = item.items()
        elif isinstance(item, str):
            text, note = item, ""
        else:
            raise CatalogueError(f"{where(key, line)}: a `{key}` entry is a page path, "
                                 f"or `PATH: note`, not {item!r}")
        text, note = str(text).strip(), str(note or "").strip()
        target = text if re.search(r"\.(md|ipynb)$", text) else None
        out.append(Link(target, text, note, line))
    return out


class Catalogue:
    def __init__(self, docs: Path):
        self.docs = docs
        self._stats: dict | None = None
        self.entries: dict[str, Entry] = {}
        self.titles: dict[str, list[str]] = {}  # title -> pages with it (all of docs/)
        for path in sorted(docs.rglob("*.md")):
            rel = path.relative_to(docs).as_posix()
            text = path.read_text("utf8")
            self.titles.setdefault(_title(text), []).append(rel)
            if rel.count("/") == 1 and path.name != "index.md":
                self._add(path, rel, text)
        for path in sorted(docs.glob("*/*.ipynb")):
            rel = path.relative_to(docs).as_posix()
            nb = json.loads(path.read_text("utf8"))
            first = next((c for c in nb.get("cells", []) if c["cell_type"] == "markdown"),
                         None)
            title = _title("".join(first["source"])) if first else ""
            self.titles.setdefault(title, []).append(rel)
            self._add(path, rel, None, nb.get("metadata", {}).get("dlnotes"), title)
        self._check()

    # -- reading -------------------------------------------------------------------

    def _add(self, path: Path, rel: str, text: str | None, meta: dict | None = None,
             title: str = "") -> None:
        if text is not None:
            meta, lines, items = _front_matter(text)
            title = _title(text)
        else:
            meta, lines, items = meta or {}, {}, {}
        entry = Entry(rel, path, title, str(meta.get("description", "")), 0, 0, "",
                      "", "", lines=lines)
        missing = [k for k in REQUIRED if k not in meta]
        if missing:
            raise CatalogueError(
                f"{entry.where()}: front matter needs {', '.join(missing)} "
                "(see CONTRIBUTING, 'Add a note')")
        for key in ("order", "part"):
            if not isinstance(meta[key], int) or isinstance(meta[key], bool):
                raise CatalogueError(f"{entry.where(key)}: `{key}` must be a whole number")
        if meta["tier"] not in TIERS:
            raise CatalogueError(f"{entry.where('tier')}: `tier` is one of "
                                 f"{', '.join(TIERS)}, not {meta['tier']!r}")
        if not isinstance(meta["path_note"], str) or not meta["path_note"].strip():
            raise CatalogueError(f"{entry.where('path_note')}: `path_note` is one line on "
                                 "what the step unlocks")
        entry.order, entry.part, entry.tier = meta["order"], meta["part"], meta["tier"]
        entry.note = " ".join(meta["path_note"].split())
        entry.short = str(meta.get("short_title") or title)
        entry.builds_on = _links(meta["builds_on"], items.get("builds_on", []),
                                 entry.where, "builds_on")
        entry.leads_to = _links(meta.get("leads_to"), items.get("leads_to", []),
                                entry.where, "leads_to")
        self.entries[rel] = entry

    # -- checks --------------------------------------------------------------------

    def _check(self) -> None:
        orders: dict[int, str] = {}
        for e in self.entries.values():
            if e.order in orders:
                raise CatalogueError(f"{e.where('order')}: order {e.order} is taken by "
                                     f"docs/{orders[e.order]}")
            orders[e.order] = e.rel
            for key, links in (("builds_on", e.builds_on), ("leads_to", e.leads_to)):
                for link in links:
                    if link.target is None:
                        if key == "leads_to":
                            raise CatalogueError(f"{e.where(key, link.line)}: `leads_to` "
                                                 f"names pages, not text ({link.text!r})")
                        continue
                    if not (self.docs / link.target).is_file():
                        raise CatalogueError(
                            f"{e.where(key, link.line)}: {key} names "
                            f"{link.target}, which is not a page under docs/")
                    if link.target == e.rel:
                        raise CatalogueError(f"{e.where(key, link.line)}: a page cannot "
                                             f"name itself in {key}")
            for link in e.builds_on:
                other = self.entries.get(link.target or "")
                if e.tier == "core" and other and other.tier != "core":
                    raise CatalogueError(
                        f"{e.where('builds_on', link.line)}: a core page builds on "
                        f"docs/{other.rel}, which is {other.tier}; core pages are read "
                        "in order and skip the others")
        self._check_cycles()
        position = {rel: i for i, rel in enumerate(self.path_order())}
        for e in self.entries.values():
            for link in e.builds_on:
                if link.target in position and position[link.target] > position[e.rel]:
                    other = self.entries[link.target]
                    raise CatalogueError(
                        f"{e.where('builds_on', link.line)}: the path lists docs/{e.rel} "
                        f"(part {e.part}, order {e.order}) before docs/{other.rel} (part "
                        f"{other.part}, order {other.order}), which it builds on")

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(rel: str, trail: list[str]) -> None:
            state[rel] = 1
            for link in self.entries[rel].builds_on:
                t = link.target
                if t not in self.entries:
                    continue
                if state.get(t) == 1:
                    cycle = trail[trail.index(t):] + [rel, t] if t in trail else [rel, t]
                    raise CatalogueError(
                        f"{self.entries[rel].where('builds_on', link.line)}: builds_on "
                        f"makes a cycle: {' -> '.join(cycle)}")
                if state.get(t) is None:
                    visit(t, trail + [rel])
            state[rel] = 2

        for rel in sorted(self.entries):
            if rel not in state:
                visit(rel, [])

    # -- queries -------------------------------------------------------------------

    def path_order(self) -> list[str]:
        return sorted(self.entries, key=lambda r: (self.entries[r].part,
                                                   self.entries[r].order))

    def dependents(self, rel: str) -> list[str]:
        return [r for r in self.path_order()
                if any(link.target == rel for link in self.entries[r].builds_on)]

    def page_of_title(self, title: str) -> str:
        found = self.titles.get(title, [])
        if len(found) != 1:
            raise CatalogueError(
                f"a catalogue directive is on the page titled {title!r}, which "
                + ("no page under docs/ has" if not found else
                   f"{len(found)} pages have ({', '.join(found)}); titles must be unique"))
        return found[0]

    def stats(self) -> dict:
        """Counts over the learning path: steps, pages, labs, parts, words, blocks
        (computed once per catalogue: reading every page's blocks takes seconds)."""
        if self._stats is None:
            self._stats = self._count()
        return self._stats

    def _count(self) -> dict:
        words = blocks = 0
        for e in self.entries.values():
            if e.is_lab:
                nb = json.loads(e.path.read_text("utf8"))
                for cell in nb["cells"]:
                    src = "".join(cell["source"])
                    if cell["cell_type"] == "markdown":
                        words += len(_WORD.findall(src))
                    elif cell["cell_type"] == "code" and src.strip():
                        blocks += 1
            else:
                text = e.path.read_text("utf8")
                lines = pages.prose_lines(text)[pages.front_matter_lines(text):]
                words += sum(len(_WORD.findall(line)) for line in lines)
                blocks += sum(1 for b in pages.read_page(e.path) if b.runs)
        labs = sum(e.is_lab for e in self.entries.values())
        return {"steps": len(self.entries), "pages": len(self.entries) - labs,
                "labs": labs, "parts": len({e.part for e in self.entries.values()}),
                "words": words, "blocks": blocks}


_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_cache: dict[Path, tuple[tuple, Catalogue]] = {}


def load(docs: Path | str = ROOT / "docs") -> Catalogue:
    """The catalogue of a docs folder, re-read when a page in it changed."""
    docs = Path(docs)
    if not docs.is_absolute():
        docs = ROOT / docs
    files = [*docs.rglob("*.md"), *docs.glob("*/*.ipynb")]
    key = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in files))
    cached = _cache.get(docs)
    if cached and cached[0] == key:
        return cached[1]
    catalogue = Catalogue(docs)
    _cache[docs] = (key, catalogue)
    return catalogue


# -- rendering ---------------------------------------------------------------------

_NAMES = r"<!--\s*(builds-on|leads-to|pages|path-summary|path)(?=\s|-->)"
DIRECTIVE = re.compile(rf"^\s*{_NAMES}(.*?)-->\s*$")
ANY_DIRECTIVE = re.compile(_NAMES)


def _args(text: str, where: str) -> dict[str, str]:
    args = dict(re.findall(r"([a-z_]+)=(\S+)", text))
    if re.sub(r"[a-z_]+=\S+", "", text).strip():
        raise CatalogueError(f"{where}: arguments are NAME=VALUE, not {text.strip()!r}")
    return args


class Renderer:
    def __init__(self, catalogue: Catalogue, page: str):
        self.cat, self.page = catalogue, page

    def href(self, target: str) -> str:
        return posixpath.relpath(target, posixpath.dirname(self.page) or ".")

    def link(self, target: str) -> str:
        e = self.cat.entries.get(target)
        text = e.short if e else (self.cat_title(target) or target)
        return f"[{text}]({self.href(target)})"

    def cat_title(self, target: str) -> str:
        return next((t for t, rels in self.cat.titles.items() if target in rels), "")

    def _items(self, links: list[Link]) -> str:
        parts = []
        for link in links:
            text = self.link(link.target) if link.target else link.text
            parts.append(f"{text} ({link.note})" if link.note else text)
        # a comma inside an item (a note, a title such as "Export: TorchScript, ONNX")
        # would blur where items end: then semicolons separate them
        sep = "; " if any(link.note or "," in part for link, part in zip(links, parts)) \
            else ", "
        return sep.join(parts) + "."

    def builds_on(self, args) -> list[str]:
        e = self._entry("builds-on")
        if not e.builds_on:
            return []
        return [f"**Builds on:** {self._items(e.builds_on)}"]

    def leads_to(self, args) -> list[str]:
        e = self._entry("leads-to")
        notes = {link.target: link for link in e.leads_to}
        targets = self.cat.dependents(e.rel)
        targets += [t for t in notes if t not in targets]
        position = {r: i for i, r in enumerate(self.cat.path_order())}
        targets.sort(key=lambda t: position.get(t, len(position)))
        if not targets:
            return []
        links = [notes.get(t) or Link(t, t, "", 0) for t in targets]
        return [f"**Leads to:** {self._items(links)}"]

    def pages(self, args) -> list[str]:
        section, tier = args.get("section"), args.get("tier", "core")
        if tier not in ("core", "deeper"):
            raise CatalogueError(f"docs/{self.page}: `pages` takes tier=core or "
                                 f"tier=deeper, not {tier!r}")
        chosen = [self.cat.entries[r] for r in self.cat.path_order()
                  if self.cat.entries[r].section == section
                  and (self.cat.entries[r].tier == "core") == (tier == "core")]
        if not chosen and not any(e.section == section for e in self.cat.entries.values()):
            raise CatalogueError(f"docs/{self.page}: no page is in section {section!r}")
        return [f"- [{e.title}]({self.href(e.rel)}): {e.description}" for e in chosen]

    def path(self, args) -> list[str]:
        try:
            part = int(args.get("part", ""))
        except ValueError:
            raise CatalogueError(f"docs/{self.page}: `path` takes part=N") from None
        order = self.cat.path_order()
        out = []
        for n, rel in enumerate(order, 1):
            e = self.cat.entries[rel]
            if e.part == part:
                mark = "" if e.tier == "core" else f" *({e.tier})*"
                out.append(f"{n}. {self.link(rel)}{mark}: {e.note}")
        if not out:
            raise CatalogueError(f"docs/{self.page}: no page is in part {part} of the path")
        return out

    def path_summary(self, args) -> list[str]:
        try:
            wpm = int(args["wpm"])
        except (KeyError, ValueError):
            raise CatalogueError(f"docs/{self.page}: `path-summary` takes wpm=N (the "
                                 "reading rate the page quotes)") from None
        s = self.cat.stats()
        hours = max(1, round(s["words"] / wpm / 60))
        return [f"The path has {s['steps']} steps in {s['parts']} parts: {s['pages']} "
                f"concept pages and {s['labs']} labs, with about "
                f"{round(s['words'], -3):,} words of prose and {s['blocks']:,} Python "
                f"blocks that run; reading the prose alone takes about {hours} "
                f"hour{'s' if hours > 1 else ''}."]

    def _entry(self, name: str) -> Entry:
        e = self.cat.entries.get(self.page)
        if e is None:
            raise CatalogueError(f"docs/{self.page}: `{name}` is for concept pages (those "
                                 "with order, part, tier, path_note and builds_on)")
        return e


def expand_cross_links(lines: list[str], path: Path) -> list[str]:
    """A page's lines with its builds-on and leads-to lines rendered, one line each, so
    that line numbers hold (for the page's notebook, which no Markdown extension reads)."""
    docs = ROOT / "docs"
    path = Path(path).resolve()
    if not path.is_relative_to(docs) or not any(
            re.match(r"\s*<!--\s*(builds-on|leads-to)\s*-->\s*$", line) for line in lines):
        return lines
    renderer = Renderer(load(docs), path.relative_to(docs).as_posix())
    out = []
    for line in lines:
        m = re.match(r"\s*<!--\s*(builds-on|leads-to)\s*-->\s*$", line)
        out.append(" ".join(getattr(renderer, m[1].replace("-", "_"))({})) if m else line)
    return out


class CataloguePreprocessor(Preprocessor):
    def __init__(self, md, docs: str):
        super().__init__(md)
        self.docs = docs

    def run(self, lines: list[str]) -> list[str]:
        if not any(ANY_DIRECTIVE.search(line) for line in lines):
            return lines  # most pages: no need to read the catalogue
        title = next((m[1] for line in lines if (m := re.match(r"# (.+?)\s*$", line))), "")
        renderer = None
        out, fence = [], ""
        for line in lines:
            marker = re.match(r"\s*(`{3,}|~{3,})", line)
            if fence or marker:  # directives in code are examples: leave them
                if not fence:
                    fence = marker[1]
                elif marker and marker[1].startswith(fence) and not line.strip(" `~"):
                    fence = ""
                out.append(line)
                continue
            m = DIRECTIVE.match(line)
            if not m:
                if ANY_DIRECTIVE.search(re.sub(r"`+[^`]*`+", "", line)):
                    raise CatalogueError(f"the page titled {title!r}: a catalogue directive "
                                         f"stands alone on its line: {line.strip()!r}")
                out.append(line)
                continue
            if renderer is None:
                catalogue = load(self.docs)
                renderer = Renderer(catalogue, catalogue.page_of_title(title))
            name, args = m[1], _args(m[2], f"docs/{renderer.page}")
            indent = line[: len(line) - len(line.lstrip())]
            rendered = getattr(renderer, name.replace("-", "_"))(args)
            out += ["", *(indent + r for r in rendered), ""]
        return out


class CatalogueExtension(Extension):
    def __init__(self, **kwargs):
        self.config = {"docs_dir": ["docs", "the docs folder (relative to the repository)"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md):
        # before html_block (priority 20), which would hide the comments as raw HTML
        md.preprocessors.register(
            CataloguePreprocessor(md, self.getConfig("docs_dir")), "dlnotes_catalogue", 25)


def makeExtension(**kwargs):  # noqa: N802 (Python-Markdown's name)
    return CatalogueExtension(**kwargs)
