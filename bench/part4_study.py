"""Part IV study: each modern CNN with the training recipe, tuned on validation, 3 seeds.

    .venv/bin/python bench/part4_study.py [--only vgg resnet18] [--jobs 2]

Every network of Part IV is trained with its 28×28 (or 32×32) laptop form and
:func:`d2lmini.modern_recipe` (one-cycle Nesterov SGD, weight decay, label smoothing,
shifts and flips on the batch, flip test-time augmentation), built as its chapter
builds it.

1. Tuning: each peak learning rate of the model's grid is trained with seed 0 on
   55,000 training images and scored on the 5,000 held-out validation images
   (``d2lmini.load_fashion_mnist_splits(batch, val_size=5_000, seed=0)``); the highest
   validation accuracy after the last epoch wins. The test set is not used.
2. Testing: the chosen rate, trained on all 60,000 training images with seeds 0, 1, 2;
   the test accuracy after the last epoch is reported.

Each run uses one thread; ``--jobs`` runs (default 2) go side by side. Every finished run
is written to bench/part4_study.json at once, and runs already there are skipped, so an
interrupted study goes on where it stopped; a model whose recipe changed starts afresh.
The report is bench/part4_study.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import platform
import statistics
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import d2lmini

HERE = Path(__file__).resolve().parent
OUT = HERE / "part4_study"
SEEDS = (0, 1, 2)
VAL_SIZE = 5_000
#: The best test accuracy a peer book publishes (../shared/reference/published-results.md:
#: the higher of d2l 0.17's median, d2l 1.0.3 and Dive-into-DL-PyTorch).
TARGETS = dict(alexnet=0.902, vgg=0.919, nin=0.865, googlenet=0.896, bn_lenet=0.876,
               resnet18=0.926, densenet=0.893)  # fmt: skip


#: How a network's weights start (``Study.init``).
INITS = {
    "kaiming": d2lmini.init_kaiming,  # convolutions: fan_out
    "kaiming_fan_in": functools.partial(d2lmini.init_kaiming, mode="fan_in"),
    "xavier": d2lmini.init_cnn,
}


@dataclass(frozen=True)
class Study:
    """One model of the study: how it is built and trained, and its learning-rate grid."""

    name: str
    builder: str  # the d2lmini call, also shown in the report
    build: Callable[[], nn.Module]
    image: int
    num_epochs: int
    grid: tuple[float, ...]
    init: str = "kaiming"  # a key of INITS
    batch_size: int = 128

    def recipe(self, lr: float) -> d2lmini.Recipe:
        return d2lmini.modern_recipe(lr)

    def describe(self) -> dict[str, Any]:
        """Everything that defines the runs (a changed description restarts the model)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        training = dataclasses.asdict(self.recipe(1.0))
        del fields["build"], training["lr"]
        return dict(fields, grid=list(self.grid), training=training)


STUDIES = {
    s.name: s
    for s in [
        Study("alexnet", "alexnet_28()", d2lmini.alexnet_28, 28, 12, (0.02, 0.04, 0.08, 0.16)),
        Study(
            "vgg", "vgg(image_size=32, num_hiddens=256, width=1/4)",
            lambda: d2lmini.vgg(image_size=32, num_hiddens=256, width=1 / 4),
            32, 12, (0.04, 0.08, 0.16),
        ),
        Study(
            "nin", "nin((3, 1, 1), width=1/6, final_relu=False)",
            lambda: d2lmini.nin((3, 1, 1), width=1 / 6, final_relu=False),
            28, 12, (0.015, 0.03, 0.06, 0.12), "kaiming_fan_in",
        ),
        Study(
            "googlenet", "googlenet(width=1/4)", lambda: d2lmini.googlenet(1 / 4),
            28, 20, (0.025, 0.05, 0.1, 0.2), "kaiming_fan_in",
        ),
        Study("bn_lenet", "bn_lenet()", d2lmini.bn_lenet, 28, 15, (0.1, 0.2, 0.4), "xavier"),
        Study(
            "resnet18", 'resnet18(width=1/4, stem="3x3")',
            lambda: d2lmini.resnet18(1 / 4, stem="3x3"), 28, 10, (0.05, 0.1, 0.2, 0.4),
        ),
        Study(
            "densenet", "densenet(16, 32, (4, 4, 4))",
            lambda: d2lmini.densenet(16, 32, (4, 4, 4)), 28, 12, (0.05, 0.1, 0.2, 0.4),
        ),
    ]
}  # fmt: skip


