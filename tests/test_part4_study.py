"""The study numbers that Part IV's chapters quote are bench/part4_study.json's."""

import ast
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDY = json.loads((ROOT / "bench" / "part4_study.json").read_text())["models"]
CHAPTERS = {  # chapter -> the study's model key
    "01_alexnet": "alexnet",
    "02_vgg": "vgg",
    "03_nin": "nin",
    "04_googlenet": "googlenet",
    "05_batch_norm": "bn_lenet",
    "06_resnet": "resnet18",
    "07_densenet": "densenet",
}


def quoted_study(chapter: str) -> dict:
    """The ``study = dict(...)`` of a chapter, as a dict of literals."""
    nb = nbformat.read(ROOT / "chapters" / "part4_modern_cnn" / f"{chapter}.ipynb", 4)
    calls = [
        node.value
        for cell in nb.cells
        if cell.cell_type == "code" and cell.source.startswith("study = dict(")
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "study"
    ]
    assert len(calls) == 1, f"{chapter}: expected one `study = dict(...)` cell"
    return {kw.arg: ast.literal_eval(kw.value) for kw in calls[0].keywords}


def measured(key: str) -> dict:
    entry = STUDY[key]
    lr = entry["chosen"]["lr"]
    tests = sorted((t for t in entry["test"] if t["lr"] == lr), key=lambda t: t["seed"])
    return dict(
        grid={t["lr"]: round(t["acc"][-1], 4) if t["acc"] else None for t in entry["tuning"]},
        lr=lr,
        test_acc=tuple(round(t["acc"][-1], 4) for t in tests),
        train_seconds=tuple(round(t["train_seconds"]) for t in tests),
        target=entry["target"],
    )


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_chapter_quotes_the_study(chapter):
    quoted, truth = quoted_study(chapter), measured(CHAPTERS[chapter])
    assert len(truth["test_acc"]) == 3, "the study has not tested 3 seeds yet"
    for field, value in truth.items():
        assert quoted[field] == value, f"{chapter}: study[{field!r}]"
