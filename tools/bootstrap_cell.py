"""The first code cell of every notebook: install d2lmini when the runtime lacks it.

    python tools/bootstrap_cell.py [PATH ...]   # insert or update it (default: chapters/)

One place says where the book is published: ``repository.url`` in ``_config.yml``. The
cell, the README's clone line and the book's launch buttons (book/_ext/d2lmini_launch.py)
all take it from there. With a URL, a runtime without d2lmini (a fresh Colab) installs it
from that repository at the tag ``v<d2lmini.__version__>`` (CONTRIBUTING.md, "Releasing",
creates the tag). Without one (the default until the book is published), the cell stops
with a message that says how to install d2lmini from a local clone. Either way
``D2LMINI_SOURCE`` overrides what pip installs (a fork, a local checkout: the bare-venv
test uses that), and where d2lmini is importable the cell does nothing and prints
nothing. The hygiene test checks every notebook holds exactly this cell, and
tests/test_tools.py that the README's clone line matches: change them here, re-run this.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
README_START = "<!-- clone: written by tools/bootstrap_cell.py from _config.yml -->"
README_END = "<!-- /clone -->"


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` of ``_config.yml``, without a trailing slash ('' when unset)."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    url = ((config or {}).get("repository") or {}).get("url") or ""
    url = str(url).strip().rstrip("/")
    if url and not re.fullmatch(r"https://\S+", url):
        raise ValueError(f"_config.yml: repository.url must be an https:// URL, not {url!r}")
    return url


def d2lmini_version(root: Path = ROOT) -> str:
    """``d2lmini.__version__``, read from the source (the tag ``v<version>`` pins it)."""
    text = (root / "d2lmini" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if match is None:
        raise ValueError("d2lmini/__init__.py has no __version__")
    return match[1]


def install_ref(version: str | None = None) -> str:
    """The git ref the bootstrap cell installs: ``v<version>``."""
    return f"v{version or d2lmini_version()}"


def bootstrap_source(url: str | None = None, version: str | None = None) -> str:
    """The exact source of the bootstrap cell (default: this checkout's URL, version)."""
    url = repository_url() if url is None else url
    head = [
        "# Colab or Binder: install the book's helper package d2lmini if it is missing.",
        "import importlib.util",
        "import os",
        "",
        'if importlib.util.find_spec("d2lmini") is None:',
    ]
    tail = [
        '    print(f"d2lmini is missing: installing {source}")',
        '    %pip install --quiet "{source}"',
    ]
    if url:
        ref = install_ref(version)
        body = [
            f'    book = "{url}"',
            f'    source = os.environ.get("D2LMINI_SOURCE", f"d2lmini @ git+{{book}}@{ref}")',
        ]  # fmt: skip
    else:  # not published: no address to install from
        body = [
            '    source = os.environ.get("D2LMINI_SOURCE")',
            "    if not source:",
            "        raise ModuleNotFoundError(",
            '            "d2lmini is missing and this copy of the book names no published "',
            '            "repository: run `pip install -e .` in a clone of the book, or set "',
            '            "D2LMINI_SOURCE=/path/to/the/clone and run this cell again"',
            "        )",
        ]
    return "\n".join(head + body + tail)


def readme_clone_line(url: str | None = None) -> str:
    """The README's line that says how to get the repository."""
    url = repository_url() if url is None else url
    if url:
        return f"Clone the book's repository: `git clone {url}`."
    return (
        "No public address is configured yet (`repository.url` in `_config.yml`, see "
        "CONTRIBUTING.md): copy your clone of the repository to the server."
    )


def sync_readme(path: Path = ROOT / "README.md") -> bool:
    """Rewrite the README's clone line between its markers; True if changed."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r"\n.*?\n" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path.name} lacks the markers {README_START} ... {README_END}")
    new = pattern.sub(lambda _: f"{README_START}\n{readme_clone_line()}\n{README_END}", text)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


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
    if sync_readme():
        print("updated README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
