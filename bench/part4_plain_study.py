"""Part IV, first edition: the plain recipe of each CNN, tuned on validation, 3 seeds.

    nice -n 10 .venv/bin/python bench/part4_plain_study.py

The second edition's recipe is studied by bench/part4_study.py.

Every network of Part IV is trained the way its chapter's ``laptop`` profile trains it:
on 28×28 images (32×32 for VGG, whose five blocks each halve the image), with the narrow
widths below, for a fixed number of epochs. The recipe is the same for all of them:
SGD with momentum (``OneCycleLR`` cycles it from 0.95 to 0.85 and back) and weight
decay 5e-4, batch 128 (BN-LeNet: 256, d2l's), a one-cycle learning-rate schedule
stepped after every batch (``OneCycleLR``),
Xavier-uniform weights (``d2lmini.init_cnn``). The chapters' ``full`` profiles keep d2l's
own settings (plain SGD, constant rate, d2l's image sizes) for a GPU.

1. Tuning: for each model, every peak learning rate of its grid is trained with
   seed 0 on 50,000 training images and scored on the 10,000 held-out validation images
   (``d2lmini.load_fashion_mnist_splits(batch, val_size=10_000, seed=0)``). The higher
   validation accuracy after the last epoch wins; the test set is not used.
2. Testing: the chosen rate, trained on all 60,000 training images with seeds 0, 1, 2; the
   test accuracy after the last epoch is reported.

Runs are spread over ``--jobs`` worker processes (default 2) with one thread each, and
cached in bench/_cache/part4_study/ (git-ignored), so an interrupted study goes on where it
stopped. Results: bench/part4_study.md (report) and bench/part4_study.json (every number).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import platform
import re
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import d2lmini
from d2lmini import cnn

HERE = Path(__file__).resolve().parent
CACHE = HERE / "_cache" / "part4_plain_study"
SEEDS = (0, 1, 2)
#: The published median test accuracy of d2l 0.17 (see the chapters), the laptop targets.
TARGETS = dict(alexnet=0.881, vgg=0.919, nin=0.851, googlenet=0.889, bn_lenet=0.849,
               resnet18=0.913, densenet=0.870)  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """How one model is trained in its chapter's ``laptop`` profile."""

    name: str
    build: Callable[[], nn.Module]
    resize: int | None
    batch_size: int
    num_epochs: int
    grid: tuple[float, ...]
    one_cycle: bool = True


RECIPES = {
    r.name: r
    for r in [
        Recipe("AlexNet (28×28 design)", cnn.alexnet_28, None, 128, 8, (0.02, 0.05)),
        Recipe(
            "VGG-11, width 1/8",
            lambda: cnn.vgg(image_size=32, num_hiddens=256, width=1 / 8),
            32,
            128,
            10,
            (0.02, 0.05),
        ),
        Recipe(
            "NiN, width 1/6",
            lambda: cnn.nin((3, 1, 1), width=1 / 6, final_relu=False),
            None,
            128,
            5,
            (0.02, 0.05, 0.1),
        ),
        Recipe(
            "GoogLeNet, width 1/4",
            lambda: cnn.googlenet(1 / 4),
            None,
            128,
            6,
            (0.01, 0.02, 0.05, 0.1),
        ),
        Recipe("BN-LeNet (nn.BatchNorm)", cnn.bn_lenet, None, 256, 10, (0.1, 0.3)),
        Recipe("ResNet-18, width 1/4", lambda: cnn.resnet18(1 / 4), None, 128, 8, (0.1, 0.2)),
        Recipe(
            "DenseNet, growth 16", lambda: cnn.densenet(16, 32, (4, 4, 4)), None, 128, 6, (0.1, 0.2)
        ),
    ]
}
KEYS = dict(zip(TARGETS, RECIPES))  # short key -> recipe name
#: Rough training cost (1-thread seconds per run), to start the longest runs first.
COST = dict(alexnet=200, vgg=220, nin=200, googlenet=200, bn_lenet=40, resnet18=180,
            densenet=190)  # fmt: skip


def fit(key: str, lr: float, seed: int, train_iter, eval_iter) -> d2lmini.History:
    recipe = RECIPES[KEYS[key]]
    d2lmini.seed_everything(seed)
    net = recipe.build()
    net.apply(d2lmini.init_cnn)
    plain = (
        d2lmini.Recipe(lr, "one_cycle", momentum=0.9, weight_decay=5e-4)
        if recipe.one_cycle
        else d2lmini.Recipe(lr)
    )
    return d2lmini.train(
        net, train_iter, eval_iter, recipe.num_epochs, device="cpu", recipe=plain, display=False
    )


