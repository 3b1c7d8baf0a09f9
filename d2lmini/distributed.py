"""Launch a script in several processes with ``torchrun`` and collect what it printed.

:func:`run_torchrun` is what a notebook needs to try ``torch.distributed`` for real: it
runs ``python -m torch.distributed.run --standalone --nproc_per_node=N script`` (the
``torchrun`` command), waits for it with a time limit, and returns what every rank
printed. With the ``gloo`` backend, two processes on a laptop CPU are a real
data-parallel job. :func:`backend_and_device` is what each process of such a job calls
to pick its communication backend and device, on a laptop or a multi-node GPU cluster.
"""

from __future__ import annotations

import contextlib
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

from .devices import num_gpus

__all__ = ["Placement", "backend_and_device", "device_type_for", "run_torchrun"]

_TAIL_LINES = 25  # lines of a failing rank's stderr quoted in the error message
_GRACE_SECONDS = 3.0  # after SIGTERM, how long torchrun may take to stop its workers
_FAILURE = re.compile(r"^\s*rank\s*:\s*(\d+).*\n\s*exitcode\s*:\s*(-?\d+)", re.M)


class Placement(NamedTuple):
    """Where one rank of a job computes: the backend for its process group and its device."""

    backend: str
    device: torch.device


def _env_int(env: Mapping[str, str], name: str) -> int:
    if name not in env:
        raise RuntimeError(
            f"{name} is not set: start this script with torchrun, which sets "
            "RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE"
        )
    try:
        return int(env[name])
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {env[name]!r}") from None


