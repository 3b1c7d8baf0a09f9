import pytest
import torch

import d2lmini


def test_save_then_load_round_trips(tmp_path):
    state = {"epoch": 3, "weights": torch.arange(6.0).reshape(2, 3), "names": ["a", "b"]}
    path = d2lmini.save_checkpoint(tmp_path / "sub" / "ckpt.pt", state)
    loaded = d2lmini.load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["names"] == ["a", "b"]
    assert torch.equal(loaded["weights"], state["weights"])
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temporary left


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"epoch": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        d2lmini.save_checkpoint(path, {"epoch": 2, "bad": Unpicklable()})
    assert d2lmini.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"w": torch.randn(100, 100)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(d2lmini.CheckpointError, match="truncated, corrupt"):
        d2lmini.load_checkpoint(path)


def test_garbage_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(d2lmini.CheckpointError, match=str(path.name)):
        d2lmini.load_checkpoint(path)


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        d2lmini.load_checkpoint(tmp_path / "absent.pt")


def test_unsafe_pickles_are_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"fn": print}, path)  # a callable: not allowed with weights_only=True
    with pytest.raises(d2lmini.CheckpointError):
        d2lmini.load_checkpoint(path)


def test_rng_state_round_trip():
    state = d2lmini.capture_rng_state()
    first = torch.rand(3)
    d2lmini.restore_rng_state(state)
    assert torch.equal(torch.rand(3), first)