def run(job: tuple[str, str, float, int]) -> dict[str, Any]:
    """One training run: ``("tune" | "test", model key, learning rate, seed)``."""
    kind, key, lr, seed = job
    recipe = RECIPES[KEYS[key]]
    schedule = "onecycle" if recipe.one_cycle else "constant"
    version = torch.__version__.split("+")[0]
    path = CACHE / f"{kind}-{key}-{schedule}-lr{lr}-seed{seed}-torch{version}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    d2lmini.keep_freed_memory()
    if kind == "tune":
        splits = d2lmini.load_fashion_mnist_splits(recipe.batch_size, resize=recipe.resize)
        train_iter, eval_iter = splits.train, splits.val
    else:
        train_iter, eval_iter = d2lmini.load_data_fashion_mnist(
            recipe.batch_size, resize=recipe.resize
        )
    try:
        hist = fit(key, lr, seed, train_iter, eval_iter)
        result = dict(
            kind=kind,
            model=key,
            lr=lr,
            seed=seed,
            acc=hist.test_acc,
            train_acc=hist.train_acc,
            train_seconds=hist.train_seconds,
        )
    except FloatingPointError as err:
        result = dict(kind=kind, model=key, lr=lr, seed=seed, acc=None,
                      diverged=str(err).split(":")[0])  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(result))
    path.with_suffix(".tmp").replace(path)
    final = f"{result['acc'][-1]:.4f}" if result["acc"] else "diverged"
    print(f"  {kind} {key} lr {lr} seed {seed}: {final}", flush=True)
    return result


def last(result: dict[str, Any]) -> float:
    return result["acc"][-1] if result["acc"] else 0.0


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Part IV study: laptop recipes chosen on validation data, test accuracy per seed",
        "",
        "Written by `bench/part4_plain_study.py` (every number also in "
        "`bench/part4_plain_study.json`); "
        "the recipe and the method are in that script's docstring. It backs the per-seed "
        "numbers of the chapters of Part IV.",
        "",
        f"Environment: `{report['env']}`, Python {report['python']}.",
        "",
        "## Recipes",
        "",
        "| model | parameters | image | batch | epochs | schedule | lr grid |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["recipes"].values():
        lines.append(
            f"| {r['name']} | {r['parameters']:,} | {r['resize'] or 28} | {r['batch_size']} "
            f"| {r['num_epochs']} | {'one-cycle SGD' if r['one_cycle'] else 'constant'}"
            f" | {', '.join(map(str, r['grid']))} |"
        )
    lines += ["", "## Tuning (seed 0, validation accuracy after the last epoch)", "",
              "| model | peak lr | val acc |", "|---|---|---|"]  # fmt: skip
    for key, runs in report["tuning"].items():
        for r in runs:
            mark = " **(chosen)**" if r["lr"] == report["chosen"][key] else ""
            acc = f"{last(r):.4f}" if r["acc"] else f"diverged ({r['diverged']})"
            lines.append(f"| {report['recipes'][key]['name']} | {r['lr']} | {acc}{mark} |")
    lines += ["", "## Test accuracy per seed (chosen rate, 60,000 training images)", "",
              "| model | seed | test acc | train s (1 thread) | d2l median | clears it |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for key, runs in report["test"].items():
        for r in runs:
            lines.append(
                f"| {report['recipes'][key]['name']} | {r['seed']} | {last(r):.4f} "
                f"| {r.get('train_seconds', 0):.0f} | {TARGETS[key]} "
                f"| {'yes' if last(r) >= TARGETS[key] else 'no'} |"
            )
    lines += [
        "",
        "## Summary (test accuracy after the last epoch, 3 seeds)",
        "",
        "| model | mean | min | max | d2l median |",
        "|---|---|---|---|---|",
    ]
    for key, runs in report["test"].items():
        accs = [last(r) for r in runs]
        lines.append(
            f"| {report['recipes'][key]['name']} | {statistics.mean(accs):.4f} "
            f"| {min(accs):.4f} | {max(accs):.4f} | {TARGETS[key]} |"
        )
    edges = [
        report["recipes"][k]["name"]
        for k, lr in report["chosen"].items()
        if lr in (min(report["recipes"][k]["grid"]), max(report["recipes"][k]["grid"]))
    ]
    if edges:
        lines += ["", f"The chosen rate is at an edge of its grid for: {', '.join(edges)}."]
    lines += [
        "",
        "Training seconds count all epochs with one thread per process, on a "
        "machine shared with other work (data included, evaluation excluded): rough "
        "ratios between models, not the chapters' timings (those are printed in "
        "each chapter).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--only", nargs="*", default=list(KEYS), choices=list(KEYS))
    parser.add_argument("--out", type=Path, default=HERE / "part4_plain_study")
    args = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):
        env = d2lmini.env_info()
    env = re.sub(r"profile \w+ \| threads \d+", f"{args.jobs} processes x 1 thread", env)
    print(env, flush=True)
    keys = args.only
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        tune_jobs = [("tune", k, lr, 0) for k in keys for lr in RECIPES[KEYS[k]].grid]
        tune_jobs.sort(key=lambda job: COST[job[1]], reverse=True)
        tuning: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for result in pool.map(run, tune_jobs):
            tuning[result["model"]].append(result)
        chosen = {k: max(runs, key=last)["lr"] for k, runs in tuning.items()}
        print(f"chosen: {chosen}", flush=True)
        test_jobs = [("test", k, chosen[k], s) for k in keys for s in SEEDS]
        test_jobs.sort(key=lambda job: COST[job[1]], reverse=True)
        test: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for result in pool.map(run, test_jobs):
            test[result["model"]].append(result)
    recipes = {}
    for k in keys:
        r = RECIPES[KEYS[k]]
        info = {f: v for f, v in asdict(r).items() if f != "build"}
        recipes[k] = dict(info, parameters=d2lmini.count_parameters(r.build()))
    report = dict(env=env, python=platform.python_version(), recipes=recipes,
                  tuning=tuning, chosen=chosen, test=test)  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {args.out.with_suffix('.md')} and .json", flush=True)


if __name__ == "__main__":
    main()
