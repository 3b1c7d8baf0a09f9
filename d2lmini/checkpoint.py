"""Checkpoints that survive a crash: atomic writes, checksums, safe loads, RNG state.

A checkpoint file written by :func:`save_checkpoint` is a two-line text header followed
by the bytes of an ordinary ``torch.save`` of the state::

    D2LMINI-CHECKPOINT 1
    sha256 <64 hexadecimal digits of the SHA-256 of the payload>
    <payload: torch.save(state)>

:func:`load_checkpoint` recomputes the checksum before it unpickles anything, so a file
that was truncated, or that has a single flipped byte anywhere, raises
:class:`CheckpointError` instead of loading silently wrong weights. The payload is then
loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import pickle
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Checkpoint", "CheckpointError", "capture_rng_state", "load_checkpoint", "restore_rng_state",
    "save_checkpoint",
]  # fmt: skip

MAGIC = b"D2LMINI-CHECKPOINT 1\n"
_DIGEST_PREFIX = b"sha256 "
_HEADER_SIZE = len(MAGIC) + len(_DIGEST_PREFIX) + 64 + 1  # magic, digest line
_LOAD_ERRORS = (RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile)


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used (truncated, corrupt or unsafe)."""


@contextlib.contextmanager
def _explain_permission(message: str) -> Iterator[None]:
    """Re-raise a permission failure (also a read-only disk) as a PermissionError saying
    ``message`` and the system's reason."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in (
            errno.EACCES,
            errno.EPERM,
            errno.EROFS,
        ):
            raise PermissionError(f"{message} ({exc.strerror})") from exc
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); silently skipped where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Save ``state`` to ``path`` atomically, with a checksum, and return the path.

    The data goes to a temporary file in the same folder, is flushed to disk, and only
    then renamed over ``path``: a crash mid-write leaves the previous checkpoint intact.
    The file starts with a short header holding the SHA-256 checksum of the serialised
    state (see the module documentation), so :func:`load_checkpoint` detects any later
    damage. ``~`` in ``path`` is expanded, missing folders are created, and the file gets
    the usual permissions (``0o666`` minus the umask), like a file made by ``open``.

    :param path: the checkpoint file to write (replaced if it exists).
    :param state: a dict of tensors, numbers, strings and containers of them.
    :raises TypeError: if ``state`` is not a dict.
    :raises IsADirectoryError: if ``path`` is a folder.
    :raises NotADirectoryError: if a parent of ``path`` is a file.
    :raises PermissionError: if the folder cannot be created or written to.
    """
    if not isinstance(state, dict):
        raise TypeError(f"a checkpoint state must be a dict, got {type(state).__name__}")
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(
            f"cannot save a checkpoint to {path}: it is a folder; "
            f"pass a file path such as {path / 'checkpoint.pt'}"
        )
    folder = path.parent
    try:
        with _explain_permission(
            f"cannot save a checkpoint to {path}: no permission to "
            f"create the folder {folder}; choose a writable location"
        ):
            folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise NotADirectoryError(
            f"cannot save a checkpoint to {path}: a parent of it is a file, not a folder "
            f"({exc.filename})"
        ) from exc
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    digest = hashlib.sha256(payload).hexdigest().encode("ascii")
    with _explain_permission(
        f"cannot save a checkpoint to {path}: no permission to write in {folder} (it is "
        "written to a temporary file there, then renamed); choose a folder you can write to"
    ):
        tmp = folder / f"{path.name}.{uuid.uuid4().hex[:12]}.part"
        file = open(tmp, "xb")  # a new file, with open's permissions (0o666 minus the umask)
    try:
        with file as f:
            f.write(MAGIC + _DIGEST_PREFIX + digest + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return path


def load_checkpoint(
    path: str | Path, map_location: str | torch.device | None = None
) -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint`, verifying its checksum.

    The SHA-256 checksum stored in the file's header is checked before anything is
    unpickled; the state is then loaded with ``torch.load(..., weights_only=True)``.

    :param path: the checkpoint file (``~`` is expanded).
    :param map_location: passed to ``torch.load``, e.g. ``"cpu"`` to load GPU tensors
        on a machine without a GPU.
    :returns: the state dict that was saved.
    :raises FileNotFoundError: if there is no file at ``path``.
    :raises IsADirectoryError: if ``path`` is a folder.
    :raises PermissionError: if the file cannot be read.
    :raises CheckpointError: if the file is not a d2lmini checkpoint (for example a
        plain ``torch.save`` file), is truncated or corrupt (checksum mismatch), or holds
        objects that are unsafe to unpickle.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {path} is a folder, not a checkpoint file")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with _explain_permission(f"cannot read checkpoint {path}: check its owner and mode (ls -l)"):
        data = path.read_bytes()
    if not data.startswith(MAGIC):
        if data.startswith(b"PK\x03\x04"):
            raise CheckpointError(f"{path} is a plain torch.save file, not a checkpoint written by "
                                  "d2lmini.save_checkpoint (it has no checksum); load it with "
                                  "torch.load(path, weights_only=True)")  # fmt: skip
        raise CheckpointError(
            f"{path} ({len(data)} bytes) is not a d2lmini checkpoint: its header is "
            "missing or damaged, so the file is truncated, corrupt or of another kind"
        )
    header, payload = data[:_HEADER_SIZE], data[_HEADER_SIZE:]
    stored = header[len(MAGIC) :].removeprefix(_DIGEST_PREFIX).rstrip(b"\n")
    if hashlib.sha256(payload).hexdigest().encode("ascii") != stored:
        raise CheckpointError(
            f"checkpoint {path} ({len(data)} bytes) is truncated or corrupt: the SHA-256 "
            "checksum of its contents does not match the one stored when it was written"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except _LOAD_ERRORS as exc:
        raise CheckpointError(
            f"cannot load checkpoint {path} with weights_only=True: it holds objects that are "
            f"unsafe to unpickle, or it was written by an incompatible PyTorch. Cause: {exc}"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    return state


def capture_rng_state() -> dict[str, Any]:
    """The CPU and CUDA random-generator states, for an exact resume.

    :returns: ``{"torch": cpu_state}``, plus ``"cuda"`` (one state per GPU) when CUDA is
        available.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`capture_rng_state`.

    :param state: the dict returned by :func:`capture_rng_state`.
    """
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class Checkpoint:
    """A :func:`~d2lmini.train` callback: save the run after every epoch, resume from it.

    After each epoch the model, optimizer, scheduler, history, recipe and random-generator
    states are saved atomically to ``path`` (:func:`save_checkpoint`), never with NaN or
    infinite weights. With ``resume=True`` (the default) a run whose ``path`` exists
    continues from it and prints ``resuming from PATH: k of n epochs done``; otherwise it
    prints ``no checkpoint at PATH, starting from scratch``: the same cell works for the
    first run and after a crash. A checkpoint written with another recipe, or holding
    more epochs than the run asks for, raises :class:`ValueError` (delete the file to
    start afresh).
    """

    def __init__(self, path: str | Path, resume: bool = True) -> None:
        self.path, self.resume = Path(path).expanduser(), resume

    def on_start(self, state: Any) -> None:
        from .training import History

        if not self.resume:
            return
        if not self.path.exists():
            print(f"no checkpoint at {self.path}, starting from scratch")
            return
        saved = load_checkpoint(self.path, map_location=state.device)
        now = dataclasses.asdict(state.recipe)
        if saved["recipe"] != now:
            raise ValueError(
                f"checkpoint {self.path} was written with {saved['recipe']}, but this run "
                f"uses {now}; train with the same recipe, or delete the checkpoint"
            )
        if saved["epoch"] > state.num_epochs:
            raise ValueError(
                f"checkpoint {self.path} already holds {saved['epoch']} epochs, more than "
                f"num_epochs={state.num_epochs}"
            )
        state.net.load_state_dict(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scheduler is not None:
            state.scheduler.load_state_dict(saved["scheduler"])
        restore_rng_state(saved["rng"])
        state.history, state.epoch = History(**saved["history"]), saved["epoch"]
        print(f"resuming from {self.path}: {state.epoch} of {state.num_epochs} epochs done")

    def on_epoch_end(self, state: Any) -> None:
        from .training import _all_finite

        model = state.net.state_dict()
        if not _all_finite(model.values()):
            raise FloatingPointError(
                f"the model holds NaN or infinite values after epoch {state.epoch}; "
                f"not overwriting checkpoint {self.path} with them"
            )
        scheduler = state.scheduler.state_dict() if state.scheduler is not None else None
        save_checkpoint(self.path, dict(
            model=model, optimizer=state.optimizer.state_dict(), scheduler=scheduler,
            recipe=dataclasses.asdict(state.recipe), epoch=state.epoch,
            history=dataclasses.asdict(state.history), rng=capture_rng_state(),
        ))  # fmt: skip
