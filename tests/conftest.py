"""Shared fixtures: the HTML book, built once per test session.

``built_book`` runs ``jupyter-book build`` as ``make book`` does (``-W -n
--keep-going``) with the jupyter-book of the running venv, or, where
``$D2LMINI_BUILT_BOOK`` names the HTML folder that ``make book`` built (``.ci/run``
does), uses that one, so that CI builds the book once. Under pytest-xdist the
workers share one build: the first one builds under a file lock, the others reuse it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BuiltBook:
    returncode: int
    output: str  # stdout and stderr of the build
    html: Path  # the folder with index.html

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.output.splitlines() if "WARNING" in line or "ERROR" in line]


def build_book(out: Path) -> BuiltBook:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    executable = str(jupyter_book) if jupyter_book.exists() else shutil.which("jupyter-book")
    if executable is None:
        pytest.skip("jupyter-book is not installed in this environment")
    command = [executable, "build", str(ROOT), "--path-output", str(out), "-W", "-n",
               "--keep-going"]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    return BuiltBook(result.returncode, result.stdout + result.stderr, out / "_build" / "html")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BuiltBook:
    prebuilt = os.environ.get("D2LMINI_BUILT_BOOK")  # .ci/run: the HTML of `make book`
    if prebuilt:
        html = Path(prebuilt)
        if not (html / "index.html").is_file():
            raise FileNotFoundError(f"D2LMINI_BUILT_BOOK={prebuilt}: no index.html there")
        # `make book` builds with -W: it fails on any warning, so its HTML had none.
        return BuiltBook(0, "(built by make book with -W: no warnings)", html)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build_book(tmp_path_factory.mktemp("book"))
    from filelock import FileLock  # a dependency of torch, so present in the test venv

    shared = tmp_path_factory.getbasetemp().parent  # one folder per run, for all workers
    record = shared / "book.json"
    with FileLock(str(shared / "book.lock")):
        if record.is_file():
            data = json.loads(record.read_text(encoding="utf-8"))
            return BuiltBook(data["returncode"], data["output"], Path(data["html"]))
        book = build_book(shared / "book")
        record.write_text(
            json.dumps({"returncode": book.returncode, "output": book.output,
                        "html": str(book.html)}),
            encoding="utf-8",
        )  # fmt: skip
        return book
