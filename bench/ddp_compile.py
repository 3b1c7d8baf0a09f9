"""What `torch.compile` costs and gains for a small DDP job on CPU with gloo.

    PYTHONPATH=. python bench/ddp_compile.py            # writes bench/ddp_compile.{json,md}
    PYTHONPATH=. python bench/ddp_compile.py --report   # the .md again, from the .json

Backs the numbers of the chapter *Scaling out* (Part V, 06). Without arguments it
launches itself with ``d2lmini.run_torchrun`` (2 processes, 1 thread each): once with
``torch.compile(DDP(model))`` (the arrangement the DDP notes describe), then ``RUNS``
times with ``DDP(torch.compile(model))``, each time with an empty Inductor cache
(``TORCHINDUCTOR_CACHE_DIR`` in a fresh temporary folder), so that the first step pays
the whole compilation. Under torchrun (``LOCAL_RANK`` set) it is the worker: two DDP
replicas of the same float32 MLP (784-64-64-10) from the same initial weights, one
eager and one compiled, take ``STEPS`` SGD steps on the same Fashion-MNIST batches (32
per rank), alternating eager step / compiled step, so that both see the same machine
load. It records the graphs Dynamo compiled and the reasons of its graph breaks, the
first compiled step (compilation included), the median and quartiles of the later
step times, the largest relative difference between the two models' losses, and the
machine's load average. Timings depend on whatever else runs on the machine.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

RUNS, STEPS, BATCH = 3, 200, 32
HERE = Path(__file__).resolve().parent


def reason(text: str) -> str:
    """A graph break's first line and the first name it quotes (no file paths)."""
    names = re.findall(r"`([\w.]+)`", text)
    return text.splitlines()[0] + (f" ({names[0]})" if names else "")


