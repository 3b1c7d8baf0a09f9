"""Convert between a percent-format script and a notebook (a tiny, dependency-free jupytext).

    python tools/py2nb.py draft.py chapters/part1/01_x.ipynb   # script -> notebook
    python tools/py2nb.py chapters/part1/01_x.ipynb draft.py   # notebook -> script

Cells start with ``# %%`` (code) or ``# %% [markdown]``; markdown lines carry a ``# ``
prefix. Tags: ``# %% tags=["raises-exception"]``. Outputs are not kept: run
``make execute NB=...`` afterwards.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def script_to_notebook(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    kind, tags, lines = None, [], []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)

    for line in text.splitlines():
        match = HEADER.match(line)
        if match:
            flush()
            kind = "markdown" if match["md"] else "code"
            tags = json.loads(match["tags"]) if match["tags"] else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def notebook_to_script(nb: nbformat.NotebookNode) -> str:
    chunks = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        suffix = f" tags={json.dumps(tags)}" if tags else ""
        if cell.cell_type == "markdown":
            body = "\n".join(("# " + line).rstrip() for line in cell.source.splitlines())
            chunks.append(f"# %% [markdown]{suffix}\n{body}\n")
        elif cell.cell_type == "code":
            chunks.append(f"# %%{suffix}\n{cell.source}\n")
    return "\n".join(chunks)


def main(src: str, dst: str) -> None:
    if src.endswith(".py"):
        nbformat.write(script_to_notebook(Path(src).read_text(encoding="utf-8")), dst)
    else:
        Path(dst).write_text(notebook_to_script(nbformat.read(src, as_version=4)), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
