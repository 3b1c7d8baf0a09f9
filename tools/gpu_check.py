"""Run a chosen subset of the book on a GPU (or, tiny, on the CPU) and write a table.

    python tools/gpu_check.py --device cuda --out DIR    # on a lent GPU machine
    python tools/gpu_check.py --device cpu --out DIR     # in CI: the same code, smoke

The GPU machine this project is sometimes lent has torch but no Jupyter kernel, so each
notebook is turned into a plain script here (``%%writefile`` cells write their file,
the bootstrap cell's ``%pip`` line becomes ``pass``) and run in a fresh process from its
own folder; on the CPU only two of them run, in the ``smoke`` profile. With one GPU,
the two-rank DDP chapters run their processes on the CPU (one GPU per process is the
rule), so NCCL is checked by a DDP job of world size 1, and of 2 where there are two
GPUs, through :func:`d2lmini.backend_and_device`. ``DIR/gpu_check.md`` gets one row per check:
seconds, the last line that reports an accuracy or a speed-up, pass or fail; each
check's output goes to ``DIR/<name>.log``. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (notebook, profile on a GPU): the GPU chapter, one Part IV network, Part V's
# mixed precision/compile chapter and the DDP chapters. On the CPU (CI, where `make test`
# runs every notebook anyway) two of them run in smoke, so that this runner cannot rot.
CHECKS = [
    ("chapters/part2_computation/07_gpus.ipynb", "full"),
    ("chapters/part4_modern_cnn/06_resnet.ipynb", "laptop"),
    ("chapters/part5_performance/02_faster_on_one_device.ipynb", "full"),
    ("chapters/part5_performance/04_ddp.ipynb", "full"),
    ("chapters/part5_performance/05_checkpoints_world_size.ipynb", "full"),
]
CPU_CHECKS = ["07_gpus", "04_ddp"]
METRIC = re.compile(r"accura|speed-?up|\d\.\d+x|bitwise|==", re.I)
MAGIC_WRITEFILE = re.compile(r"^%%writefile\s+(\S+)\n")

DDP_CHECK = """\
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from d2lmini import backend_and_device

backend, device = backend_and_device()
if device.type == "cuda":
    torch.cuda.set_device(device)
dist.init_process_group(backend)
try:
    model = DDP(torch.nn.Linear(8, 2).to(device),
                device_ids=[device.index] if device.type == "cuda" else None)
    model(torch.ones(4, 8, device=device)).sum().backward()
    t = torch.ones(3, device=device)
    dist.all_reduce(t)
    assert t.tolist() == [1.0] * 3 and model.module.weight.grad is not None
    print(f"DDP world size {dist.get_world_size()}: backend {backend} on {device} ==")
finally:
    dist.destroy_process_group()
"""


def notebook_to_script(path: Path) -> str:
    """The code cells of a notebook as one Python script, with its two magics replaced."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    parts = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        match = MAGIC_WRITEFILE.match(source)
        if match:
            body = source[match.end() :]
            source = f"open({match.group(1)!r}, 'w').write({body + chr(10)!r})"
        source = re.sub(r"^(\s*)%pip .*$", r"\1pass", source, flags=re.M)
        if "%" in "".join(line[:1] for line in source.splitlines()):
            raise ValueError(f"{path.name}: a magic this runner does not know:\n{source}")
        parts.append(source)
    return "\n\n".join(parts) + "\n"


def run_check(
    name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float
) -> dict[str, object]:
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        output, ok = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as exc:  # its output is bytes, even with text=True
        parts = [
            p.decode(errors="replace") if isinstance(p, bytes) else p or ""
            for p in (exc.stdout, exc.stderr)
        ]
        output, ok = f"{''.join(parts)}\nTIMEOUT after {timeout} s", False
    seconds = time.monotonic() - start
    log.write_text(output)
    lines = [line.strip() for line in output.splitlines() if METRIC.search(line)]
    metric = (lines[-1] if lines else "")[:70].replace("|", "/")
    return dict(check=name, seconds=seconds, metric=metric, ok=ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per check")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    if (ROOT / "data" / "FashionMNIST" / "raw").is_dir():  # carried to the GPU machine
        env["D2LMINI_DATA"] = str(ROOT / "data")
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    import torch  # after the environment is set: CUDA_VISIBLE_DEVICES applies here too

    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for notebook, gpu_profile in CHECKS:
            path = ROOT / notebook
            if args.device == "cpu" and path.stem not in CPU_CHECKS:
                continue
            script = Path(tmp) / (path.stem + ".py")
            script.write_text(notebook_to_script(path))
            profile = gpu_profile if args.device == "cuda" else "smoke"
            rows.append(
                run_check(
                    f"{path.stem} ({profile})",
                    [sys.executable, str(script)],
                    path.parent,
                    dict(env, D2LMINI_PROFILE=profile),
                    args.out / f"{path.stem}.log",
                    args.timeout,
                )
            )
            print(rows[-1], flush=True)
        ddp = Path(tmp) / "ddp_check.py"
        ddp.write_text(DDP_CHECK)
        launcher = (
            "from d2lmini import run_torchrun; import sys; print(run_torchrun("
            "sys.argv[1], nproc_per_node=int(sys.argv[2]), timeout=120))"
        )
        gpus = torch.cuda.device_count() if args.device == "cuda" else 0
        for world in [1, 2] if gpus >= 2 else [1]:  # NCCL between GPUs needs two
            rows.append(
                run_check(
                    f"DDP, world size {world}",
                    [sys.executable, "-c", launcher, str(ddp), str(world)],
                    ROOT,
                    env,
                    args.out / f"ddp_world_{world}.log",
                    args.timeout,
                )
            )
            print(rows[-1], flush=True)
    table = [
        f"# GPU check ({'GPU' if args.device == 'cuda' else 'CPU only: no GPU was used'})",
        "",
        f"`python tools/gpu_check.py --device {args.device}`: torch {torch.__version__}, "
        f"Python {sys.version.split()[0]}, device {device}, {gpus} GPU(s) visible. "
        "The two-rank chapters (04, 05) use the GPUs only where there is one per rank.",
        "",
        "| check | seconds | last metric line | result |",
        "|---|---:|---|---|",
    ]
    table += [
        f"| {r['check']} | {r['seconds']:.1f} | {r['metric']} | {'pass' if r['ok'] else 'FAIL'} |"
        for r in rows
    ]
    (args.out / "gpu_check.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
