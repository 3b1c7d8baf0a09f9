"""LeNet study: choose each model's learning rate on a validation split, then test 3 seeds.

    nice -n 10 .venv/bin/python bench/lenet_study.py

The models are studied by ``--jobs`` worker processes (default 2) with one thread each:
on a shared or small machine one thread per process wastes far less time than threads
that wait for each other. Results do not depend on ``--jobs``; the report ends with the
training time of all runs together, which the workers share. Every finished training
run is cached in bench/_cache/lenet_study/ (git-ignored), so an interrupted study goes on
where it stopped; delete that folder to start from scratch.

Four models share one training budget, d2l 0.17's LeNet run: plain SGD, batch 256,
10 epochs, Xavier-uniform weights (``d2lmini.init_cnn``, PyTorch's default biases):

* softmax regression and the MLP of "Baseline classifiers" (ch. 2 of Part III);
* classic LeNet: d2l's simplified LeNet-5 (sigmoid, average pooling);
* modern LeNet: the same layout with ReLU and max pooling.

1. Tuning: for each model and each learning rate of a small grid, train on 50,000
   training images (``d2lmini.load_fashion_mnist_splits(256, val_size=10_000, seed=0)``)
   with seed 0 and read the accuracy on the 10,000 held-out validation images after the
   last epoch. Each rate is tried with and without a late drop (rate / 10 for the last two
   epochs). The best validation accuracy wins; the test set is not used.
2. Testing: with the chosen settings, train each model on all 60,000 training images
   with seeds 0, 1 and 2 and report the test accuracy after the last epoch.

Results go to bench/lenet_study.md (a report) and bench/lenet_study.json (every number).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import multiprocessing
import platform
import re
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

import d2lmini

HERE = Path(__file__).resolve().parent
CACHE = HERE / "_cache" / "lenet_study"
BATCH_SIZE, NUM_EPOCHS, DROP_EPOCHS = 256, 10, 2
SEEDS = (0, 1, 2)
GRIDS: dict[str, list[float]] = {
    "softmax": [0.03, 0.1, 0.3, 1.0],
    "mlp": [0.1, 0.3, 0.9, 2.7],
    "classic_lenet": [0.3, 0.9, 2.7, 8.1],
    "modern_lenet": [0.03, 0.1, 0.3, 0.9],
}
NAMES = {
    "softmax": "softmax regression",
    "mlp": "MLP (ch. 2)",
    "classic_lenet": "classic LeNet",
    "modern_lenet": "modern LeNet",
}


BUILDERS = {  # the models of the chapters, from d2lmini.models
    "softmax": d2lmini.softmax_regression,
    "mlp": d2lmini.mlp,
    "classic_lenet": d2lmini.lenet,
    "modern_lenet": lambda: d2lmini.lenet(nn.ReLU, nn.MaxPool2d),
}


def build(model: str, seed: int) -> nn.Module:
    """Seed (weights *and* the order of the mini-batches), build, initialise."""
    d2lmini.seed_everything(seed)
    net = BUILDERS[model]()
    net.apply(d2lmini.init_cnn)
    return net


def fit(net, train_iter, eval_iter, num_epochs, lr, drop: bool) -> d2lmini.History:
    drop_at = (num_epochs - DROP_EPOCHS) / num_epochs if drop else None
    recipe = d2lmini.Recipe(lr, drop_at=drop_at)  # times 0.1 for the last DROP_EPOCHS
    return d2lmini.train(
        net, train_iter, eval_iter, num_epochs, device="cpu", recipe=recipe, display=False
    )


def cached(key: str, compute) -> Any:
    """``compute()``, or its result from an earlier run of the study."""
    path = CACHE / f"{key}-torch{torch.__version__.split('+')[0]}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result


def diverged(err: FloatingPointError, lr: float, drop: bool) -> dict[str, Any]:
    """A tuning run that ``d2lmini.train`` stopped because the loss became NaN or inf."""
    return dict(lr=lr, drop=drop, val_acc=None, diverged=str(err).split(":")[0])


def tune_one(model: str, lr: float, splits, epochs: int) -> list[dict[str, Any]]:
    """The two tuning runs of one learning rate: without and with a late drop."""
    net = build(model, seed=0)
    # Both variants share the first epochs: train them once, then branch. Plain SGD keeps
    # no state, so a fresh optimizer continues the run exactly, and the RNG state (the
    # order of the mini-batches) is restored for the second branch.
    try:
        head = fit(net, splits.train, splits.val, epochs - DROP_EPOCHS, lr, drop=False)
    except FloatingPointError as err:
        return [diverged(err, lr, drop=False), diverged(err, lr, drop=True)]
    weights, rng = copy.deepcopy(net.state_dict()), torch.get_rng_state()
    runs = []
    for drop in (False, True):
        net.load_state_dict(weights)
        torch.set_rng_state(rng)
        try:
            tail = fit(net, splits.train, splits.val, DROP_EPOCHS,
                       lr / 10 if drop else lr, drop=False)  # fmt: skip
        except FloatingPointError as err:
            runs.append(diverged(err, lr, drop))
            continue
        runs.append(dict(
            lr=lr, drop=drop, val_acc=head.test_acc + tail.test_acc,
            train_seconds=head.train_seconds + tail.train_seconds,
            shared_seconds=head.train_seconds,
        ))  # fmt: skip
    return runs


def last_val_acc(run: dict[str, Any]) -> float:
    """Validation accuracy after the last epoch; a diverged run counts as 0."""
    return run["val_acc"][-1] if run["val_acc"] else 0.0


def describe(run: dict[str, Any]) -> str:
    return f"{last_val_acc(run):.4f}" if run["val_acc"] else f"diverged ({run['diverged']})"


def tune(model: str, splits, epochs: int) -> list[dict[str, Any]]:
    """Validation accuracy per epoch for every grid point (seed 0)."""
    runs = []
    for lr in GRIDS[model]:
        new = cached(
            f"tune-{model}-lr{lr}-e{epochs}-drop{DROP_EPOCHS}",
            lambda lr=lr: tune_one(model, lr, splits, epochs),
        )
        runs += new
        print(f"  {model} lr {lr}: " + ", ".join(
            f"{'drop' if r['drop'] else 'const'} {describe(r)}" for r in new
        ), flush=True)  # fmt: skip
    return runs


def test_one(model: str, lr: float, drop: bool, epochs: int, seed: int) -> dict[str, Any]:
    train_iter, test_iter = d2lmini.load_data_fashion_mnist(BATCH_SIZE)
    net = build(model, seed)
    hist = fit(net, train_iter, test_iter, epochs, lr, drop)
    return dict(
        seed=seed, test_acc=hist.test_acc, train_acc=hist.train_acc,
        train_loss=hist.train_loss, train_seconds=hist.train_seconds,
    )  # fmt: skip


def test(model: str, lr: float, drop: bool, epochs: int) -> list[dict[str, Any]]:
    results = []
    for seed in SEEDS:
        key = f"test-{model}-lr{lr}-drop{int(drop)}-e{epochs}-seed{seed}"
        r = cached(key, lambda seed=seed: test_one(model, lr, drop, epochs, seed))
        results.append(r)
        print(f"  {model} seed {seed}: test acc {r['test_acc'][-1]:.4f}, "
              f"{r['train_seconds']:.0f} s", flush=True)  # fmt: skip
    return results


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        "# LeNet study: learning rates chosen on validation data, test accuracy per seed",
        "",
        "Written by `bench/lenet_study.py` (all numbers also in `bench/lenet_study.json`). "
        "It backs the per-seed numbers of the chapter "
        "[LeNet](../chapters/part3_cnn/07_lenet.ipynb).",
        "",
        f"Environment: `{report['env']}`, Python {report['python']}.",
        "",
        "## Settings",
        "",
        f"- Budget, the same for every model (d2l 0.17's LeNet run): plain SGD, batch "
        f"{s['batch_size']}, {s['num_epochs']} epochs, Xavier-uniform weights "
        "(`d2lmini.init_cnn`; biases keep PyTorch's default), cross-entropy loss.",
        f"- Tuning: seed 0, trained on {s['train_size']:,} training images, validation "
        f"accuracy on the {s['val_size']:,} held-out ones "
        "(`d2lmini.load_fashion_mnist_splits(256, val_size=10_000, seed=0)`) after the "
        "last epoch. The highest wins. One seed per setting: differences of a point or "
        "less are within the noise.",
        f"- Late drop (tried for every model and rate): the rate is divided by 10 for the last "
        f"{s['drop_epochs']} epochs "
        f"(`MultiStepLR(milestones=[{s['num_epochs'] - s['drop_epochs']}], gamma=0.1)`).",
        f"- Testing: the chosen setting, trained on all 60,000 training images with seeds "
        f"{', '.join(map(str, s['seeds']))}; the test accuracy after the last epoch is "
        "reported (nothing is chosen by it). Time: training seconds for all epochs, "
        "data included, evaluation excluded (`History.train_seconds`), with one thread "
        "while the other worker processes train other models. They depend on whatever "
        "else runs on the machine; read them as rough ratios between the models.",
        "",
        "## Tuning (validation accuracy after the last epoch, seed 0)",
        "",
        "| model | learning rate | late drop | val acc |",
        "|---|---|---|---|",
    ]
    for model, runs in report["tuning"].items():
        chosen = report["chosen"][model]
        for r in runs:
            is_chosen = (r["lr"], r["drop"]) == (chosen["lr"], chosen["drop"])
            mark = " **(chosen)**" if is_chosen else ""
            lines.append(f"| {NAMES[model]} | {r['lr']} | {'yes' if r['drop'] else 'no'} "
                         f"| {describe(r)}{mark} |")  # fmt: skip
    lines += ["", "## Test accuracy per seed (chosen settings, 60,000 training images)", ""]
    lines += ["| model | lr | late drop | seed | epoch 1: train acc | epoch 1: test acc "
              f"| epoch {s['num_epochs']}: test acc | train s |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for model, runs in report["test"].items():
        chosen = report["chosen"][model]
        for r in runs:
            lines.append(
                f"| {NAMES[model]} | {chosen['lr']} | {'yes' if chosen['drop'] else 'no'} "
                f"| {r['seed']} | {r['train_acc'][0]:.4f} | {r['test_acc'][0]:.4f} "
                f"| {r['test_acc'][-1]:.4f} "
                f"| {r['train_seconds']:.0f} |"
            )
    lines += ["", "## Test accuracy after each epoch (same runs)", "",
              "| model | seed | " + " | ".join(str(e + 1) for e in range(s["num_epochs"]))
              + " |", "|---|---|" + "---|" * s["num_epochs"]]  # fmt: skip
    for model, runs in report["test"].items():
        for r in runs:
            accs = " | ".join(f"{a:.3f}" for a in r["test_acc"])
            lines.append(f"| {NAMES[model]} | {r['seed']} | {accs} |")
    lines += ["", f"## Summary (test accuracy, last epoch, {len(s['seeds'])} seeds)", "",
              "| model | mean | min | max |", "|---|---|---|---|"]  # fmt: skip
    for model, runs in report["test"].items():
        accs = [r["test_acc"][-1] for r in runs]
        lines.append(f"| {NAMES[model]} | {statistics.mean(accs):.4f} | {min(accs):.4f} "
                     f"| {max(accs):.4f} |")  # fmt: skip
    grids = s["grids"]
    edges = [
        NAMES[m] for m, c in report["chosen"].items() if c["lr"] in (grids[m][0], grids[m][-1])
    ]
    if edges:
        lines += ["", f"The chosen rate is at the edge of its grid for: {', '.join(edges)}."]
    tuning_runs = [r for runs in report["tuning"].values() for r in runs if r["val_acc"]]
    total = sum(r["train_seconds"] for r in tuning_runs)
    total -= sum(r["shared_seconds"] for r in tuning_runs if r["drop"])  # counted twice
    total += sum(r["train_seconds"] for runs in report["test"].values() for r in runs)
    lines += ["", f"Training time of all runs together: {total / 60:.1f} min "
              "(one thread; evaluation and data loading from disk excluded).", ""]  # fmt: skip
    return "\n".join(lines)


def study(model: str, epochs: int) -> dict[str, Any]:
    """Tune one model on the validation split, then test the chosen setting."""
    torch.set_num_threads(1)
    splits = d2lmini.load_fashion_mnist_splits(BATCH_SIZE, val_size=10_000, seed=0)
    tuning = tune(model, splits, epochs)
    best = max(tuning, key=last_val_acc)  # the first of equals
    chosen = dict(lr=best["lr"], drop=best["drop"])
    print(f"{model}: chosen {chosen}", flush=True)
    return dict(
        tuning=tuning, chosen=chosen, test=test(model, chosen["lr"], chosen["drop"], epochs),
        train_size=splits.train.num_examples, val_size=splits.val.num_examples,
    )  # fmt: skip


def _study(args: tuple[str, int]) -> dict[str, Any]:
    return study(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=NUM_EPOCHS)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--out", type=Path, default=HERE / "lenet_study")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite OUT.md from OUT.json without training")  # fmt: skip
    args = parser.parse_args()
    if args.report_only:
        report = json.loads(args.out.with_suffix(".json").read_text())
        args.out.with_suffix(".md").write_text(markdown(report))
        return
    with contextlib.redirect_stdout(io.StringIO()):
        env = d2lmini.env_info()
    env = re.sub(r"profile \w+ \| threads \d+", f"{args.jobs} processes x 1 thread", env)
    print(env, flush=True)
    models = list(GRIDS)  # the slowest first, so that the workers finish together
    models.sort(key=["classic_lenet", "modern_lenet", "mlp", "softmax"].index)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        results = dict(zip(models, pool.map(_study, [(m, args.epochs) for m in models])))
    results = {m: results[m] for m in GRIDS}  # back to the order of the report
    first = next(iter(results.values()))
    report = dict(
        env=env, python=platform.python_version(),
        settings=dict(
            batch_size=BATCH_SIZE, num_epochs=args.epochs, drop_epochs=DROP_EPOCHS,
            seeds=list(SEEDS), grids=GRIDS, train_size=first["train_size"],
            val_size=first["val_size"],
        ),
        tuning={m: r["tuning"] for m, r in results.items()},
        chosen={m: r["chosen"] for m, r in results.items()},
        test={m: r["test"] for m, r in results.items()},
    )  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {args.out.with_suffix('.md')} and .json", flush=True)


if __name__ == "__main__":
    main()
