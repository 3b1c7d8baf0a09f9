import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

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
