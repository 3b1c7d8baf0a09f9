"""Pick the device to compute on: CUDA, Apple MPS or the CPU.

Every notebook asks :func:`try_gpu` for its device and never hard-codes ``"cuda"``,
so the same code runs on a laptop CPU and on a GPU server.
"""

from __future__ import annotations

import torch

__all__ = ["cpu", "num_gpus", "synchronize", "try_gpu", "try_all_gpus"]


def cpu() -> torch.device:
    """Return the CPU device."""
    return torch.device("cpu")


def num_gpus() -> int:
    """Return the number of CUDA GPUs PyTorch can see (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def try_gpu(i: int = 0) -> torch.device:
    """Return CUDA GPU ``i`` if it exists, else Apple's MPS device, else the CPU.

    Differs from d2l: d2l never returns MPS (it falls back to the CPU on a Mac with an
    Apple GPU), and a negative ``i`` raises :class:`ValueError` naming the problem (d2l's
    raises a ``RuntimeError`` about an invalid device string ``cuda:-1``). Without CUDA
    and MPS both return the CPU.

    :param i: the index of the CUDA GPU, >= 0.

    >>> try_gpu(99).type in {"cuda", "mps", "cpu"}
    True
    """
    if i < 0:
        raise ValueError(f"GPU index must be >= 0, got {i}")
    if num_gpus() > i:
        return torch.device(f"cuda:{i}")
    if i == 0 and _mps_available():
        return torch.device("mps")
    return cpu()


def try_all_gpus() -> list[torch.device]:
    """Return every CUDA GPU, or ``[cpu]`` when there is none.

    Differs from d2l: the list is never empty. d2l's version returns ``[]`` without a
    GPU (although its docstring promises ``[cpu()]``), which breaks code that later
    indexes ``devices[0]``.
    """
    gpus = [torch.device(f"cuda:{i}") for i in range(num_gpus())]
    return gpus or [cpu()]


def synchronize(device: torch.device | str) -> None:
    """Wait until all work queued on ``device`` has finished.

    CUDA and MPS run operations asynchronously: a call returns once the work is queued.
    Call this before reading a clock, or a timing measures only the queueing. On the
    CPU, whose operations finish before they return, it does nothing.

    :param device: a device such as ``try_gpu()``, or its name (``"cuda:0"``).
    :raises ValueError: for a device type other than ``cpu``, ``cuda`` and ``mps``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    elif device.type != "cpu":
        raise ValueError(f"synchronize() supports cpu, cuda and mps, not {device.type!r}")
