"""MkDocs hooks: the checks of the primary build. They render nothing a reader sees.

What a reader sees of a test run (outputs, figures, GPU tabs, cited values, the stamp,
MathML) is rendered by the Markdown extension in render.py, which MkDocs and Zensical both
run. These hooks add what needs MkDocs' page model:

- the extension is loaded even where a configuration does not list it (tests' small
  mkdocs.yml files), told the docs folder and the URL style;
- a block or cited value without a current record is reported as `page:line` (an error
  in a strict build); the extension shows a placeholder saying how to refresh it;
- a raw fence marker (``` or ~~~) left in a page's HTML is reported;
- figures, which the extension puts inside the page as data URIs, are written beside it
  as files named by their content (`outputs/figures/<sha256>.svg`), so pages stay light
  and figures load lazily;
- a page's front-matter `keywords` (other spellings readers search for) are added to its
  HTML as hidden text, so MkDocs' search finds the page by them;
- `mkdocs serve` rebuilds when a test run writes records or a snippets module changes;
  saving a page runs its blocks again, saving a snippets module runs the pages that use
  it (serve.py), and a block that failed shows its error in place of its output.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import os
import posixpath
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.engine import records, render  # noqa: E402
from tests.engine.files import atomic_write  # noqa: E402

log = logging.getLogger("mkdocs.plugins.dlnotes")
EXTENSION = "tests.engine.render"


def on_startup(command, dirty):
    render.SHOW_FAILURES = command == "serve"


def on_config(config):
    settings = {"docs_dir": config["docs_dir"],
                "use_directory_urls": config["use_directory_urls"]}
    if EXTENSION not in config["markdown_extensions"]:
        config["markdown_extensions"].append(EXTENSION)
    config["mdx_configs"][EXTENSION] = {**config["mdx_configs"].get(EXTENSION, {}),
                                        **settings}
    return config


def on_page_markdown(markdown, page, config, files):
    if not page.file.src_uri.endswith(".md"):
        return markdown
    path = Path(page.file.abs_src_path)
    raw = path.read_text("utf8")
    offset = raw[: raw.find(markdown)].count("\n") if markdown in raw else 0
    for problem in render.check_page(path, markdown, offset):
        log.warning(problem)
    return markdown


_CODE = re.compile(r"<(pre|code)\b.*?</\1>", re.S)


def on_page_content(content, page, config, files):
    prose = _CODE.sub("", content)
    for marker in ("```", "~~~"):
        at = prose.find(marker)
        if at >= 0:
            near = html.unescape(re.sub(r"<[^>]+>", " ", prose[max(0, at - 80) : at + 80]))
            log.warning(
                f"docs/{page.file.src_uri}: a raw fence marker {marker} leaked into the "
                f"HTML near: {' '.join(near.split())!r}"
            )
    if page.file.src_uri.endswith(".md"):  # (labs keep mkdocs-jupyter's own figures)
        content = _figure_files(content, page, config)
    keywords = page.meta.get("keywords")
    if keywords:  # other spellings readers search for: indexed, not shown
        content += f'<p class="dl-keywords" hidden>{html.escape(", ".join(keywords))}</p>'
    return content


_DATA_SVG = re.compile(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')


def _figure_files(content: str, page, config) -> str:
    here = page.url
    if here and not here.endswith("/"):
        here = posixpath.dirname(here)

    def one(m):
        svg = base64.b64decode(m[1])
        uri = f"outputs/figures/{hashlib.sha256(svg).hexdigest()[:32]}.svg"
        target = Path(config["site_dir"]) / uri
        if not target.exists():
            atomic_write(target, svg)
        return f'src="{posixpath.relpath(uri, here.rstrip("/") or ".")}"'

    return _DATA_SVG.sub(one, content)


def on_serve(server, config, builder):
    outputs = records.outputs_dir()
    outputs.mkdir(parents=True, exist_ok=True)
    if os.environ.get("DLNOTES_SERVE_RUN", "1") == "0":
        server.watch(str(records.ROOT / "snippets"))
        server.watch(str(outputs))
        return server
    # The edit loop: it runs saved pages (and those a saved snippets module is imported
    # by), and touches a page whose record changed (its own runs, a test run in a
    # terminal), which is what `serve --dirty` rebuilds. The server watches neither
    # records nor snippets itself: a rebuild they started would race the touch.
    from tests.engine.serve import EditLoop

    EditLoop(Path(config["docs_dir"]), outputs=outputs).start()
    return server
