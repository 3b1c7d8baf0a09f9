"""d2lmini stays small: a budget of code lines and short docstrings (issue: second design)."""

import ast
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "d2lmini"
CODE_LINE_BUDGET = 2_200
DOCSTRING_LINES = 25


def docstrings(tree: ast.AST) -> list[ast.Constant]:
    nodes = [tree, *ast.walk(tree)]
    bodies = [
        n.body
        for n in nodes
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return [
        body[0].value
        for body in bodies
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ]  # fmt: skip


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    tree = ast.parse(source)
    skip = set()
    for doc in docstrings(tree):
        skip.update(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                          tokenize.DEDENT, tokenize.ENDMARKER):  # fmt: skip
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - skip)


def test_code_lines_count_what_they_should():
    source = (
        '"""Module doc."""\n\n# a comment\ndef f(x):\n    """Doc\n    more."""\n'
        "    return (x +\n            1)  # why\n"
    )
    assert code_lines(source) == 3  # def, return and its continuation


def test_d2lmini_fits_its_line_budget():
    counts = {p.name: code_lines(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}
    total = sum(counts.values())
    print(f"d2lmini: {total} code lines (budget {CODE_LINE_BUDGET}): {counts}")
    assert total <= CODE_LINE_BUDGET, f"{total} code lines, over the budget of {CODE_LINE_BUDGET}"


def test_no_docstring_is_longer_than_the_reference_can_show():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for doc in docstrings(ast.parse(path.read_text())):
            n = (doc.end_lineno or doc.lineno) - doc.lineno + 1
            if n > DOCSTRING_LINES:
                long.append(f"{path.name}:{doc.lineno} ({n} lines)")
    assert not long, f"docstrings over {DOCSTRING_LINES} lines: {long}"
