"""A reader's environment without d2lmini (Colab, a fresh venv): the bootstrap cell.

Colab has torch but not the book's helper package, so the first code cell of every
notebook (``tools/bootstrap_cell.py``) installs d2lmini when it is missing. This test
builds such an environment: a new venv that sees the test venv's packages (torch,
ipykernel, ...) through a ``.pth`` file but not its editable d2lmini (the ``.pth``
files inside that folder are not processed, so the editable finder never loads). It
then runs a notebook in a kernel of that venv with ``D2LMINI_SOURCE`` pointing at a
copy of this checkout, offline: pip reads ``PIP_NO_INDEX``, ``PIP_NO_DEPS`` and
``PIP_NO_BUILD_ISOLATION=0`` (pip's inverted spelling of --no-build-isolation) from
the environment, and the kernel inherits them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "chapters" / "part1_by_example" / "01_numpy_two_layer_net.ipynb"
MESSAGE = "d2lmini is missing: installing"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def run_python(python: Path, code: str, cwd: Path) -> str:
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def stream_text(nb: nbformat.NotebookNode) -> list[str]:
    """The stdout/stderr text of each code cell."""
    return [
        "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


@pytest.fixture
def bare_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A kernel named "bare": a venv with torch and ipykernel but without d2lmini."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv_python(venv)
    site = Path(run_python(python, "import sysconfig; print(sysconfig.get_path('purelib'))",
                           tmp_path))  # fmt: skip
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "test-venv-packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    found = run_python(
        python,
        "import importlib.util, torch, ipykernel; print(importlib.util.find_spec('d2lmini'))",
        tmp_path,
    )
    assert found == "None", f"the bare venv must not see d2lmini, found {found}"

    kernels = tmp_path / "jupyter" / "kernels" / "bare"
    kernels.mkdir(parents=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "bare venv", "language": "python"}  # fmt: skip
    (kernels / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    source = tmp_path / "checkout"  # pip builds in the source folder: not in ours
    shutil.copytree(ROOT / "d2lmini", source / "d2lmini",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name, value in {
        "D2LMINI_SOURCE": str(source),
        "D2LMINI_PROFILE": "smoke",
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # sic: "0" turns build isolation off
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }.items():
        monkeypatch.setenv(name, value)
    return "bare", python


def test_bootstrap_cell_installs_d2lmini_once_and_the_notebook_runs(bare_kernel, tmp_path):
    kernel, python = bare_kernel
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel, timeout=300,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})  # fmt: skip
    client.execute()  # raises CellExecutionError if any cell fails

    texts = stream_text(nb)
    assert texts[0].count(MESSAGE) == 1, texts[0]
    assert str(tmp_path / "checkout") in texts[0]
    assert sum(text.count(MESSAGE) for text in texts) == 1
    assert "profile smoke" in texts[1], "the set-up cell ran with the installed d2lmini"
    where = run_python(python, "import d2lmini; print(d2lmini.__file__)", tmp_path)
    assert Path(where).is_relative_to(tmp_path / "bare"), where

    again = nbformat.v4.new_notebook(cells=[nb.cells[next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code")]])  # fmt: skip
    NotebookClient(again, kernel_name=kernel, timeout=120).execute()
    assert stream_text(again) == [""], "the bootstrap cell prints only when d2lmini is missing"
