import io
import os
import stat
from pathlib import Path

import pytest
import torch

import d2lmini
from d2lmini import checkpoint as ckpt_module


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
    with pytest.raises(d2lmini.CheckpointError, match="truncated or corrupt"):
        d2lmini.load_checkpoint(path)


def test_garbage_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(d2lmini.CheckpointError, match=str(path.name)):
        d2lmini.load_checkpoint(path)


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        d2lmini.load_checkpoint(tmp_path / "absent.pt")


def test_unsafe_pickles_are_refused_even_with_a_valid_checksum(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    # write a checkpoint whose payload holds a callable, with a correct checksum
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: real_save({"fn": print}, f))
    d2lmini.save_checkpoint(path, {"harmless": 1})
    monkeypatch.undo()
    with pytest.raises(d2lmini.CheckpointError, match="unsafe to unpickle"):
        d2lmini.load_checkpoint(path)


def test_a_plain_torch_save_file_is_named_as_such(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(d2lmini.CheckpointError, match="plain torch.save file.*torch.load"):
        d2lmini.load_checkpoint(path)


@pytest.mark.parametrize("where", ["header", "digest", "payload start", "middle", "last"])
def test_every_flipped_byte_is_detected(tmp_path, where):
    path = d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"w": torch.randn(50, 50)})
    data = bytearray(path.read_bytes())
    header = len(ckpt_module.MAGIC) + len("sha256 ") + 64 + 1
    offset = {
        "header": 3,
        "digest": len(ckpt_module.MAGIC) + 10,
        "payload start": header,
        "middle": len(data) // 2,
        "last": len(data) - 1,
    }[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(d2lmini.CheckpointError, match="corrupt"):
        d2lmini.load_checkpoint(path)


def test_the_checksum_guards_tensor_bytes_that_torch_load_accepts(tmp_path):
    """A flip inside tensor data still unpickles with torch.load: only the checksum sees it."""
    weights = torch.zeros(64, dtype=torch.float64)
    path = d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"w": weights})
    data = bytearray(path.read_bytes())
    payload_start = data.index(b"PK\x03\x04")
    tensor_bytes = bytes(8 * 64)  # the zeros, as stored
    at = data.index(tensor_bytes, payload_start)
    data[at + 100] = 0x40
    silently_wrong = torch.load(io.BytesIO(bytes(data[payload_start:])), weights_only=True)["w"]
    assert not torch.equal(silently_wrong, weights)  # torch.load alone does not notice
    path.write_bytes(bytes(data))
    with pytest.raises(d2lmini.CheckpointError, match="SHA-256"):
        d2lmini.load_checkpoint(path)


def test_saved_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"epoch": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    old = os.umask(0o022)
    try:
        d2lmini.save_checkpoint(path, {"epoch": 2})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = d2lmini.save_checkpoint("~/runs/ckpt.pt", {"epoch": 1})
    assert path == tmp_path / "runs" / "ckpt.pt" and path.is_file()
    assert d2lmini.load_checkpoint("~/runs/ckpt.pt")["epoch"] == 1


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"folder.*checkpoint\.pt"):
        d2lmini.save_checkpoint(tmp_path, {"epoch": 1})
    with pytest.raises(IsADirectoryError, match="is a folder"):
        d2lmini.load_checkpoint(tmp_path)


def test_a_file_in_the_parent_path_is_named(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        d2lmini.save_checkpoint(tmp_path / "runs" / "ckpt.pt", {"epoch": 1})


def test_permission_errors_name_the_folder_and_the_fix(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # creating the temporary file is what fails in a read-only folder (simulated: root may write)
    monkeypatch.setattr(ckpt_module, "open", denied, raising=False)
    with pytest.raises(PermissionError, match=f"no permission to write in {tmp_path}"):
        d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"epoch": 1})
    monkeypatch.undo()

    path = d2lmini.save_checkpoint(tmp_path / "ckpt.pt", {"epoch": 1})
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PermissionError, match="cannot read checkpoint .*ckpt.pt"):
        d2lmini.load_checkpoint(path)


def test_state_must_be_a_dict(tmp_path):
    with pytest.raises(TypeError, match="must be a dict, got list"):
        d2lmini.save_checkpoint(tmp_path / "ckpt.pt", [1, 2])
    assert not list(tmp_path.iterdir())


def test_rng_state_round_trip():
    state = d2lmini.capture_rng_state()
    first = torch.rand(3)
    d2lmini.restore_rng_state(state)
    assert torch.equal(torch.rand(3), first)


# --- the Checkpoint callback of d2lmini.train ----------------------------------------


