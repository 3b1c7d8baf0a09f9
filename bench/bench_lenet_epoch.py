"""Time one LeNet training epoch on Fashion-MNIST with three input pipelines.

    make bench            # or: python bench/bench_lenet_epoch.py [--repeats 3]

1. ``d2lmini``   -- d2lmini.load_data_fashion_mnist: decoded once, batches by indexing;
2. ``dataloader`` -- torchvision Dataset + ToTensor + DataLoader(num_workers=4), built
   like d2l's loader (d2l's own ``load_data_fashion_mnist`` when d2l is installed);
3. ``compute``   -- the same training steps over batches made beforehand (a lower bound).

Every pipeline runs the same model, optimiser and steps; the runs are interleaved and the
median of ``--repeats`` epochs is reported. Results go to bench/results.md.
``d2lmini.keep_freed_memory()`` is applied first: without it page faults from the
allocator add seconds of noise to every pipeline alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

import d2lmini

HERE = Path(__file__).resolve().parent
BATCH_SIZE, LR = 256, 0.9


def train_epoch(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """One epoch of LeNet training; returns wall-clock seconds, data included."""
    torch.manual_seed(0)
    net = d2lmini.lenet()
    net.apply(d2lmini.init_cnn)
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    loss = nn.CrossEntropyLoss()
    tic = time.perf_counter()
    for X, y in batches:
        optimizer.zero_grad()
        loss(net(X), y).backward()
        optimizer.step()
    return time.perf_counter() - tic


def d2l_style_loader(root: Path) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """d2l's own loader if installed (it reads ../data), else an equivalent replica."""
    try:
        from d2l import torch as d2l
    except ImportError:
        from torchvision import transforms

        train, _ = d2lmini.load_fashion_mnist_datasets(root, transform=transforms.ToTensor())
        return torch.utils.data.DataLoader(train, BATCH_SIZE, shuffle=True, num_workers=4)
    workdir = Path(tempfile.mkdtemp()) / "work"
    workdir.mkdir()
    (workdir.parent / "data").symlink_to(root)
    cwd = os.getcwd()
    os.chdir(workdir)  # d2l hard-codes root="../data"
    try:
        train_iter, _ = d2l.load_data_fashion_mnist(BATCH_SIZE)
    finally:
        os.chdir(cwd)
    return train_iter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    args = parser.parse_args()

    steady = d2lmini.keep_freed_memory()  # for every pipeline: see its docstring
    root = d2lmini.prepare_fashion_mnist()
    fast_train, _ = d2lmini.load_data_fashion_mnist(BATCH_SIZE, root=root)
    premade = list(fast_train)
    dataloader = d2l_style_loader(root)
    using_d2l = "d2l" in sys.modules
    pipelines: dict[str, Callable[[], float]] = {
        "d2lmini": lambda: train_epoch(fast_train),
        "dataloader": lambda: train_epoch(dataloader),
        "compute": lambda: train_epoch(premade),
    }
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for repeat in range(args.repeats):
        for name, run in pipelines.items():
            times[name].append(run())
            print(f"repeat {repeat + 1}: {name:10s} {times[name][-1]:6.2f} s", flush=True)

    median = {name: statistics.median(t) for name, t in times.items()}
    speedup = median["dataloader"] / median["d2lmini"]
    overhead = median["d2lmini"] / median["compute"] - 1
    loader_name = "d2l 1.0.3 `load_data_fashion_mnist`" if using_d2l else "replica of d2l's loader"
    lines = [
        "# LeNet epoch benchmark (Fashion-MNIST, batch 256, SGD lr 0.9)",
        "",
        f"torch {torch.__version__.split('+')[0]}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, median of {args.repeats} interleaved epochs "
        "(wall clock, data included); glibc keeps freed memory "
        f"(`d2lmini.keep_freed_memory()`): {'yes' if steady else 'not available'}.",
        "",
        "| pipeline | median s/epoch | min | max |",
        "|---|---|---|---|",
    ]
    descriptions = {
        "d2lmini": "d2lmini.load_data_fashion_mnist",
        "dataloader": f"DataLoader + ToTensor, 4 workers ({loader_name})",
        "compute": "pure compute on pre-made batches",
    }
    for name, t in times.items():
        lines.append(f"| {descriptions[name]} | {median[name]:.2f} | {min(t):.2f} | {max(t):.2f} |")
    lines += [
        "",
        f"- d2lmini vs DataLoader: **{speedup:.2f}x** faster (target ≥ 1.7x)",
        f"- d2lmini over pure compute: **{overhead:+.1%}** (target ≤ +10 %)",
    ]
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
