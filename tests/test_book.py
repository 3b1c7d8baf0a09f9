"""The HTML book builds with zero warnings and has a page per notebook (what `make book` does)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_without_warnings(tmp_path):
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else shutil.which("jupyter-book"),
               "build", str(ROOT), "--path-output", str(tmp_path), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0, "\n".join(warnings) or result.stdout[-3000:]
    html = tmp_path / "_build" / "html"
    for notebook in sorted((ROOT / "chapters").rglob("*.ipynb")):
        page = html / notebook.relative_to(ROOT).with_suffix(".html")
        assert page.is_file(), f"no HTML page for {notebook.relative_to(ROOT)}"
