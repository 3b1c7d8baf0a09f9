"""d2lmini.performance.keep_freed_memory, with glibc's mallopt mocked for every path."""

from __future__ import annotations

import sys

import pytest

import d2lmini
from d2lmini import performance

MMAP, TRIM = performance._M_MMAP_THRESHOLD, performance._M_TRIM_THRESHOLD
GiB, MiB = 1 << 30, 1 << 20


class FakeLibc:
    """A libc whose mallopt accepts a parameter's value up to a limit (None: refuses all)."""

    def __init__(self, mmap_limit: int | None, trim_limit: int | None = GiB) -> None:
        self.limits = {MMAP: mmap_limit, TRIM: trim_limit}
        self.calls: list[tuple[int, int]] = []

        def mallopt(param: int, value: int) -> int:  # a function: ctypes sets argtypes
            self.calls.append((param, value))
            limit = self.limits[param]
            return int(limit is not None and value <= limit)

        self.mallopt = mallopt


@pytest.fixture
def fake_libc(monkeypatch):
    def install(libc: FakeLibc) -> FakeLibc:
        monkeypatch.setattr(performance.sys, "platform", "linux")
        monkeypatch.setattr(performance.ctypes, "CDLL", lambda name: libc)
        return libc

    return install


def test_current_glibc_takes_one_gibibyte_for_both_thresholds(fake_libc):
    libc = fake_libc(FakeLibc(mmap_limit=GiB))
    assert performance.keep_freed_memory() == (GiB, GiB)
    assert libc.calls == [(MMAP, GiB), (TRIM, GiB)]


def test_documented_32_mib_limit_falls_back_to_the_largest_accepted(fake_libc):
    libc = fake_libc(FakeLibc(mmap_limit=32 * MiB))
    setting = performance.keep_freed_memory()
    assert setting == (32 * MiB, 32 * MiB) and setting
    assert [v for p, v in libc.calls if p == MMAP] == [
        GiB,
        GiB // 2,
        256 * MiB,
        128 * MiB,
        64 * MiB,
        32 * MiB,
    ]
    assert libc.calls[-1] == (TRIM, 32 * MiB)  # the trim threshold only after the mmap one


def test_refused_mmap_threshold_never_sets_the_trim_threshold(fake_libc):
    # A trim threshold alone would freeze glibc's dynamic mmap threshold at 128 KiB.
    libc = fake_libc(FakeLibc(mmap_limit=None))
    setting = performance.keep_freed_memory()
    assert setting == (0, 0) and not setting
    assert all(param == MMAP for param, _ in libc.calls)
    assert min(v for _, v in libc.calls) > 128 * 1024  # never fixes the default value


def test_refused_trim_threshold_is_reported(fake_libc):
    fake_libc(FakeLibc(mmap_limit=GiB, trim_limit=None))
    setting = performance.keep_freed_memory()
    assert setting == (GiB, 0) and not setting


def test_no_glibc_does_nothing(monkeypatch):
    monkeypatch.setattr(performance.sys, "platform", "darwin")
    assert performance.keep_freed_memory() == (0, 0)
    monkeypatch.setattr(performance.sys, "platform", "linux")

    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(performance.ctypes, "CDLL", no_libc)
    assert performance.keep_freed_memory() == (0, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_real_glibc_keeps_a_64_mib_block_mapped():
    """In a fresh process: after the call, a freed 64 MiB block is reused without faults."""
    import subprocess

    code = (
        "import resource, torch, d2lmini\n"
        "s = d2lmini.keep_freed_memory()\n"
        "faults = []\n"
        "for i in range(12):\n"
        "    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    b = torch.ones(16 * 2**20); del b\n"
        "    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)\n"
        "print(s.mmap_threshold, sorted(faults[9:])[1])\n"
    )  # the heap grows for up to ~7 rounds; then the block is reused: median of 10-12
    import os

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(env, OMP_NUM_THREADS="1"),
    )
    threshold, faults = map(int, out.stdout.split())
    if threshold < 64 * MiB:
        pytest.skip(f"this glibc caps the mmap threshold at {threshold} bytes")
    assert faults < 100  # without the call: 16,384 faults per round (one per 4 KiB page)


def test_exported_from_the_package():
    assert d2lmini.keep_freed_memory is performance.keep_freed_memory
    assert d2lmini.FreedMemory is performance.FreedMemory
