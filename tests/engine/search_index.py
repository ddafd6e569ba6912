"""mkdocs hook: a lighter search index, in which concept pages rank above labs.

Every page fetches search/search_index.json on its first visit, and code made up half of
it. After the build, each code block and output in a document's text is replaced by the
identifiers it holds, each once, in order (`torch.manual_seed(0)` leaves
`torch manual_seed`): an identifier still finds the page, the rest of the code does not
travel. Labs only use what the concept pages explain, so their documents get a lower
boost: a search for an identifier lists the page that explains it first.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

LAB_BOOST = 0.3
_BLOCK = re.compile(r"<pre>(.*?)</pre>|<code>(.*?)</code>", re.S)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAG = re.compile(r"<[^>]+>")


def identifiers(code: str) -> str:
    """The identifiers of a piece of code, each once, in order of appearance."""
    text = html.unescape(_TAG.sub(" ", code))
    return " ".join(dict.fromkeys(_IDENTIFIER.findall(text)))


def _shrink(text: str) -> str:
    def keep(match):
        code = match[1] if match[1] is not None else match[2]
        if match[2] is not None and len(code) <= 40:
            return match[0]  # an identifier quoted in a sentence stays as it is
        found = identifiers(code)
        return f"<code>{found}</code>" if found else ""
    return _BLOCK.sub(keep, text)


def shrink_index(index: dict) -> dict:
    for doc in index.get("docs", []):
        doc["text"] = _shrink(doc.get("text", ""))
        if doc.get("location", "").startswith("labs/") and doc["location"] != "labs/":
            doc["boost"] = LAB_BOOST
    return index


def on_post_build(config, **kwargs):
    path = Path(config["site_dir"]) / "search" / "search_index.json"
    if path.exists():
        index = shrink_index(json.loads(path.read_text("utf8")))
        path.write_text(json.dumps(index, separators=(",", ":"), ensure_ascii=False),
                        "utf8")