def run(job: tuple[str, str, float, int]) -> dict[str, Any]:
    """One training run, ``(kind, model, lr, seed)`` with kind "tune" or "test"."""
    kind, key, lr, seed = job
    study = STUDIES[key]
    return train_once(study, study.recipe(lr), kind, seed)


def train_once(study: Study, recipe: d2lmini.Recipe, kind: str, seed: int) -> dict[str, Any]:
    """Train ``study``'s network with ``recipe``: on 55,000 images scored on the 5,000 of
    validation (``kind="tune"``), or on 60,000 scored on the test set (``"test"``)."""
    torch.set_num_threads(1)
    d2lmini.keep_freed_memory()
    resize = None if study.image == 28 else study.image
    generator = torch.Generator().manual_seed(seed)
    if kind == "tune":
        splits = d2lmini.load_fashion_mnist_splits(
            study.batch_size, VAL_SIZE, resize, generator=generator
        )
        train_iter, eval_iter = splits.train, splits.val
    else:
        train_iter, eval_iter = d2lmini.load_data_fashion_mnist(
            study.batch_size, resize, generator=generator
        )
    d2lmini.seed_everything(seed)
    net = study.build()
    net.apply(INITS[study.init])
    result: dict[str, Any] = dict(
        kind=kind, lr=recipe.lr, seed=seed, threads=torch.get_num_threads()
    )
    try:
        history = d2lmini.train(
            net, train_iter, eval_iter, study.num_epochs, device="cpu", recipe=recipe,
            display=False,
        )  # fmt: skip
        result.update(acc=history.test_acc, train_acc=history.train_acc)
        result.update(train_seconds=round(history.train_seconds, 1))
    except FloatingPointError as err:
        result.update(acc=None, diverged=str(err).split(":")[0])
    return result


def final(r: dict[str, Any]) -> float:
    return r["acc"][-1] if r["acc"] else 0.0


def choose(entry: dict[str, Any]) -> dict[str, Any]:
    best = max(entry["tuning"], key=final)
    grid = entry["recipe"]["grid"]
    return dict(lr=best["lr"], val_acc=final(best), inside_grid=grid[0] < best["lr"] < grid[-1])


