"""d2lmini.distributed: the backend/device choice per rank, and real torchrun jobs of two
CPU processes (gloo)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from d2lmini.distributed import Placement, backend_and_device, device_type_for, run_torchrun

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

    assert d2lmini.distributed.__all__ == [
        "Placement",
        "backend_and_device",
        "device_type_for",
        "run_torchrun",
    ]
    assert d2lmini.distributed.run_torchrun is run_torchrun


def _node(local_rank: int, local_world: int, world: int | None = None) -> dict[str, str]:
    """torchrun's variables for one process; ``world`` counts the processes of all nodes."""
    world = local_world if world is None else world
    return {
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world),
        "WORLD_SIZE": str(world),
        "RANK": str(local_rank),
    }


@pytest.mark.parametrize(
    ("nodes", "gpus_per_node"), [(1, 4), (2, 4), (4, 8)], ids=["1x4", "2x4", "4x8"]
)
def test_one_gpu_per_local_rank_on_every_node(nodes, gpus_per_node):
    # WORLD_SIZE (all nodes) exceeds a node's GPUs on 2 nodes: only the local count matters.
    for local_rank in range(gpus_per_node):
        env = _node(local_rank, gpus_per_node, world=nodes * gpus_per_node)
        assert backend_and_device(env=env, cuda_devices=gpus_per_node) == Placement(
            "nccl", torch.device("cuda", local_rank)
        )


def test_fewer_gpus_than_local_processes_is_an_error_naming_the_fix():
    with pytest.raises(RuntimeError, match=r"LOCAL_WORLD_SIZE=8 .* 4 CUDA device\(s\)") as info:
        backend_and_device(env=_node(5, 8), cuda_devices=4)
    assert "--nproc_per_node=4" in str(info.value) and "device_type='cpu'" in str(info.value)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        backend_and_device("cuda", env=_node(0, 2), cuda_devices=0)


def test_one_gpu_bound_to_each_process_needs_an_explicit_cuda():
    # SLURM's --gpus-per-task=1: every process sees one device, its own, as cuda:0
    with pytest.raises(RuntimeError, match="LOCAL_WORLD_SIZE=4 processes but has 1 CUDA"):
        backend_and_device(env=_node(3, 4), cuda_devices=1)
    assert backend_and_device("cuda", env=_node(3, 4), cuda_devices=1) == Placement(
        "nccl", torch.device("cuda", 0)
    )


def test_cpu_ranks_use_gloo():
    cpu = Placement("gloo", torch.device("cpu"))
    assert backend_and_device(env=_node(1, 2), cuda_devices=0) == cpu  # no GPU: auto = CPU
    assert backend_and_device("cpu", env=_node(1, 8), cuda_devices=4) == cpu  # asked for


def test_outside_torchrun_and_bad_values_are_clear_errors():
    with pytest.raises(RuntimeError, match="LOCAL_RANK is not set: start this script with"):
        backend_and_device(env={}, cuda_devices=0)
    with pytest.raises(ValueError, match="LOCAL_WORLD_SIZE must be an integer, got 'two'"):
        backend_and_device(env={"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match=r"LOCAL_RANK=2 must be in \[0, LOCAL_WORLD_SIZE=2\)"):
        backend_and_device(env=_node(2, 2), cuda_devices=4)
    with pytest.raises(ValueError, match="device_type must be"):
        backend_and_device("gpu", env=_node(0, 1))


PLACEMENT = """\
import os
import torch.distributed as dist
from d2lmini import backend_and_device

fake = os.environ.get("FAKE_CUDA_DEVICES")  # a GPU count to pretend, on a CPU machine
backend, device = backend_and_device(cuda_devices=None if fake is None else int(fake))
if fake is None:
    dist.init_process_group(backend)
    print(f"rank {dist.get_rank()}: {backend} {device} of {os.environ['LOCAL_WORLD_SIZE']}")
    dist.destroy_process_group()
else:
    print(f"local rank {os.environ['LOCAL_RANK']}: {backend} {device}")
"""


def test_torchrun_sets_local_world_size_and_each_rank_chooses(tmp_path):
    script = _write(tmp_path, "placement.py", PLACEMENT)
    lines = run_torchrun(script, nproc_per_node=2, env={"CUDA_VISIBLE_DEVICES": ""}).splitlines()
    assert "[rank0]: rank 0: gloo cpu of 2" in lines and "[rank1]: rank 1: gloo cpu of 2" in lines
    # Pretend the node has 1 GPU: neither rank may fall back to the CPU silently.
    with pytest.raises(RuntimeError, match="LOCAL_WORLD_SIZE=2 processes but has 1 CUDA"):
        run_torchrun(script, nproc_per_node=2, env={"FAKE_CUDA_DEVICES": "1"}, timeout=60)
    lines = run_torchrun(script, nproc_per_node=2, env={"FAKE_CUDA_DEVICES": "2"}).splitlines()
    assert "[rank1]: local rank 1: nccl cuda:1" in lines


def test_device_type_for_a_launch_uses_the_gpus_only_with_one_per_process(capsys):
    assert device_type_for(2, gpus=0) == "auto"  # no GPU: auto means gloo on the CPU
    assert device_type_for(2, gpus=2) == device_type_for(2, gpus=8) == "auto"
    assert capsys.readouterr().out == ""
    assert device_type_for(2, gpus=1) == "cpu"  # 1 GPU, 2 processes: said, not silent
    assert "1 GPU(s) for 2 processes" in capsys.readouterr().out
