"""Training and evaluation for classifiers, in the spirit of d2l's ``train_ch6``.

Differences from d2l: :func:`train` never re-initialises the network (that is the
caller's job), shows a progress bar and a live plot that leaves one static figure,
counts examples/sec over *all* training time (data included), can stop each epoch
after ``max_batches`` (smoke tests), can checkpoint every epoch and resume, and returns
a :class:`History` that notebooks assert on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint

__all__ = [
    "Accumulator",
    "History",
    "accuracy",
    "evaluate_accuracy",
    "fit_full_batch",
    "init_cnn",
    "train",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Number of correct predictions (d2l's convention: a count, not a fraction)."""
    if y_hat.ndim > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    if y_hat.shape != y.shape:
        raise ValueError(
            f"predictions {tuple(y_hat.shape)} and labels {tuple(y.shape)} do not match"
        )
    return float((y_hat.type(y.dtype) == y).sum())


class Accumulator:
    """Keep running sums of ``n`` quantities."""

    def __init__(self, n: int) -> None:
        self.data = [0.0] * n

    def add(self, *args: float) -> None:
        """Add one value to each sum."""
        if len(args) != len(self.data):
            raise ValueError(f"expected {len(self.data)} values, got {len(args)}")
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        """Set every sum to zero."""
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx: int) -> float:
        return self.data[idx]


def _batch_limit(max_batches: int | None) -> float:
    return float("inf") if max_batches is None else max_batches


def evaluate_accuracy(
    net: nn.Module,
    data_iter: Batches,
    device: torch.device | str | None = None,
    max_batches: int | None = None,
) -> float:
    """Accuracy of ``net`` on ``data_iter`` in eval mode without gradients.

    The module's previous train/eval mode is restored afterwards.
    """
    if device is None:
        device = next(iter(net.parameters())).device
    was_training = net.training
    net.eval()
    metric = Accumulator(2)  # correct predictions, examples
    try:
        with torch.no_grad():
            for i, (X, y) in enumerate(data_iter):
                if i >= _batch_limit(max_batches):
                    break
                X, y = X.to(device), y.to(device)
                metric.add(accuracy(net(X), y), y.numel())
    finally:
        net.train(was_training)
    if metric[1] == 0:
        raise ValueError("evaluate_accuracy got no examples")
    return metric[0] / metric[1]


def fit_full_batch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    steps: int = 500,
) -> list[float]:
    """Train on one fixed batch ``(X, y)`` for ``steps`` steps (Part I's loop).

    Returns the loss *before* each step, so ``losses[0]`` is the initial loss.
    """
    losses = []
    for _ in range(steps):
        loss = loss_fn(net(X), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform initialisation for linear and conv layers: ``net.apply(init_cnn)``."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


@dataclass
class History:
    """What :func:`train` measured, one entry per epoch."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples: int = 0
    train_seconds: float = 0.0
    device: str = "cpu"

    @property
    def epochs(self) -> int:
        """Number of finished epochs."""
        return len(self.train_loss)

    @property
    def examples_per_sec(self) -> float:
        """Training examples per second, data loading included (evaluation excluded)."""
        return self.examples / self.train_seconds if self.train_seconds else 0.0

    def summary(self) -> str:
        """The final line d2l prints, with a throughput that counts all training time."""
        return (
            f"loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
            f"test acc {self.test_acc[-1]:.3f}\n"
            f"{self.examples_per_sec:.1f} examples/sec on {self.device}"
        )


class _DisplayWriter:
    """A file-like object that shows tqdm's bar as one updating notebook output."""

    def __init__(self) -> None:
        self._handle: Any = None

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if not line:
            return
        from IPython.display import display

        bundle = {"text/plain": line}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def flush(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    from .plotting import _in_notebook

    notebook = _in_notebook()
    return tqdm(
        total=total, disable=not enabled, file=_DisplayWriter() if notebook else None,
        ncols=80, ascii=False if notebook else None, mininterval=1.0, unit="batch",
        desc="training",
    )  # fmt: skip


def train(
    net: nn.Module,
    train_iter: Batches,
    test_iter: Batches,
    num_epochs: int,
    lr: float,
    device: torch.device | str,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    loss: nn.Module | None = None,
    max_batches: int | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    plot: bool = True,
    progress: bool = True,
) -> History:
    """Train a classifier with mini-batch SGD (or ``optimizer``) and return its history.

    ``net`` must already be initialised; it is moved to ``device``. ``scheduler``, built
    on ``optimizer``, steps once per epoch. ``max_batches``
    caps the batches per epoch (training and evaluation). With ``checkpoint`` the state
    is saved atomically after every epoch; with ``resume=True`` training continues
    from that file when it exists.
    """
    from .plotting import Animator

    device = torch.device(device)
    net.to(device)
    if optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    history = History(device=str(device))
    start_epoch = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=device)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        history = History(**state["history"])
        start_epoch = state["epoch"] + 1
    try:
        batches_per_epoch = min(len(train_iter), _batch_limit(max_batches))  # type: ignore[arg-type]
    except TypeError:
        batches_per_epoch = max_batches or 0
    animator = (
        Animator(xlabel="epoch", xlim=(1, num_epochs), legend=["train loss", "train acc", "test acc"])
        if plot
        else None
    )
    for epoch, values in enumerate(zip(history.train_loss, history.train_acc, history.test_acc)):
        if animator is not None:
            animator.add(epoch + 1, values)
    bar = _progress_bar(int(batches_per_epoch) * (num_epochs - start_epoch), progress)
    for epoch in range(start_epoch, num_epochs):
        metric = Accumulator(3)  # summed loss, correct predictions, examples
        net.train()
        tic = time.perf_counter()
        for i, (X, y) in enumerate(train_iter):
            if i >= _batch_limit(max_batches):
                break
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            y_hat = net(X)
            batch_loss = loss(y_hat, y)
            batch_loss.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(float(batch_loss) * y.shape[0], accuracy(y_hat, y), y.shape[0])
            bar.update(1)
            bar.set_postfix_str(f"epoch {epoch + 1}/{num_epochs}", refresh=False)
        if scheduler is not None:
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        history.train_seconds += time.perf_counter() - tic
        history.examples += int(metric[2])
        test_acc = evaluate_accuracy(net, test_iter, device, max_batches=max_batches)
        history.train_loss.append(metric[0] / metric[2])
        history.train_acc.append(metric[1] / metric[2])
        history.test_acc.append(test_acc)
        if animator is not None:
            animator.add(epoch + 1, (history.train_loss[-1], history.train_acc[-1], test_acc))
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "epoch": epoch,
                    "history": asdict(history),
                    "rng": capture_rng_state(),
                },
            )
    bar.close()
    print(history.summary())
    return history
