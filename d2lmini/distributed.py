"""Launch a script in several processes with ``torchrun`` and collect what it printed.

:func:`run_torchrun` is what a notebook needs to try ``torch.distributed`` for real: it
runs ``python -m torch.distributed.run --standalone --nproc_per_node=N script`` (the
``torchrun`` command), waits for it with a time limit, and returns what every rank
printed. With the ``gloo`` backend, two processes on a laptop CPU are a real
data-parallel job. :func:`backend_and_device` is what each process of such a job calls
to pick its communication backend and device, on a laptop or a multi-node GPU cluster.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

__all__ = ["Placement", "backend_and_device", "run_torchrun"]

_TAIL_LINES = 25  # lines of a failing rank's stderr quoted in the error message
_GRACE_SECONDS = 3.0  # after SIGTERM, how long torchrun may take to stop its workers
_FAILURE = re.compile(r"^\s*rank\s*:\s*(\d+).*\n\s*exitcode\s*:\s*(-?\d+)", re.M)


class Placement(NamedTuple):
    """Where one rank of a job computes: the backend for its process group and its device."""

    backend: str
    device: torch.device


def _env_int(env: Mapping[str, str], name: str) -> int:
    if name not in env:
        raise RuntimeError(f"{name} is not set: start this script with torchrun, which sets "
                           "RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE")
    try:
        return int(env[name])
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {env[name]!r}") from None


def backend_and_device(
    device_type: str = "auto",
    env: Mapping[str, str] | None = None,
    cuda_devices: int | None = None,
) -> Placement:
    """Choose this rank's backend and device from torchrun's variables and the GPUs.

    ``"auto"`` uses NCCL and GPU ``LOCAL_RANK`` when the node has CUDA devices, else
    gloo on the CPU; ``"cuda"`` requires GPUs; ``"cpu"`` always means gloo on the CPU.
    On a GPU node every local process needs its own GPU: ``LOCAL_WORLD_SIZE`` (processes
    on *this* node, not ``WORLD_SIZE``, all nodes) must not exceed the node's GPUs, or
    this raises instead of silently training on the CPU.

    :param device_type: ``"auto"``, ``"cuda"`` or ``"cpu"``.
    :param env: the environment to read (default ``os.environ``).
    :param cuda_devices: the node's CUDA device count (default: what torch sees).
    :raises RuntimeError: outside torchrun, or if this rank has no GPU of its own.
    :raises ValueError: for an unknown ``device_type`` or a malformed variable.
    """
    if device_type not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device_type must be 'auto', 'cuda' or 'cpu', got {device_type!r}")
    env = os.environ if env is None else env
    local_rank = _env_int(env, "LOCAL_RANK")
    local_world = _env_int(env, "LOCAL_WORLD_SIZE")
    if not 0 <= local_rank < local_world:
        raise ValueError(f"LOCAL_RANK={local_rank} must be in [0, LOCAL_WORLD_SIZE={local_world})")
    if cuda_devices is None:
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device_type == "cpu" or (device_type == "auto" and cuda_devices == 0):
        return Placement("gloo", torch.device("cpu"))
    if cuda_devices == 0:
        raise RuntimeError(f"LOCAL_RANK {local_rank}: device_type='cuda' but this node has "
                           "no CUDA device (choose 'cpu' or 'auto' to use gloo on the CPU)")
    if local_world > cuda_devices:
        raise RuntimeError(
            f"LOCAL_RANK {local_rank}: this node runs LOCAL_WORLD_SIZE={local_world} "
            f"processes but has {cuda_devices} CUDA device(s); each process needs its own. "
            f"Start torchrun with --nproc_per_node={cuda_devices}, or choose "
            "device_type='cpu' to train with gloo on the CPU."
        )
    return Placement("nccl", torch.device("cuda", local_rank))


def _rank_files(log_dir: Path, name: str) -> dict[int, Path]:
    """``{local_rank: file}`` for torchrun's ``--log-dir`` layout.

    torchrun writes ``<log_dir>/<run id>/attempt_<k>/<local rank>/{stdout,stderr}.log``;
    with ``--max-restarts 0`` there is one attempt.
    """
    files: dict[int, Path] = {}
    for path in sorted(log_dir.glob(f"*/attempt_*/*/{name}")):
        if path.parent.name.isdigit():
            files[int(path.parent.name)] = path
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _ranks_stdout(log_dir: Path) -> str:
    """Every rank's stdout in rank order, each line prefixed with ``[rank<r>]: ``."""
    lines: list[str] = []
    for rank, path in sorted(_rank_files(log_dir, "stdout.log").items()):
        lines += [f"[rank{rank}]: {line}" for line in _read(path).splitlines()]
    return "\n".join(lines) + ("\n" if lines else "")


