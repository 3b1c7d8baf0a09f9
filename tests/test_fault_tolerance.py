"""Faults survived, nothing lost: the checkpoint chapter's own training script, killed.

The script is read from the ``%%writefile train.py`` cell of
``chapters/part5_performance/05_checkpoints_world_size.ipynb``, so the test checks what
the book teaches. A worker is killed with SIGKILL mid-run under ``torchrun
--max-restarts``: the job must end with the weights and optimizer state of an
uninterrupted run, bit for bit. A process killed while writing checkpoints with
:func:`d2lmini.save_checkpoint` must leave a complete checkpoint behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import d2lmini
from d2lmini.distributed import run_torchrun

CHAPTER = (
    Path(__file__).resolve().parents[1]
    / "chapters"
    / "part5_performance"
    / "05_checkpoints_world_size.ipynb"
)
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def chapter_script() -> str:
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    (script,) = [s for s in sources if s.startswith("%%writefile train.py\n")]
    return script.split("\n", 1)[1]


@pytest.fixture
def job(tmp_path, monkeypatch):
    """The chapter's set-up in a temporary folder: data slice, initial weights, script."""
    monkeypatch.chdir(tmp_path)
    images, labels = d2lmini.read_fashion_mnist("train")
    n = 256
    torch.save({"X": images[:n].reshape(n, -1).double() / 255, "y": labels[:n]}, "data.pt")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    ).double()
    torch.save(model.state_dict(), "init.pt")
    Path("train.py").write_text(chapter_script())

    def launch(ckpt: str, out: str, **options: object) -> str:
        args = [
            "--data",
            "data.pt",
            "--init",
            "init.pt",
            "--device",
            "cpu",
            "--epochs",
            3,
            "--batch",
            16,
            "--lr",
            0.05,
            "--ckpt",
            ckpt,
            "--out",
            out,
            "--save-every",
            4,
            "--step-pause",
            0.05,
        ]  # 8 steps an epoch, 24 in all
        return run_torchrun(
            "train.py",
            2,
            args=args,
            timeout=120,
            env={"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"},
            **options,
        )  # type: ignore[arg-type]

    return launch


def kill_when(path: str, pid_file: str, killed: list[int]) -> None:
    """SIGKILL the process in ``pid_file`` once ``path`` exists; nobody if it never does."""
    deadline = time.monotonic() + 60
    while not Path(path).exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)
    pid = int(Path(pid_file).read_text())
    os.kill(pid, signal.SIGKILL)
    killed.append(pid)


def test_worker_killed_mid_run_ends_bitwise_equal_to_an_uninterrupted_run(job):
    job("reference_ckpt.pt", "reference.pt")
    for pid_file in Path().glob("pid*"):  # the reference run's: never kill a stale pid
        pid_file.unlink()
    killed: list[int] = []
    killer = threading.Thread(target=kill_when, args=("ckpt.pt", "pid1", killed), daemon=True)
    killer.start()
    output = job("ckpt.pt", "resumed.pt", max_restarts=1)
    killer.join()
    assert killed, "the killer never fired"
    starts = [line for line in output.splitlines() if "attempt 1: starting after step" in line]
    assert len(starts) == 2  # both ranks were restarted ...
    step = int(starts[0].rsplit(" ", 1)[1])
    assert 4 <= step < 24 and step % 4 == 0  # ... from a mid-run checkpoint
    assert "[rank0, restart 1]: finished after step 24" in output.splitlines()
    reference = torch.load("reference.pt", weights_only=True)
    resumed = torch.load("resumed.pt", weights_only=True)
    for part in ("model", "optimizer"):
        torch.testing.assert_close(resumed[part], reference[part], rtol=0, atol=0)


WRITER = """\
import sys, torch, d2lmini
path = sys.argv[1]
state = {"weights": torch.zeros(8 * 2**20)}  # 32 MiB: a write takes a while
for version in range(1, 1000):
    state["weights"].fill_(version)
    state["version"] = version
    d2lmini.save_checkpoint(path, state)
    print(version, flush=True)
"""


def kill_a_writer_during_a_save(path: Path) -> bool:
    """Start WRITER, kill it while a temporary file exists; True if it was still there."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "1"  # the first checkpoint is complete
    deadline = time.monotonic() + 30
    while not list(path.parent.glob(f"{path.name}*.part")) and time.monotonic() < deadline:
        time.sleep(0.0005)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    return bool(list(path.parent.glob(f"{path.name}*.part")))


def test_killed_during_a_save_leaves_a_complete_checkpoint(tmp_path):
    for attempt in range(5):  # the kill must land mid-write; it almost always does at once
        path = tmp_path / f"attempt{attempt}" / "ckpt.pt"
        if kill_a_writer_during_a_save(path):
            break
    else:
        pytest.fail("the kill never landed during a save")
    state = d2lmini.load_checkpoint(path)  # verifies the checksum of the whole payload
    version = state["version"]
    assert version >= 1
    assert torch.equal(state["weights"], torch.full((8 * 2**20,), float(version)))
