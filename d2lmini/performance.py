"""CPU performance knobs that do not change results."""

from __future__ import annotations

import ctypes
import sys
from typing import NamedTuple

__all__ = ["FreedMemory", "keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_WANTED = 1 << 30  # 1 GiB: blocks up to this size are reused instead of unmapped
_DEFAULT = 128 << 10  # glibc's initial threshold: a fixed value this low is worse


class FreedMemory(NamedTuple):
    """What :func:`keep_freed_memory` changed: glibc thresholds in bytes, 0 if unchanged.

    True when both took. ``(x, 0)`` is false, yet the mmap threshold took (which also
    ends glibc's dynamic threshold) and only the trim threshold was refused.
    """

    mmap_threshold: int
    trim_threshold: int

    def __bool__(self) -> bool:
        return self.mmap_threshold > 0 and self.trim_threshold > 0


def keep_freed_memory() -> FreedMemory:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    By default glibc serves blocks above its mmap threshold (dynamic, at most 32 MiB)
    with ``mmap`` and unmaps them on free, so every training step page-faults them in
    again; ``bench/allocator.md`` measures 1.32x (AlexNet-28) to 0.96x (ResNet-18 w/4).
    The mmap threshold is set first, to 1 GiB or, where glibc refuses that (mallopt(3)
    documents 32 MiB as the limit), the largest power of two it accepts; only then the
    trim threshold, to the same value: a trim threshold alone would freeze glibc's
    dynamic threshold at 128 KiB. Results are unchanged. Returns what was set: all
    zeros (false) where glibc is not the allocator (macOS, Windows, musl) or refused
    the mmap threshold.
    """
    nothing = FreedMemory(0, 0)
    if not sys.platform.startswith("linux"):
        return nothing
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return nothing
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    value = _WANTED
    while value > _DEFAULT and not mallopt(_M_MMAP_THRESHOLD, value):
        value //= 2
    if value <= _DEFAULT:
        return nothing
    return FreedMemory(value, value if mallopt(_M_TRIM_THRESHOLD, value) else 0)
