"""Run notebooks top to bottom in a fresh kernel and store their outputs in place.

    python tools/run_notebooks.py [--profile laptop|full] PATH [PATH ...]

PATH is a notebook or a folder of notebooks. Each runs with its own folder as the
working directory and ``D2LMINI_PROFILE`` set; a cell error stops with a non-zero
exit unless the cell is tagged ``raises-exception``. Per-cell timing is not stored, so
re-running unchanged code gives a small diff; the notebook's total run time, profile,
device and the kernel's peak resident memory (Linux) go to ``metadata.d2lmini`` (the
book's table of run times is built from them).
Consecutive outputs of one stream are merged into one (one box in the book).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def find_notebooks(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            found.append(p)
    return found


def device_name() -> str:
    """The device the notebooks ran on, as ``d2lmini.try_gpu`` picks it."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


class PeakMemory(threading.Thread):
    """Follow the kernel's peak resident memory (``VmHWM`` in ``/proc``) while it runs."""

    def __init__(self, client: NotebookClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.peak_kib = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            km = getattr(self.client, "km", None)
            pid = getattr(getattr(km, "provisioner", None), "pid", None)
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (OSError, TypeError):
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    def mib(self) -> int | None:
        self.done.set()
        self.join()
        return round(self.peak_kib / 1024) if self.peak_kib else None


def run(path: Path, profile: str, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    os.environ["D2LMINI_PROFILE"] = profile
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        coalesce_streams=True,
    )
    memory = PeakMemory(client)
    memory.start()
    tic = time.perf_counter()
    try:
        client.execute()
    finally:
        peak_mib = memory.mib()
    seconds = time.perf_counter() - tic
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["d2lmini"] = {
        "profile": profile,
        "run_seconds": round(seconds, 1),
        "device": device_name(),
        "peak_memory_mib": peak_mib,
    }
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--profile", default="laptop", choices=["laptop", "full"])
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    status = 0
    for path in find_notebooks(args.paths):
        try:
            seconds = run(path, args.profile, args.timeout)
            print(f"{seconds:7.1f} s  {path}")
        except Exception as exc:  # report every failing notebook, then fail
            print(f"FAILED   {path}: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
