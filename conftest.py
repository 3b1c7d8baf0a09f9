"""Root pytest hooks: a per-notebook (per-file) duration table at the end of a run."""

from __future__ import annotations

from collections import defaultdict

import pytest

_durations: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _durations:
        return
    rows = sorted(_durations.items(), key=lambda item: item[1], reverse=True)
    terminalreporter.write_sep("=", "duration per file, slowest first")
    for path, seconds in rows:
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_durations.values()):8.1f} s  total (all workers)")
