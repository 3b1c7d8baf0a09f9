"""A small stopwatch that records several laps, and timings of rivals taken in turn."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch

__all__ = ["Timer", "time_in_turn"]


class Timer:
    """Record running times: ``start``/``stop`` laps, or use it as a context manager.

    Like d2l's ``Timer``, it starts when it is created, so ``Timer()`` followed by
    :meth:`stop` measures one lap.

    Differs from d2l: it uses ``time.perf_counter`` (monotonic, high resolution) instead
    of ``time.time``; :meth:`stop` without a running lap raises :class:`RuntimeError`
    (d2l measures again from the old start); :meth:`avg` of no laps is 0.0 (d2l raises
    ``ZeroDivisionError``); it works as a context manager; and it has no ``cumsum``
    (``itertools.accumulate(t.times)``), which the book never needs.

    >>> t = Timer()
    >>> with t:
    ...     _ = sum(range(1000))
    >>> len(t.times)
    1
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self._tik: float | None = None
        self.start()

    def start(self) -> None:
        """Start a lap."""
        self._tik = time.perf_counter()

    def stop(self) -> float:
        """Stop the lap, record it and return its length in seconds."""
        if self._tik is None:
            raise RuntimeError("Timer.stop() called without a running lap; call start() first")
        self.times.append(time.perf_counter() - self._tik)
        self._tik = None
        return self.times[-1]

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def avg(self) -> float:
        """Mean lap time."""
        return self.sum() / len(self.times) if self.times else 0.0

    def sum(self) -> float:
        """Total of all laps."""
        return float(sum(self.times))


def time_in_turn(
    fns: Mapping[str, Callable[[], object]], rounds: int = 5, seconds: float = 1.0,
    device: torch.device | str | None = None, warmup: int = 3,
) -> dict[str, list[float]]:  # fmt: skip
    """Seconds per call of each function, timed in turn: ``{name: [one per round]}``.

    Each of ``rounds`` rounds times every function once, for ``seconds / rounds`` with
    ``torch.utils.benchmark.Timer`` (its median, all torch threads), so that a slow
    moment of the machine hits every rival rather than one. Compare medians, and read
    the rounds' spread as the noise. Every function is called ``warmup`` times first.

    :param fns: the rivals, by name.
    :param device: the device to synchronise after each call; by default the current
        CUDA device once CUDA is in use (queued GPU work is then counted), else none.
    :raises ValueError: for no functions, ``rounds`` < 1 or ``seconds`` <= 0.
    """
    if not isinstance(fns, Mapping) or not fns:
        raise ValueError("fns must be a non-empty mapping of names to functions")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")
    from torch.utils import benchmark

    from .devices import synchronize

    def sync() -> None:
        if device is not None:
            synchronize(device)
        elif torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    threads = torch.get_num_threads()  # each benchmark.Timer restores it when it is done
    for _ in range(rounds):
        for name, fn in fns.items():
            timer = benchmark.Timer(
                stmt="fn(); sync()", globals=dict(fn=fn, sync=sync), num_threads=threads
            )
            samples[name].append(timer.blocked_autorange(min_run_time=seconds / rounds).median)
    return samples
