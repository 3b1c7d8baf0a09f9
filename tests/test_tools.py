import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import py2nb  # noqa: E402

SCRIPT = '''# %% [markdown]
# # Title
#
# Some *text*.

# %%
x = 1

# %% tags=["raises-exception"]
1 / 0
'''


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
