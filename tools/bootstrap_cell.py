"""The first code cell of every notebook: install d2lmini when the runtime lacks it.

    python tools/bootstrap_cell.py [PATH ...]   # insert or update it (default: chapters/)

A fresh Colab runtime has torch but not the book's helper package. The cell installs
d2lmini from the repository, pinned to the tag of this d2lmini version, and says so in
one line; where d2lmini is importable (``make``, Binder, a local venv) it does nothing
and prints nothing. ``D2LMINI_SOURCE`` overrides what pip installs (a fork, a local
checkout: the bare-venv test uses that). The hygiene test checks every notebook holds
exactly this cell, so change it here and re-run this script.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = "https://github.com/hands-on-pytorch/hands-on-pytorch"


def d2lmini_version() -> str:
    """The version in pyproject.toml (the tag ``v<version>`` pins the install)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if match is None:
        raise ValueError("pyproject.toml has no version")
    return match[1]


def bootstrap_source() -> str:
    """The exact source of the bootstrap cell."""
    version = d2lmini_version()
    return "\n".join([
        "# Colab or Binder: install the book's helper package d2lmini if it is missing.",
        "import importlib.util",
        "import os",
        "",
        'if importlib.util.find_spec("d2lmini") is None:',
        f'    book = "{REPOSITORY}"',
        f'    source = os.environ.get("D2LMINI_SOURCE", f"d2lmini @ git+{{book}}@v{version}")',
        '    print(f"d2lmini is missing: installing {source}")',
        '    %pip install --quiet "{source}"',
    ])  # fmt: skip


def is_bootstrap(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and cell.source.startswith("# Colab or Binder: install")


def sync(path: Path) -> bool:
    """Insert or update the bootstrap cell as the first code cell; True if changed."""
    nb = nbformat.read(path, as_version=4)
    source = bootstrap_source()
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    cell = nb.cells[first_code]
    if is_bootstrap(cell):
        if cell.source == source:
            return False
        cell.source = source
    else:
        new = nbformat.v4.new_code_cell(source)
        new.execution_count = 1
        new.outputs = []
        nb.cells.insert(first_code, new)
        for later in nb.cells[first_code + 1 :]:  # keep the stored counts 1..n
            if later.cell_type == "code" and later.execution_count is not None:
                later.execution_count += 1
    nbformat.write(nb, path)
    return True


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or [ROOT / "chapters"]
    notebooks = []
    for p in paths:
        notebooks += sorted(p.rglob("*.ipynb")) if p.is_dir() else [p]
    for nb_path in notebooks:
        if ".ipynb_checkpoints" not in nb_path.parts and sync(nb_path):
            print(f"updated {nb_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
