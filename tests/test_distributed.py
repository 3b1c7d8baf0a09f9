"""d2lmini.distributed.run_torchrun: real torchrun jobs of two CPU processes (gloo)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from d2lmini.distributed import run_torchrun

HELLO = """\
import os
import torch.distributed as dist

dist.init_process_group("gloo")
try:
    print(f"hello from rank {dist.get_rank()} of {dist.get_world_size()}")
    print(f"threads {os.environ['OMP_NUM_THREADS']}")
finally:
    dist.destroy_process_group()
"""

FAIL_ON_RANK_1 = """\
import sys
import torch.distributed as dist

dist.init_process_group("gloo")
if dist.get_rank() == 1:
    print("rank 1 is about to fail", file=sys.stderr, flush=True)
    raise ValueError("rank one broke " + sys.argv[1])
dist.barrier()  # rank 0 waits here until torchrun stops it
"""

SLEEP = """\
import sys
import time

print("sleeping", flush=True)
time.sleep(600)
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _processes_running(marker: str) -> list[str]:
    """Command lines of the running processes that mention ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text:
            found.append(text)
    return found


def test_success_returns_every_rank_lines(tmp_path):
    output = run_torchrun(_write(tmp_path, "hello.py", HELLO), nproc_per_node=2)
    lines = output.splitlines()
    assert "[rank0]: hello from rank 0 of 2" in lines
    assert "[rank1]: hello from rank 1 of 2" in lines
    assert lines.count("[rank0]: threads 1") == 1 and lines.count("[rank1]: threads 1") == 1


def test_failing_rank_is_named_with_its_stderr(tmp_path):
    script = _write(tmp_path, "fail.py", FAIL_ON_RANK_1)
    with pytest.raises(RuntimeError) as info:
        run_torchrun(script, nproc_per_node=2, args=["on purpose"], timeout=60)
    message = str(info.value)
    assert "failing rank(s): 1 (exit code 1)" in message
    assert "--- rank 1 stderr" in message
    assert "rank 1 is about to fail" in message
    assert "ValueError: rank one broke on purpose" in message
    assert "--- rank 0 stderr" not in message  # rank 0 was only stopped by torchrun


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_timeout_kills_the_whole_job(tmp_path):
    script = _write(tmp_path, "sleep_forever.py", SLEEP)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish within 5 s"):
        run_torchrun(script, nproc_per_node=2, timeout=5)
    assert time.monotonic() - start < 15
    assert _processes_running(str(script)) == []  # neither torchrun nor a worker


def test_bad_arguments(tmp_path):
    missing = tmp_path / "no_such_script.py"
    with pytest.raises(FileNotFoundError, match="no_such_script.py"):
        run_torchrun(missing)
    script = _write(tmp_path, "hello.py", HELLO)
    with pytest.raises(ValueError, match="at least 1"):
        run_torchrun(script, nproc_per_node=0)
    with pytest.raises(TypeError):
        run_torchrun(script, nproc_per_node=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        run_torchrun(script, timeout=0)


def test_importable_from_the_package():
    import d2lmini.distributed

    assert d2lmini.distributed.__all__ == ["run_torchrun"]
    assert d2lmini.distributed.run_torchrun is run_torchrun
