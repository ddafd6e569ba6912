"""Page notebooks: built from the page, and they run outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from tests.engine import notebooks, pages, records

ROOT = Path(__file__).resolve().parents[1]
SITE = "https://example.org/dl-notes/"

# A page with a snippet include, one that reads MNIST through snippets.data, one plain.
RUN = [
    "docs/foundations/kaiming-init.md",
    "docs/foundations/mnist-baseline.md",
    "docs/foundations/cross-entropy.md",
]


def _outputs(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_notebook_mirrors_the_page(tmp_path):
    page = tmp_path / "docs" / "p.md"
    page.parent.mkdir()
    page.write_text(
        "---\ndescription: x\n---\n\n# Title\n\nIntro.\n\n"
        "```python\nfrom snippets.data import names\nx = 1\n```\n\n"
        '!!! note "Why"\n\n    Inside a note.\n\n    ```python\n    y = x + 1\n    ```\n\n'
        "```{.python notest}\nnot run\n```\n\nThe end.\n"
    )
    nb = notebooks.page_notebook(page, SITE)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["code", "markdown", "code", "markdown", "code", "markdown",
                     "markdown"]
    assert "data.py" in nb.cells[0].source and SITE in nb.cells[0].source
    assert nb.cells[2].source == "from snippets.data import names\nx = 1"
    assert nb.cells[3].source == "**Why**\n\nInside a note."
    assert nb.cells[4].source == "y = x + 1"  # dedented out of the admonition
    assert nb.cells[5].source == "```python\nnot run\n```"
    assert "description" not in nb.cells[1].source  # front matter dropped


def test_snippet_includes_are_expanded():
    nb = notebooks.page_notebook(ROOT / RUN[0], SITE)
    text = "\n".join(c.source for c in nb.cells)
    assert "--8<--" not in text
    blocks = [b for b in pages.read_page(ROOT / RUN[0]) if b.runs]
    code = [c.source for c in nb.cells if c.cell_type == "code"][1:]
    assert code == [b.source.rstrip("\n") for b in blocks]


def test_snippet_modules_follow_imports():
    assert notebooks.snippet_modules("from snippets.mnist import flat") == [
        "__init__", "data", "mnist"]
    assert notebooks.snippet_modules("import torch") == ["__init__"]


@pytest.mark.slow
@pytest.mark.parametrize("rel", RUN)
def test_page_notebook_runs_outside_the_repository(rel, tmp_path, monkeypatch):
    """Executed in an empty folder, fetching snippets as a reader's copy would."""
    from nbclient import NotebookClient

    nb = notebooks.page_notebook(ROOT / rel, SITE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MPLBACKEND")}
    env[notebooks.SNIPPETS_ENV] = (ROOT / "snippets").as_uri() + "/"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    errors = [o for c in nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    if "snippets" in "".join(c.source for c in nb.cells[1:]):
        assert (tmp_path / "snippets" / "data.py").exists()  # fetched, not the repo's
    # Where this commit's test run recorded the page, the notebook printed the same.
    recorded = records.load(ROOT / rel, "cpu")["blocks"]
    blocks = [b for b in pages.read_page(ROOT / rel) if b.runs]
    cells = [c for c in nb.cells if c.cell_type == "code"][1:]
    compared = 0
    for block, cell in zip(blocks, cells, strict=True):
        if block.digest in recorded:
            assert _outputs(cell) == recorded[block.digest]["output"], (
                f"{rel}:{block.line}: the notebook printed something else")
            compared += 1
    print(f"{rel}: {compared}/{len(blocks)} outputs compared with the record")
