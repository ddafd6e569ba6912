"""First-visit weight of every page of the built site, as a reader's browser receives it.

    python -m tests.site_weights [SITE] [--json OUT]

For each page (site/**/index.html): the HTML, the stylesheets and scripts it links, the
search worker and the search index the theme fetches on every page, the math font where
the page shows math, and the images it loads eagerly (figures load lazily, when scrolled
to: not counted). Each file counts gzip-compressed (level 6), as GitHub Pages serves
text; a file already compressed (woff2, png) counts as it is. A first visit fetches each
file once, whatever the page.
"""

from __future__ import annotations

import argparse
import gzip
import html.parser
import json
import posixpath
import re
import statistics
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPRESSED = {".woff2", ".woff", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico"}


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.math = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and (a.get("rel") or "") in ("stylesheet", "icon") and a.get("href"):
            self.urls.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "img" and a.get("src") and a.get("loading") != "lazy":
            self.urls.append(a["src"])
        elif tag == "math":
            self.math = True


@lru_cache(maxsize=None)
def transfer_bytes(path: Path) -> int:
    """What the server sends for a file: gzip-compressed unless compressed already."""
    data = path.read_bytes()
    if path.suffix.lower() in COMPRESSED:
        return len(data)
    return len(gzip.compress(data, compresslevel=6, mtime=0))


def _local(site: Path, page_dir: Path, url: str) -> Path | None:
    if re.match(r"^[a-z]+:", url) or url.startswith("//"):
        return None  # another host: the browser tests forbid these anyway
    url = url.split("#", 1)[0].split("?", 1)[0]
    if url.startswith("/"):
        target = site / url.lstrip("/")
    else:
        target = page_dir / url
    target = Path(posixpath.normpath(target.as_posix()))
    return target if target.is_file() else None


def page_files(site: Path, html_file: Path) -> list[Path]:
    text = html_file.read_text("utf8")
    links = _Links()
    links.feed(text)
    files = [html_file]
    for url in links.urls:
        found = _local(site, html_file.parent, url)
        if found:
            files.append(found)
    worker = re.search(r'"search":\s*"([^"]+)"', text)  # the theme's __config
    if worker:
        found = _local(site, html_file.parent, worker[1])
        if found:
            files.append(found)
    index = site / "search" / "search_index.json"
    if index.exists() and worker:
        files.append(index)
    if links.math:  # the math font, where a stylesheet names one
        for css in [f for f in files if f.suffix == ".css"]:
            for url in re.findall(r'url\("?([^")]+\.woff2)"?\)', css.read_text("utf8")):
                found = _local(site, css.parent, url)
                if found:
                    files.append(found)
    return list(dict.fromkeys(files))


def weights(site: Path) -> dict:
    pages = {}
    parts: dict[str, int] = {}
    for html_file in sorted(site.rglob("index.html")):
        rel = html_file.parent.relative_to(site).as_posix()
        rel = "/" if rel == "." else rel + "/"
        files = page_files(site, html_file)
        pages[rel] = sum(transfer_bytes(f) for f in files)
        for f in files[1:]:
            parts[f.relative_to(site).as_posix()] = transfer_bytes(f)
    values = sorted(pages.values())
    return {
        "pages": pages,
        "median_kb": round(statistics.median(values) / 1024, 1) if values else 0,
        "max_kb": round(max(values) / 1024, 1) if values else 0,
        "shared_parts_kb": {k: round(v / 1024, 1)
                            for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default=str(ROOT / "site"))
    parser.add_argument("--json", help="also write the figures here")
    ns = parser.parse_args(argv)
    site = Path(ns.site)
    if not (site / "index.html").exists():
        print(f"no built site at {site}: run `python3 tests/dev.py build` first",
              file=sys.stderr)
        return 2
    found = weights(site)
    for page, size in sorted(found["pages"].items(), key=lambda kv: -kv[1]):
        print(f"{size / 1024:9.1f} KB  {page}")
    print("largest parts (each fetched once per first visit):")
    for part, kb in list(found["shared_parts_kb"].items())[:6]:
        print(f"{kb:9.1f} KB  {part}")
    print(f"median {found['median_kb']} KB over {len(found['pages'])} pages; "
          f"largest {found['max_kb']} KB")
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
