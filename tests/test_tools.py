"""The tools in tools/: notebook conversion, and the bootstrap cell and README line
that take the book's address from _config.yml."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bootstrap_cell  # noqa: E402
import py2nb  # noqa: E402

SCRIPT = """# %% [markdown]
# # Title
#
# Some *text*.

# %%
x = 1

# %% tags=["raises-exception"]
1 / 0
"""


def test_script_and_notebook_round_trip():
    nb = py2nb.script_to_notebook(SCRIPT)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[0].source == "# Title\n\nSome *text*."
    assert nb.cells[2].metadata["tags"] == ["raises-exception"]
    assert py2nb.script_to_notebook(py2nb.notebook_to_script(nb)).cells == nb.cells


def test_gpu_check_turns_every_checked_notebook_into_a_script():
    import gpu_check

    assert set(gpu_check.CPU_CHECKS) <= {Path(nb).stem for nb, _ in gpu_check.CHECKS}
    for notebook, profile in gpu_check.CHECKS:
        assert profile in ("full", "laptop", "smoke")
        script = gpu_check.notebook_to_script(ROOT / notebook)
        compile(script, notebook, "exec")  # no magic left behind
        assert "%pip" not in script
    ddp = gpu_check.notebook_to_script(ROOT / "chapters/part5_performance/04_ddp.ipynb")
    assert "open('train_ddp.py', 'w').write(" in ddp  # %%writefile became a write


def test_repository_url_install_ref_and_version_agree():
    import d2lmini

    version = d2lmini.__version__
    pyproject = re.search(r'^version\s*=\s*"([^"]+)"',
                          (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)  # fmt: skip
    assert pyproject and pyproject[1] == version, "pyproject.toml and d2lmini.__version__"
    assert bootstrap_cell.d2lmini_version() == version
    assert bootstrap_cell.install_ref() == f"v{version}"
    url = bootstrap_cell.repository_url()
    cell = bootstrap_cell.bootstrap_source()
    if url:
        assert f'book = "{url}"' in cell and f"git+{{book}}@v{version}" in cell
        if (ROOT / ".git").exists():  # a clone: the release step created the tag
            tag = subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/tags/v{version}"],
                                 cwd=ROOT, capture_output=True)  # fmt: skip
            assert tag.returncode == 0, (
                f"repository.url is set but tag v{version} is missing: see CONTRIBUTING.md, "
                "Releasing"
            )
    else:
        assert "git+" not in cell and "D2LMINI_SOURCE" in cell and "pip install -e ." in cell


def test_bootstrap_cell_follows_the_configured_url():
    published = bootstrap_cell.bootstrap_source("https://github.com/o/r", "1.2.3")
    assert 'book = "https://github.com/o/r"' in published
    assert 'f"d2lmini @ git+{book}@v1.2.3"' in published
    unpublished = bootstrap_cell.bootstrap_source("", "1.2.3")
    assert "raise ModuleNotFoundError" in unpublished and "github" not in unpublished
    for source in (published, unpublished):
        assert max(len(line) for line in source.splitlines()) <= 88
        compile(source.replace("%pip", "pass  #"), "cell", "exec")  # valid Python


def test_repository_url_must_be_https(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: git@github.com:o/r\n")
    with pytest.raises(ValueError, match="https://"):
        bootstrap_cell.repository_url(tmp_path)
    (tmp_path / "_config.yml").write_text("repository:\n  url: ''\n")
    assert bootstrap_cell.repository_url(tmp_path) == ""


PLACEHOLDER = "<this " + "repository>"  # split, so this file does not contain it


def test_readme_takes_the_url_from_the_config_and_has_no_placeholder():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert bootstrap_cell.readme_clone_line() in readme, (
        "README.md's clone line is out of date: run tools/bootstrap_cell.py"
    )
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    for name in tracked.stdout.split() or ["README.md", "CONTRIBUTING.md"]:
        path = ROOT / name
        if path.suffix in {".md", ".py", ".ipynb", ".yml", ".txt"} and path.is_file():
            assert PLACEHOLDER not in path.read_text(encoding="utf-8"), name


def test_readme_is_short_and_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.split()) < 600, "README.md: keep it under 600 words (move the rest)"
    first_screen = "\n".join(readme.splitlines()[:30])
    assert "make book" in first_screen and "make test" in first_screen
    assert (ROOT / "LICENSE").is_file() and "LICENSE" in readme


def test_oldest_requirements_pin_each_lower_bound_to_its_oldest_series():
    import oldest_requirements

    text = "-r other.txt\ntorch>=2.3\nnumpy >= 1.24  # comment\nselenium>=4.10\n\n"
    assert oldest_requirements.oldest_pins(text) == ["torch==2.3.*", "numpy==1.24.*"]
    with pytest.raises(ValueError, match="lower bound"):
        oldest_requirements.oldest_pins("torch==2.3.1\n")
    pins = oldest_requirements.oldest_pins((ROOT / "requirements.txt").read_text("utf-8"))
    assert any(pin.startswith("torch==") for pin in pins)
    assert any(pin.startswith("torchvision==") for pin in pins)
