"""Does ``d2lmini.keep_freed_memory()`` pay off? Training time and page faults, with and without.

    .venv/bin/python bench/allocator.py            # the real run (a quiet machine)
    .venv/bin/python bench/allocator.py --quick    # a few steps, to check that it works

Every measurement runs in a fresh Python process (the allocator setting is process-wide
and cannot be undone) with ``--threads`` threads (default 2). The process builds one
network, trains it on real Fashion-MNIST batches (``d2lmini.load_data_fashion_mnist``)
for a few warm-up steps, then measures ``--steps`` training steps (batch, forward,
cross-entropy, backward, SGD step): wall time, user and system CPU time and minor page
faults, from ``time.perf_counter`` and ``resource.getrusage``.
Networks: LeNet with ReLU and max pooling (batch 256), ``resnet18(width=1/4)`` and
``alexnet_28()`` (batch 128), all on 1×28×28 images. The two settings alternate
(default, keep, default, keep, ...) ``--repeats`` times, so a slow phase of the machine
hits both. Results: ``bench/allocator.md`` (written and printed; ``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
from torch import nn
import d2lmini

model, mode, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
applied = d2lmini.keep_freed_memory() if mode == "keep" else False
torch.manual_seed(0)
builders = {
    "lenet": (lambda: d2lmini.lenet(nn.ReLU, nn.MaxPool2d), 256),
    "resnet18(width=1/4)": (lambda: d2lmini.resnet18(width=0.25), 128),
    "alexnet_28": (d2lmini.alexnet_28, 128),
}
build, batch = builders[model]
net = build()
batches = iter(d2lmini.load_data_fashion_mnist(batch)[0])  # real data, reshuffled
opt = torch.optim.SGD(net.parameters(), lr=0.01)
loss = nn.CrossEntropyLoss()

def step():
    X, y = next(batches)  # each batch is a new tensor, as in training
    opt.zero_grad()
    loss(net(X), y).backward()
    opt.step()

for _ in range(3):
    step()
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    step()
wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(
    wall=wall, user=r1.ru_utime - r0.ru_utime, sys=r1.ru_stime - r0.ru_stime,
    faults=r1.ru_minflt - r0.ru_minflt, applied=applied,
)))
"""

MODELS = ("lenet", "resnet18(width=1/4)", "alexnet_28")
MODES = ("default", "keep")


def measure(model: str, mode: str, steps: int, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, mode, str(steps), str(threads)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: dict, steps: int, threads: int, repeats: int) -> str:
    import torch

    lines = [
        "# Allocator benchmark: `d2lmini.keep_freed_memory()`",
        "",
        f"`bench/allocator.py`: {steps} training steps per process, {threads} threads, "
        f"{repeats} fresh processes per setting (alternating); medians per step. "
        f"torch {torch.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| network | setting | wall ms/step | user ms/step | sys ms/step | minor faults/step |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ratios = []
    for model in MODELS:
        med = {}
        for mode in MODES:
            runs = results[model][mode]
            med[mode] = {
                k: statistics.median(r[k] for r in runs) / steps
                for k in ("wall", "user", "sys", "faults")
            }
            m = med[mode]
            lines.append(
                f"| {model} | {mode} | {1e3 * m['wall']:.1f} | {1e3 * m['user']:.1f} | "
                f"{1e3 * m['sys']:.1f} | {m['faults']:.0f} |"
            )
        ratios.append(
            (
                model,
                med["default"]["wall"] / med["keep"]["wall"],
                (med["default"]["faults"] + 1) / (med["keep"]["faults"] + 1),
            )
        )
    lines += [
        "",
        "Median ratios default / keep (above 1: `keep_freed_memory()` helps):",
        "",
        "| network | wall time | minor page faults (+1 each) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {m} | {w:.2f} | {f:.1f} |" for m, w, f in ratios]
    applied = all(r["applied"] for m in MODELS for r in results[m]["keep"])
    lines += ["", f"`keep_freed_memory()` returned {applied} in every `keep` process."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 steps, 1 repeat")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 2, 1
    results: dict = {m: {mode: [] for mode in MODES} for m in MODELS}
    for rep in range(args.repeats):
        for model in MODELS:
            for mode in MODES:
                r = measure(model, mode, args.steps, args.threads)
                results[model][mode].append(r)
                print(f"repeat {rep + 1} {model:20s} {mode:8s} {json.dumps(r)}", flush=True)
    text = report(results, args.steps, args.threads, args.repeats)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