def backend_and_device(
    device_type: str = "auto", env: Mapping[str, str] | None = None, cuda_devices: int | None = None
) -> Placement:
    """Choose this rank's backend and device from torchrun's variables and the GPUs.

    ``"auto"`` uses NCCL and GPU ``LOCAL_RANK`` when the node has CUDA devices, else
    gloo on the CPU; ``"cuda"`` requires GPUs; ``"cpu"`` always means gloo on the CPU.
    On a GPU node every local process needs its own GPU: ``LOCAL_WORLD_SIZE`` (processes
    on *this* node, not ``WORLD_SIZE``, all nodes) must not exceed the node's GPUs, or
    this raises instead of silently training on the CPU. Where the scheduler binds one
    GPU to each process (each sees a single device), ask for ``"cuda"``: then every
    rank uses its ``cuda:0``.

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
    cuda_devices = num_gpus() if cuda_devices is None else cuda_devices
    if device_type == "cpu" or (device_type == "auto" and cuda_devices == 0):
        return Placement("gloo", torch.device("cpu"))
    if cuda_devices == 0:
        raise RuntimeError(
            f"LOCAL_RANK {local_rank}: device_type='cuda' but this node has "
            "no CUDA device (choose 'cpu' or 'auto' to use gloo on the CPU)"
        )
    if device_type == "cuda" and cuda_devices == 1 and local_world > 1:
        return Placement("nccl", torch.device("cuda", 0))  # one GPU bound to each process
    if local_world > cuda_devices:
        raise RuntimeError(f"LOCAL_RANK {local_rank}: this node runs LOCAL_WORLD_SIZE="
                           f"{local_world} processes but has {cuda_devices} CUDA "
                           f"device(s); each process needs its own. Start torchrun with "
                           f"--nproc_per_node={cuda_devices}, or choose device_type='cpu' "
                           "to train with gloo on the CPU.")  # fmt: skip
    return Placement("nccl", torch.device("cuda", local_rank))


def device_type_for(nproc_per_node: int, gpus: int | None = None) -> str:
    """The ``device_type`` for a one-machine launch of ``nproc_per_node`` processes.

    ``"auto"`` (a GPU per process, or the CPU on a machine without GPUs), or ``"cpu"``,
    said in one printed line, where the machine has GPUs but fewer than the processes:
    :func:`backend_and_device` would refuse those with ``"auto"``.

    :param gpus: the machine's CUDA device count (default: what torch sees).
    """
    gpus = num_gpus() if gpus is None else gpus
    if 0 < gpus < nproc_per_node:
        print(f"{gpus} GPU(s) for {nproc_per_node} processes: device_type='cpu' (gloo)")
        return "cpu"
    return "auto"


def _attempts(log_dir: Path, name: str) -> dict[int, dict[int, Path]]:
    """``{attempt: {local_rank: file}}`` from torchrun's ``--log-dir``.

    torchrun writes ``<log_dir>/<run id>/attempt_<k>/<local rank>/{stdout,stderr}.log``;
    every restart (``--max-restarts``) is a new attempt ``k``.
    """
    found: dict[int, dict[int, Path]] = {}
    for path in log_dir.glob(f"*/attempt_*/*/{name}"):
        attempt, rank = path.parent.parent.name.removeprefix("attempt_"), path.parent.name
        if attempt.isdigit() and rank.isdigit():
            found.setdefault(int(attempt), {})[int(rank)] = path
    return dict(sorted(found.items()))


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")
    return ""


def _ranks_stdout(log_dir: Path) -> str:
    """Every rank's stdout, attempt by attempt in rank order, each line prefixed with
    ``[rank<r>]: `` (``[rank<r>, restart <k>]: `` after a restart)."""
    lines: list[str] = []
    for k, files in _attempts(log_dir, "stdout.log").items():
        for rank, path in sorted(files.items()):
            tag = f"rank{rank}" + (f", restart {k}" if k else "")
            lines += [f"[{tag}]: {line}" for line in _read(path).splitlines()]
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
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # torchrun forwards it to its workers
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_GRACE_SECONDS)
    workers += _descendants(proc.pid)
    for pid in [proc.pid, *workers]:
        for kill in (os.killpg, os.kill):  # the worker's group, then the process itself
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + _GRACE_SECONDS  # let the kernel reap killed workers
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.05)


def run_torchrun(
    script: str | Path, nproc_per_node: int = 2, args: Sequence[str | Path | int | float] = (),
    timeout: float = 120.0, env: Mapping[str, str] | None = None, max_restarts: int = 0,
) -> str:  # fmt: skip
    """Run ``script`` in ``nproc_per_node`` processes with ``torchrun`` and return its output.

    The command is ``python -m torch.distributed.run --standalone --nproc_per_node=N
    --max-restarts=R script *args``: one machine, a rendezvous on a free local port,
    and ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``
    and ``MASTER_PORT`` set in every process. Ranks run with ``OMP_NUM_THREADS=1``
    unless ``env`` says otherwise. When a rank dies, torchrun stops the others and,
    up to ``max_restarts`` times, starts all of them again. Each rank's output goes to
    its own log file in a temporary folder (``--log-dir``, ``--redirects 3``).

    :param args: command-line arguments passed to every rank's ``script``.
    :param timeout: seconds after which the whole job, every worker included, is killed.
    :param env: environment variables added to (or replacing) the current ones.
    :param max_restarts: how often torchrun may restart the workers after a failure.
    :returns: what torchrun printed, then every rank's stdout (see above), each line
        prefixed with ``[rank<r>]:`` (``[rank<r>, restart <k>]:`` after a restart).
    :raises FileNotFoundError, ValueError: a missing script, a bad argument.
    :raises RuntimeError: if the job fails; it names the failing rank(s), their exit
        code and the last lines of their stderr.
    :raises TimeoutError: after ``timeout``, with the output so far; nothing is left
        running.
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
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
        raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    with tempfile.TemporaryDirectory(prefix="d2lmini-torchrun-") as tmp:
        log_dir = Path(tmp) / "logs"
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc_per_node}", f"--max-restarts={max_restarts}",
            f"--log-dir={log_dir}", "--redirects=3", str(script), *map(str, args),
        ]  # fmt: skip
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env,
                start_new_session=os.name == "posix",
            )  # fmt: skip
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
        if returncode == 0:
            return _read(out_path) + _ranks_stdout(log_dir)
        launcher_err = _read(err_path)
        attempts = _attempts(log_dir, "stderr.log")
        stderr_files = attempts[max(attempts)] if attempts else {}  # the last attempt's
        # torchrun's report lists the first failure under "Root Cause" and the ranks it
        # then stopped (SIGTERM, exit code -15) under "Failures".
        others, _, root = launcher_err.rpartition("Root Cause")
        failed = {int(r): int(c) for r, c in _FAILURE.findall(root)}
        stopped = {int(r): int(c) for r, c in _FAILURE.findall(others) if int(r) not in failed}
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