def _tail(text: str, n: int = _TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def _descendants(pid: int) -> list[int]:
    """Process ids of all descendants of ``pid`` (Linux ``/proc``; else empty)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Stop torchrun and its workers, which torchrun starts in sessions of their own."""
    workers = _descendants(proc.pid)
    if os.name != "posix":
        proc.kill()
        proc.wait()
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # torchrun forwards it to its workers
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    workers += _descendants(proc.pid)
    for pid in [proc.pid, *workers]:
        for kill in (os.killpg, os.kill):  # the worker's group, then the process itself
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    proc.wait()
    deadline = time.monotonic() + _GRACE_SECONDS  # let the kernel reap killed workers
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.05)


def run_torchrun(
    script: str | Path,
    nproc_per_node: int = 2,
    args: Sequence[str | Path | int | float] = (),
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``script`` in ``nproc_per_node`` processes with ``torchrun`` and return its output.

    The command is ``sys.executable -m torch.distributed.run --standalone
    --nproc_per_node=N script *args`` (the same as ``torchrun --standalone ...``): one
    machine, a rendezvous on a free local port, and the environment variables ``RANK``,
    ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set in every
    process, which is what ``torch.distributed.init_process_group()`` reads. Every rank
    runs with ``OMP_NUM_THREADS=1`` unless ``env`` says otherwise, so that the processes
    do not fight over the CPU cores.

    Each rank's output goes to its own log file (torchrun's ``--log-dir`` with
    ``--redirects 3``), in a temporary folder deleted afterwards.

    :param script: the Python file to run.
    :param nproc_per_node: the number of processes (the world size on one machine).
    :param args: command-line arguments passed to every rank's ``script``.
    :param timeout: seconds after which the whole job (torchrun and every worker) is
        killed.
    :param env: environment variables set in addition to (or instead of) the current
        ones, for example ``{"OMP_NUM_THREADS": "2"}``.
    :returns: the standard output of every rank in rank order, each line prefixed
        with ``[rank<r>]:`` and a space, preceded by anything torchrun itself printed to stdout.
    :raises FileNotFoundError: if ``script`` does not exist.
    :raises ValueError: if ``nproc_per_node`` < 1 or ``timeout`` <= 0.
    :raises RuntimeError: if the job fails; the message names the failing rank(s),
        their exit code as torchrun reports it and the last lines of their stderr.
    :raises TimeoutError: if the job runs longer than ``timeout``; the message
        includes the output collected so far. No process of the job is left running.
    """
    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"run_torchrun: no script {str(script)!r}")
    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int):
        raise TypeError(f"nproc_per_node must be an int, got {nproc_per_node!r}")
    if nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be at least 1, got {nproc_per_node}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    child_env = dict(os.environ, OMP_NUM_THREADS="1")
    child_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="d2lmini-torchrun-") as tmp:
        log_dir = Path(tmp) / "logs"
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc_per_node}", "--max-restarts=0",
            f"--log-dir={log_dir}", "--redirects=3",
            str(script), *map(str, args),
        ]  # fmt: skip
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=child_env,
                start_new_session=os.name == "posix",
            )
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
                collected = _read(out_path) + _ranks_stdout(log_dir)
                raise TimeoutError(
                    f"torchrun {script.name} did not finish within {timeout:g} s and "
                    f"was killed with all its processes; output so far:\n{collected}"
                ) from None
            except BaseException:  # KeyboardInterrupt: leave nothing running
                _kill_tree(proc)
                raise
        output = _read(out_path) + _ranks_stdout(log_dir)
        if returncode == 0:
            return output
        launcher_err = _read(err_path)
        stderr_files = _rank_files(log_dir, "stderr.log")
        # torchrun's report lists the first failure under "Root Cause" and the ranks it
        # then stopped (SIGTERM, exit code -15) under "Failures".
        others, _, root = launcher_err.rpartition("Root Cause")
        failed = {int(r): int(c) for r, c in _FAILURE.findall(root)}
        stopped = {int(r): int(c) for r, c in _FAILURE.findall(others)}
        stopped = {r: c for r, c in stopped.items() if r not in failed}
        if failed:
            summary = "failing rank(s): " + ", ".join(
                f"{r} (exit code {c})" for r, c in sorted(failed.items())
            )
            if stopped:
                summary += "; then stopped by torchrun: " + ", ".join(map(str, stopped))
        else:
            summary = "torchrun did not name a failing rank"
        parts = [f"torchrun {script.name} failed (exit code {returncode}); {summary}"]
        for rank in sorted(failed) or sorted(stderr_files):
            tail = _tail(_read(stderr_files[rank])) if rank in stderr_files else ""
            parts.append(f"--- rank {rank} stderr (last lines) ---\n{tail or '(empty)'}")
        if not failed:
            parts.append(f"--- torchrun stderr (last lines) ---\n{_tail(launcher_err)}")
        raise RuntimeError("\n".join(parts))
