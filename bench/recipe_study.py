"""The training-recipes study: Part IV's recipe built one ingredient at a time on LeNet.

    .venv/bin/python bench/recipe_study.py [--jobs 2]

The network is the modern LeNet of Part III (ReLU, max pooling), 10 epochs, batch 128.
Each step of the ladder adds one ingredient to the step before it; every step is
trained with seeds 0, 1 and 2 on 55,000 training images and scored on the 5,000
validation images (the test set is not used). Two steps change the optimizer, so their
learning rate is chosen on seed 0 over a grid; every later step keeps the rate of the
last tuned step, so that only its ingredient changes. The batch-size rows change the
full recipe's batch and scale the rate with it (the linear scaling rule).

Finished runs are written to bench/recipe_study.json at once and skipped when the
study runs again; bench/recipe_study.md is the report.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from part4_study import Study, final, train_once
from torch import nn

import d2lmini

HERE = Path(__file__).resolve().parent
OUT = HERE / "recipe_study"
SEEDS = (0, 1, 2)
EPOCHS = 10


def modern_lenet() -> nn.Module:
    return d2lmini.lenet(nn.ReLU, nn.MaxPool2d)


#: (name, what it adds, init, Recipe fields, learning-rate grid or None, batch size).
#: A grid of None keeps the last tuned rate (scaled by batch / 128).
LADDER: list[tuple[str, str, str, dict[str, Any], tuple[float, ...] | None, int]] = [
    ("plain", "d2l: SGD at a constant rate, Xavier init", "xavier", {},
     (0.1, 0.3, 0.9), 128),
    ("one_cycle", "+ Nesterov momentum and a one-cycle schedule", "xavier",
     dict(schedule="one_cycle", momentum=0.9, nesterov=True), (0.025, 0.05, 0.1, 0.2), 128),
    ("kaiming", "+ Kaiming initialisation", "kaiming", {}, None, 128),
    ("weight_decay", "+ weight decay 5e-4", "kaiming", dict(weight_decay=5e-4), None, 128),
    ("smoothing", "+ label smoothing 0.1", "kaiming", dict(label_smoothing=0.1), None, 128),
    ("shift", "+ random shifts by up to 2 pixels", "kaiming", dict(shift=2), None, 128),
    ("flip", "+ random horizontal flips", "kaiming", dict(flip=True), None, 128),
    ("flip_test", "+ flip test-time augmentation (the full recipe)", "kaiming",
     dict(flip_test=True), None, 128),
    ("batch_64", "the full recipe, batch 64 (rate / 2)", "kaiming", {}, None, 64),
    ("batch_256", "the full recipe, batch 256 (rate x 2)", "kaiming", {}, None, 256),
]  # fmt: skip


def steps() -> dict[str, dict[str, Any]]:
    """Each step's description: its init, cumulative Recipe fields, grid and batch."""
    fields: dict[str, Any] = {}
    out = {}
    for name, adds, init, changes, grid, batch in LADDER:
        if not name.startswith("batch_"):
            fields = {**fields, **changes}
        grid_list = list(grid) if grid is not None else None
        out[name] = dict(adds=adds, init=init, recipe=dict(fields), grid=grid_list, batch=batch)
    return out


def study_for(step: dict[str, Any]) -> Study:
    return Study("lenet", "lenet(nn.ReLU, nn.MaxPool2d)", modern_lenet, 28, EPOCHS, (),
                 step["init"], step["batch"])  # fmt: skip


def run(job: tuple[str, float, int]) -> dict[str, Any]:
    name, lr, seed = job
    step = steps()[name]
    return train_once(study_for(step), d2lmini.Recipe(lr, **step["recipe"]), "tune", seed)


def rate(name: str, report: dict[str, Any]) -> float | None:
    """The step's learning rate: tuned on seed 0, or the last tuned step's (scaled)."""
    last_tuned = None
    for step_name, step in report["steps"].items():
        if step["grid"] is not None:
            last_tuned = step_name
        if step_name == name:
            break
    assert last_tuned is not None
    tuned = report["steps"][last_tuned]
    runs = [r for r in tuned["runs"] if r["seed"] == 0 and r["lr"] in tuned["grid"]]
    if len(runs) < len(tuned["grid"]):
        return None  # still tuning
    lr = max(runs, key=final)["lr"]
    return lr if name == last_tuned else lr * report["steps"][name]["batch"] / 128


def pending(report: dict[str, Any]) -> list[tuple[str, float, int]]:
    jobs = []
    for name, step in report["steps"].items():
        done = {(r["lr"], r["seed"]) for r in step["runs"]}
        if step["grid"] is not None:
            jobs += [(name, lr, 0) for lr in step["grid"] if (lr, 0) not in done]
        lr = rate(name, report)
        if lr is not None:
            jobs += [(name, lr, s) for s in SEEDS if (lr, s) not in done]
    return jobs


def summary(name: str, report: dict[str, Any]) -> dict[str, Any] | None:
    lr = rate(name, report)
    runs = sorted(report["steps"][name]["runs"], key=lambda r: r["seed"])
    accs = [final(r) for r in runs if r["lr"] == lr]
    if lr is None or len(accs) < len(SEEDS):
        return None
    return dict(lr=lr, accs=accs, mean=statistics.mean(accs), min=min(accs), max=max(accs))


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Training recipes: one ingredient at a time (modern LeNet, validation accuracy)",
        "",
        "Written by `bench/recipe_study.py` (method in its docstring; every number in "
        "`bench/recipe_study.json`).",
        "",
        "| step | adds | lr | mean | min | max | train s (1 thread) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, step in report["steps"].items():
        s = summary(name, report)
        seconds = [r["train_seconds"] for r in step["runs"] if s and r["lr"] == s["lr"]]
        cells = (
            f"{s['lr']:g} | {s['mean']:.4f} | {s['min']:.4f} | {s['max']:.4f} "
            f"| {statistics.mean(seconds):.0f}"
            if s
            else "- | - | - | - | -"
        )
        lines.append(f"| {name} | {step['adds']} | {cells} |")
    return "\n".join(lines) + "\n"


def save(report: dict[str, Any]) -> None:
    for name, step in report["steps"].items():
        step["summary"] = summary(name, report)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(OUT.with_suffix(".json"))
    OUT.with_suffix(".md").write_text(markdown(report))


def load() -> dict[str, Any]:
    path = OUT.with_suffix(".json")
    old = json.loads(path.read_text())["steps"] if path.exists() else {}
    report: dict[str, Any] = dict(epochs=EPOCHS, network="lenet(nn.ReLU, nn.MaxPool2d)")
    report["steps"] = {}
    for name, step in steps().items():
        kept = {k: v for k, v in old.get(name, {}).items() if k not in ("runs", "summary")}
        same = {**kept, "grid": step["grid"]} == step  # a wider grid keeps the runs
        report["steps"][name] = dict(step, runs=old[name]["runs"] if same else [])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side")
    args = parser.parse_args()
    report = load()
    save(report)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        running: dict[Future[dict[str, Any]], tuple[str, float, int]] = {}
        while True:
            for job in pending(report):
                if job not in running.values():
                    running[pool.submit(run, job)] = job
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name, lr, seed = running.pop(future)
                result = future.result()
                report["steps"][name]["runs"].append(result)
                save(report)
                print(f"{name} lr {lr:g} seed {seed}: {final(result):.4f}", flush=True)
    print(f"wrote {OUT.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