def worker() -> None:
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    import d2lmini
    from d2lmini.distributed import backend_and_device

    placement = backend_and_device("cpu")
    dist.init_process_group(placement.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    images, labels = d2lmini.read_fashion_mnist("train")
    X = images[: STEPS * BATCH * world].reshape(-1, 784).float() / 255
    y = labels[: STEPS * BATCH * world]

    def replica():
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
        )
        return model, torch.optim.SGD(model.parameters(), lr=0.1)

    from torch._dynamo.utils import counters

    eager, eager_opt = replica()
    eager_ddp = DDP(eager)
    plain, comp_opt = replica()
    if os.environ["DDP_COMPILE"] == "outer":  # what the DDP notes describe
        compiled = torch.compile(DDP(plain))
    else:  # compile the model, then wrap it
        compiled = DDP(torch.compile(plain))

    def step(net, opt, i):
        start = (i * world + rank) * BATCH
        loss = F.cross_entropy(net(X[start : start + BATCH]), y[start : start + BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    worst = 0.0
    first = 0.0
    for i in range(STEPS):
        t0 = time.perf_counter()
        a = step(eager_ddp, eager_opt, i)
        t1 = time.perf_counter()
        b = step(compiled, comp_opt, i)
        t2 = time.perf_counter()
        if i == 0:
            first = t2 - t1
        else:
            times["eager"].append(t1 - t0)
            times["compiled"].append(t2 - t1)
        worst = max(worst, abs(a - b) / abs(a))
    if rank == 0:

        def quartiles(v):
            q = statistics.quantiles(v, n=4)
            return [1e3 * q[0], 1e3 * statistics.median(v), 1e3 * q[2]]

        print(
            "RESULT "
            + json.dumps(
                {
                    "arrangement": os.environ["DDP_COMPILE"],
                    "graphs": counters["stats"].get("unique_graphs", 0),
                    "graph breaks": sorted({reason(r) for r in counters["graph_break"]}),
                    "load average": os.getloadavg()[0],
                    "first compiled step s": first,
                    "eager ms": quartiles(times["eager"]),
                    "compiled ms": quartiles(times["compiled"]),
                    "loss rel diff": worst,
                }
            )
        )
    dist.destroy_process_group()


def main() -> None:
    from d2lmini.distributed import run_torchrun

    results = []
    for arrangement in ["outer"] + ["inner"] * RUNS:
        with tempfile.TemporaryDirectory() as cache:
            out = run_torchrun(
                __file__,
                nproc_per_node=2,
                timeout=600,
                env={"TORCHINDUCTOR_CACHE_DIR": cache, "DDP_COMPILE": arrangement},
            )
        line = next(x for x in out.splitlines() if "RESULT " in x)
        results.append(json.loads(line.split("RESULT ", 1)[1]))
        print(f"run {len(results)}: {results[-1]}", flush=True)
    outer, results = results[0], results[1:]
    first = [r["first compiled step s"] for r in results]
    eager = [r["eager ms"][1] for r in results]
    comp = [r["compiled ms"][1] for r in results]
    summary = {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "runs": RUNS,
        "steps": STEPS,
        "batch per rank": BATCH,
        "torch.compile(DDP(model))": outer,
        "DDP(torch.compile(model)), per run": results,
        "first compiled step s (median)": statistics.median(first),
        "eager ms (median of runs)": statistics.median(eager),
        "compiled ms (median of runs)": statistics.median(comp),
        "loss rel diff (max)": max(r["loss rel diff"] for r in results),
    }
    (HERE / "ddp_compile.json").write_text(json.dumps(summary, indent=1) + "\n")
    report(summary)


def report(summary: dict) -> None:
    """Write bench/ddp_compile.md from the numbers (``--report``: from the JSON file)."""
    outer = summary["torch.compile(DDP(model))"]
    results = summary["DDP(torch.compile(model)), per run"]
    breaks = "\n".join(f"- {why}" for why in outer["graph breaks"]) or "- none"
    rows = "\n".join(
        f"| {i + 1} | {r['load average']:.1f} | {r['first compiled step s']:.1f} | "
        + " | ".join(
            f"{m:.2f} ({lo:.2f}-{hi:.2f})"
            for lo, m, hi in [
                (r["eager ms"][0], r["eager ms"][1], r["eager ms"][2]),
                (r["compiled ms"][0], r["compiled ms"][1], r["compiled ms"][2]),
            ]
        )
        + f" | {r['loss rel diff']:.1e} |"
        for i, r in enumerate(results)
    )
    (HERE / "ddp_compile.md").write_text(f"""# `torch.compile` with DDP on CPU (gloo)

Written by `bench/ddp_compile.py`; every number also in `bench/ddp_compile.json`.
torch {summary["torch"]}, Python {summary["python"]}, {summary["cpus"]} CPUs; 2 processes
× 1 thread, gloo; float32 MLP 784-64-64-10, batch {BATCH} per rank, {STEPS} SGD steps,
eager and compiled steps alternating; a fresh Inductor cache for every run.

`torch.compile(DDP(model))`: Dynamo compiled {outer["graphs"]} graph(s) in {STEPS} steps;
median step {outer["compiled ms"][1]:.2f} ms against {outer["eager ms"][1]:.2f} ms eager
(load average {outer["load average"]:.1f}). Its graph breaks:

{breaks}

`DDP(torch.compile(model))`, {RUNS} runs:

| run | load average | first compiled step (s) | eager ms/step, median (quartiles) | compiled ms/step, median (quartiles) | largest relative loss difference |
|---:|---:|---:|---:|---:|---:|
{rows}

Median over runs: first compiled step {summary["first compiled step s (median)"]:.1f} s;
eager {summary["eager ms (median of runs)"]:.2f} ms, compiled
{summary["compiled ms (median of runs)"]:.2f} ms per step. The load average is the
machine's (1 minute) when the run ended; other work on it slows both kinds of step.
""")


if __name__ == "__main__":
    if "LOCAL_RANK" in os.environ:
        worker()
    elif sys.argv[1:] == ["--report"]:
        report(json.loads((HERE / "ddp_compile.json").read_text()))
    else:
        main()