def toy_batches(n=512, batch_size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return [(X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]


RECIPE = d2lmini.Recipe(0.3, "one_cycle", momentum=0.9, weight_decay=1e-3)


def run(epochs, num_epochs=4, callbacks=(), recipe=RECIPE, batches=None):
    """``epochs`` of a ``num_epochs`` one-cycle run of a seeded network."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    class StopAt(d2lmini.Callback):
        def on_epoch_end(self, state):
            state.stop = state.epoch == epochs

    history = d2lmini.train(
        net, batches or toy_batches(), toy_batches(seed=1), num_epochs, device="cpu",
        recipe=recipe, display=False, callbacks=[*callbacks, StopAt()],
    )  # fmt: skip
    return net, history


def test_resume_from_a_checkpoint_equals_uninterrupted_training(tmp_path, capsys):
    full, ref = run(4)
    path = tmp_path / "run.pt"
    run(2, callbacks=[d2lmini.Checkpoint(path)])  # a crash after epoch 2
    assert f"no checkpoint at {path}, starting from scratch" in capsys.readouterr().out
    resumed, history = run(4, callbacks=[d2lmini.Checkpoint(path)])  # a new process
    assert f"resuming from {path}: 2 of 4 epochs done" in capsys.readouterr().out
    assert history.train_loss == ref.train_loss and history.test_acc == ref.test_acc
    torch.testing.assert_close(resumed.state_dict(), full.state_dict(), rtol=0, atol=0)


def test_resume_of_a_finished_run_returns_its_history(tmp_path):
    path = tmp_path / "run.pt"
    net, ref = run(4, callbacks=[d2lmini.Checkpoint(path)])
    again, history = run(4, callbacks=[d2lmini.Checkpoint(path)])
    assert history.train_loss == ref.train_loss and history.examples == ref.examples
    torch.testing.assert_close(again.state_dict(), net.state_dict(), rtol=0, atol=0)


def test_resume_false_overwrites_instead_of_resuming(tmp_path, capsys):
    path = tmp_path / "run.pt"
    run(2, callbacks=[d2lmini.Checkpoint(path)])
    _, history = run(1, callbacks=[d2lmini.Checkpoint(path, resume=False)])
    assert history.epochs == 1 and "resuming" not in capsys.readouterr().out
    assert d2lmini.load_checkpoint(path)["epoch"] == 1


def test_resume_with_another_recipe_names_both(tmp_path):
    path = tmp_path / "run.pt"
    run(1, callbacks=[d2lmini.Checkpoint(path)])
    with pytest.raises(ValueError, match=r"'lr': 0\.3.*'lr': 0\.1.*same recipe"):
        run(2, callbacks=[d2lmini.Checkpoint(path)], recipe=d2lmini.Recipe(0.1))


def test_resume_refuses_a_checkpoint_with_more_epochs(tmp_path):
    path = tmp_path / "run.pt"
    run(3, num_epochs=3, callbacks=[d2lmini.Checkpoint(path)])
    with pytest.raises(ValueError, match="already holds 3 epochs, more than num_epochs=2"):
        run(2, num_epochs=2, callbacks=[d2lmini.Checkpoint(path)])


def test_no_checkpoint_is_written_after_a_divergence(tmp_path):
    path = tmp_path / "run.pt"

    class EpochTwoHasNaN(list):
        passes = 0

        def __iter__(self):
            self.passes += 1
            batches = [(X.clone(), y) for X, y in toy_batches()]
            if self.passes == 2:
                batches[5][0][0, 0] = float("nan")
            return iter(batches)

    with pytest.raises(FloatingPointError, match="epoch 2, batch 6"):
        run(3, callbacks=[d2lmini.Checkpoint(path)], batches=EpochTwoHasNaN(toy_batches()))
    state = d2lmini.load_checkpoint(path)
    assert state["epoch"] == 1  # the checkpoint of epoch 1 is kept, finite
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_non_finite_buffers_are_not_checkpointed(tmp_path):
    class Spoils(torch.nn.Module):
        """A running statistic that overflows, as a broken normalisation layer might."""

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)
            self.register_buffer("running", torch.zeros(1))

        def forward(self, X):
            self.running += float("inf") if self.training else 0.0
            return self.linear(X)

    path = tmp_path / "run.pt"
    with pytest.raises(FloatingPointError, match="not overwriting checkpoint"):
        d2lmini.train(Spoils(), toy_batches(), toy_batches(), 1, 0.1, "cpu", display=False,
                      callbacks=[d2lmini.Checkpoint(path)])  # fmt: skip
    assert not path.exists()
