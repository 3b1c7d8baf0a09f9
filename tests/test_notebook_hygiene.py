"""The book's notebook conventions (CONTRIBUTING.md), checked for every notebook.

These read the committed notebooks; they do not run them (nbval does that).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bootstrap_cell  # noqa: E402
import toc  # noqa: E402

NOTEBOOKS = sorted(
    p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
IDS = [str(p.relative_to(ROOT / "chapters")) for p in NOTEBOOKS]
MACHINE_PATH = re.compile(r"(/root/|/work/|/tmp/|/home/[a-z]|/Users/[A-Za-z]|[A-Z]:\\\\Users)")
DATA_UPDATE = re.compile(r"\.data\s*[-+*/]?=[^=]|\.data\.\w+_\(")
MIN_ASSERT_CELLS = {
    "part2_computation": 3,
    "part3_cnn": 3,
    "part4_modern_cnn": 3,
    "part5_performance": 3,
    "part6_deployment": 3,
}
MAX_LINE = 88  # characters of code or output visible without scrolling at 1280 px


def toc_files() -> set[str]:
    return set(toc.toc_files(ROOT))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def output_text(output) -> str:
    text = output.get("text", "") + "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    return text + data.get("text/plain", "") + data.get("text/html", "")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under chapters/"


def test_toc_and_notebooks_agree():
    listed = toc_files()
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS}
    assert on_disk - listed == set(), "notebooks missing from _toc.yml"
    for entry in listed:
        candidates = [ROOT / f"{entry}{ext}" for ext in (".ipynb", ".md")]
        assert any(c.exists() for c in candidates), f"_toc.yml lists missing file {entry}"


@pytest.fixture(params=NOTEBOOKS, ids=IDS)
def nb(request):
    notebook = nbformat.read(request.param, as_version=4)
    notebook.path = request.param
    return notebook


def test_stored_outputs_come_from_one_clean_run(nb):
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        "execution counts are not 1..n: run `make execute NB=...` (restart and run all)"
    )


def test_no_errors_warnings_machine_paths_or_smoke_outputs(nb):
    for i, cell in enumerate(code_cells(nb)):
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        for out in cell.outputs:
            where = f"code cell {i + 1}"
            if out.output_type == "error":
                assert tagged, f"{where}: error output without the raises-exception tag"
            text = output_text(out)
            if out.get("name") == "stderr":
                assert "Warning" not in text, f"{where}: warning on stderr: {text[:200]}"
            assert not MACHINE_PATH.search(text), f"{where}: machine path in output"
            assert not re.search(r"profile\W{0,3}smoke", text), f"{where}: smoke-profile output"
        if tagged:
            assert any(o.output_type == "error" for o in cell.outputs), (
                f"code cell {i + 1} is tagged raises-exception but raised nothing"
            )


def test_no_stray_count_from_a_file_write(nb):
    """A cell ending in ``path.write_text(...)`` shows the number of characters written."""
    for i, cell in enumerate(code_cells(nb)):
        last = cell.source.strip().splitlines()[-1] if cell.source.strip() else ""
        shown = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert not (shown and re.search(r"\.write(_text|_bytes)?\(", last)), (
            f"code cell {i + 1} shows the return value of {last.strip()!r}: end it with `;` "
            "or assign the result"
        )


def test_first_code_cell_installs_d2lmini_when_missing(nb):
    first = code_cells(nb)[0]
    assert first.source == bootstrap_cell.bootstrap_source(), (
        "the first code cell must be the bootstrap cell: run tools/bootstrap_cell.py"
    )
    assert first.outputs == [], "the bootstrap cell prints only where d2lmini is missing"


def test_env_info_comes_from_laptop_or_full(nb):
    setup = code_cells(nb)[1]
    assert "env_info()" in setup.source, "the second code cell must call d2lmini.env_info()"
    text = "".join(output_text(o) for o in setup.outputs)
    assert re.search(r"torch \S+ \| torchvision \S+ \| device .+ \| profile (laptop|full) \|", text)


def test_opening_and_closing_sections(nb):
    opening = nb.cells[0]
    assert opening.cell_type == "markdown" and opening.source.startswith("# ")
    assert "What you will learn" in opening.source and "Prerequisites" in opening.source
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"^## Summary", markdown, re.M), "missing '## Summary'"
    exercises = markdown.split("## Exercises", 1)
    assert len(exercises) == 2, "missing '## Exercises'"
    solutions = exercises[1].count("<details>")
    assert 2 <= solutions <= 4, f"want 2-4 exercises with <details> solutions, got {solutions}"


def test_claims_are_asserted(nb):
    part = nb.path.parent.name
    needed = MIN_ASSERT_CELLS.get(part, 2)
    asserting = [c for c in code_cells(nb) if re.search(r"\bassert\b|assert_close", c.source)]
    assert len(asserting) >= needed, f"{len(asserting)} assertion cells, want >= {needed}"


def test_current_pytorch_idioms(nb):
    for i, cell in enumerate(code_cells(nb)):
        src = cell.source
        if "pitfall" not in src:  # a cell that demonstrates a pitfall says so
            assert not DATA_UPDATE.search(src), f"code cell {i + 1}: update through .data"
        for call in re.finditer(r"torch\.load\(", src):
            tail = src[call.end() : call.end() + 300]
            assert "weights_only=" in tail.split("\n)")[0], (
                f"code cell {i + 1}: torch.load without an explicit weights_only="
            )
        if "pitfall" not in src:
            assert "pretrained=" not in src, f"code cell {i + 1}: use weights= not pretrained="


def test_check_output_is_a_tag_not_a_comment(nb):
    for i, cell in enumerate(code_cells(nb)):
        assert "NBVAL" not in cell.source, (
            f"code cell {i + 1}: mark checked outputs with the tag nbval-check-output, "
            "not a comment the reader sees"
        )


def test_lines_fit_the_page(nb):
    for i, cell in enumerate(code_cells(nb)):
        long_code = [line for line in cell.source.splitlines() if len(line) > MAX_LINE]
        assert not long_code, f"code cell {i + 1}: line over {MAX_LINE} chars: {long_code[0]}"
        for out in cell.outputs:
            if out.output_type == "error":
                continue
            text = out.get("text", "") + out.get("data", {}).get("text/plain", "")
            long_out = [line for line in text.splitlines() if len(line) > MAX_LINE]
            assert not long_out, (
                f"code cell {i + 1}: output line over {MAX_LINE} chars: {long_out[0]}"
            )


def test_one_box_per_stream(nb):
    for i, cell in enumerate(code_cells(nb)):
        names = [o.get("name") if o.output_type == "stream" else None for o in cell.outputs]
        split = [a for a, b in zip(names, names[1:]) if a is not None and a == b]
        assert not split, f"code cell {i + 1}: {split[0]} split in two outputs (re-run it)"


# --- Assertions that cannot fail -------------------------------------------------------
# A cheap lint for the commonest shapes of an assertion that is true by construction; the
# review checklist in CONTRIBUTING.md covers what a lint cannot see.
SETTERS = {"zero_", "fill_", "copy_", "zeros_", "ones_", "constant_", "normal_", "uniform_"}


def _python(source: str) -> ast.Module | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _asserted(stmt: ast.stmt) -> list[ast.expr] | None:
    """The expressions a statement asserts: ``assert e`` or ``...assert_close(a, b)``."""
    if isinstance(stmt, ast.Assert):
        return [stmt.test]
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name.startswith("assert"):
            return list(stmt.value.args)
    return None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _same_on_both_sides(exprs: list[ast.expr]) -> bool:
    pairs = []
    if len(exprs) == 2:
        pairs.append(tuple(exprs))
    for e in exprs:
        if isinstance(e, ast.Compare) and len(e.comparators) == 1:
            pairs.append((e.left, e.comparators[0]))
        if isinstance(e, ast.Call) and len(e.args) == 2:
            pairs.append(tuple(e.args))
    return any(ast.dump(a) == ast.dump(b) for a, b in pairs)


def _set_just_before(prev: ast.stmt, exprs: list[ast.expr]) -> str | None:
    """What ``prev`` set in place (``x.grad.zero_()``) or to a literal, if the assertion
    reads nothing else."""
    target = None
    if isinstance(prev, ast.Expr) and isinstance(prev.value, ast.Call):
        func, args = prev.value.func, prev.value.args
        if isinstance(func, ast.Attribute) and func.attr in SETTERS:
            if args and _names(func.value) <= {"nn", "init", "torch"}:
                target = args[0]  # nn.init.zeros_(w)
            else:
                target = func.value  # x.grad.zero_()
    elif isinstance(prev, ast.Assign) and isinstance(prev.value, ast.Constant):
        if len(prev.targets) == 1:
            target = prev.targets[0]
    if target is None:
        return None
    covered: set[int] = set()
    for e in exprs:
        for node in ast.walk(e):
            if ast.dump(node) == ast.dump(target):
                covered |= {id(n) for n in ast.walk(node)}
    free = {
        n.id for e in exprs for n in ast.walk(e) if isinstance(n, ast.Name) and id(n) not in covered
    } - {"torch", "np", "math", "len", "abs", "float", "int", "bool"}
    return ast.unparse(target) if covered and not free else None


def test_no_assertion_true_by_construction(nb):
    for i, cell in enumerate(code_cells(nb)):
        tree = _python(cell.source)
        if tree is None:
            continue
        for body in [tree.body] + [
            n.body
            for n in ast.walk(tree)
            if hasattr(n, "body") and isinstance(n.body, list) and n is not tree
        ]:
            for prev, stmt in zip([None, *body], body):
                exprs = _asserted(stmt)
                if not exprs:
                    continue
                where = f"code cell {i + 1}, line {stmt.lineno}"
                assert not (len(exprs) == 1 and isinstance(exprs[0], ast.Constant)), (
                    f"{where}: asserts a constant"
                )
                assert not _same_on_both_sides(exprs), f"{where}: compares a thing with itself"
                if prev is not None:
                    name = _set_just_before(prev, exprs)
                    assert name is None, (
                        f"{where}: asserts only {name!r}, which the line before just set"
                    )


# Parts whose figures may lack captions and alt text (none left); the book falls back to
# the text in the SVG (book/_ext/d2lmini_figures.py).
FIGURES_PENDING: set[str] = set()


def test_every_figure_has_a_caption_a_name_and_alt_text(nb):
    if nb.path.parent.name in FIGURES_PENDING:
        pytest.skip("captions and alt text pending for this part")
    for i, cell in enumerate(code_cells(nb)):
        if not any(k.startswith("image/") for o in cell.outputs for k in o.get("data", {})):
            continue
        options = cell.metadata.get("mystnb", {})
        figure, image = options.get("figure", {}), options.get("image", {})
        where = f"code cell {i + 1} draws a figure"
        assert figure.get("caption") and str(figure.get("name", "")).startswith("fig-"), (
            f"{where}: give it metadata mystnb.figure.caption and .name (fig-...)"
        )
        alt = str(image.get("alt", ""))
        assert len(alt.split()) >= 5 and not re.search(r"\.(svg|png)\b", alt), (
            f"{where}: mystnb.image.alt must say what the figure shows"
        )