def pending(key: str, entry: dict[str, Any]) -> list[tuple[str, str, float, int]]:
    """The runs of ``key`` still to do (tests only once the tuning is complete)."""
    tuned = {r["lr"] for r in entry["tuning"]}
    jobs = [("tune", key, lr, 0) for lr in STUDIES[key].grid if lr not in tuned]
    if jobs or "chosen" not in entry:
        return jobs
    tested = {r["seed"] for r in entry["test"] if r["lr"] == entry["chosen"]["lr"]}
    return [("test", key, entry["chosen"]["lr"], s) for s in SEEDS if s not in tested]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Part IV study: the training recipe, tuned on validation, tested on 3 seeds",
        "",
        "Written by `bench/part4_study.py` (method in its docstring; every number in "
        "`bench/part4_study.json`).",
        "",
        f"Environment: {report['env']}",
        "",
        "| model | network | image | epochs | lr grid | chosen (val acc) "
        "| test acc, seeds 0-2 | mean | train s (1 thread) | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, e in report["models"].items():
        r, chosen = e["recipe"], e.get("chosen")
        tests = sorted(
            (t for t in e["test"] if chosen and t["lr"] == chosen["lr"]), key=lambda t: t["seed"]
        )
        picked = f"{chosen['lr']} ({chosen['val_acc']:.4f})" if chosen else "-"
        seconds = ", ".join(f"{t['train_seconds']:.0f}" for t in tests) or "-"
        accs = [final(t) for t in tests]
        met = (
            len(accs) == 3
            and statistics.mean(accs) >= e["target"]
            and min(accs) >= e["target"] - 0.01
        )
        mean = f"{statistics.mean(accs):.4f}" if accs else "-"
        lines.append(
            f"| {key} | `{r['builder']}` | {r['image']} | {r['num_epochs']} "
            f"| {', '.join(map(str, r['grid']))} "
            f"| {picked} | {', '.join(f'{a:.4f}' for a in accs) or '-'} | {mean} "
            f"| {seconds} "
            f"| {e['target']} | {'yes' if met else 'no'} |"
        )
    lines += ["", "## Tuning runs (seed 0, validation accuracy after the last epoch)", ""]
    lines += ["| model | lr | val acc | train s |", "|---|---|---|---|"]
    for key, e in report["models"].items():
        for t in sorted(e["tuning"], key=lambda t: t["lr"]):
            acc = f"{final(t):.4f}" if t["acc"] else f"diverged ({t['diverged']})"
            lines.append(f"| {key} | {t['lr']} | {acc} | {t.get('train_seconds', '-')} |")
    return "\n".join(lines) + "\n"


def save(report: dict[str, Any]) -> None:
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(OUT.with_suffix(".json"))
    OUT.with_suffix(".md").write_text(markdown(report))


def without_grid(recipe: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in recipe.items() if k != "grid"}


def load(keys: list[str]) -> dict[str, Any]:
    path = OUT.with_suffix(".json")
    report = json.loads(path.read_text()) if path.exists() else {}
    models = report.get("models", {})
    for key in keys:
        recipe, entry = STUDIES[key].describe(), models.get(key, {})
        if without_grid(entry.get("recipe", {})) != without_grid(recipe):
            models[key] = entry = dict(recipe=recipe, target=TARGETS[key], tuning=[], test=[])
        if entry["recipe"]["grid"] != recipe["grid"]:  # a wider grid keeps its runs
            entry.update(
                recipe=recipe, tuning=[r for r in entry["tuning"] if r["lr"] in recipe["grid"]]
            )
            entry.pop("chosen", None)
        parameters = d2lmini.count_parameters(STUDIES[key].build())
        models[key].update(parameters=parameters)
        if len(models[key]["tuning"]) == len(recipe["grid"]) and "chosen" not in models[key]:
            models[key]["chosen"] = choose(models[key])
    env = (
        f"torch {torch.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {multiprocessing.cpu_count()} CPUs"
    )
    return dict(env=env, models=models)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side")
    parser.add_argument("--only", nargs="*", default=list(STUDIES), choices=list(STUDIES))
    args = parser.parse_args()
    report = load(args.only)
    models = report["models"]
    save(report)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        running: dict[Future[dict[str, Any]], tuple[str, str, float, int]] = {}

        def submit() -> None:
            queued = set(running.values())
            for key in args.only:  # in the order asked for
                for job in pending(key, models[key]):
                    if job not in queued:
                        running[pool.submit(run, job)] = job

        submit()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                kind, key, lr, seed = running.pop(future)
                result = future.result()
                models[key]["tuning" if kind == "tune" else "test"].append(result)
                if kind == "tune" and not pending(key, models[key]):
                    models[key]["chosen"] = choose(models[key])
                save(report)
                acc = f"{final(result):.4f}" if result["acc"] else "diverged"
                print(f"{kind} {key} lr {lr} seed {seed}: {acc} "
                      f"({result.get('train_seconds', '-')} s)", flush=True)  # fmt: skip
            submit()
    print(f"wrote {OUT.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
