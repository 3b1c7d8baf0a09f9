"""A small stopwatch that records several laps."""

from __future__ import annotations

import time

__all__ = ["Timer"]


class Timer:
    """Record running times: ``start``/``stop`` laps, or use it as a context manager.

    Like d2l's ``Timer``, it starts when it is created, so ``Timer()`` followed by
    :meth:`stop` measures one lap.

    Differs from d2l: it uses ``time.perf_counter`` (monotonic, high resolution) instead
    of ``time.time``; :meth:`stop` without a running lap raises :class:`RuntimeError`
    (d2l measures again from the old start); :meth:`avg` of no laps is 0.0 (d2l raises
    ``ZeroDivisionError``); and it works as a context manager.

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

    def cumsum(self) -> list[float]:
        """Running total after each lap."""
        out, total = [], 0.0
        for t in self.times:
            total += t
            out.append(total)
        return out
