"""Training and evaluation for classifiers, in the spirit of d2l's ``train_ch6``.

Differences from d2l: :func:`train` never re-initialises the network (that is the
caller's job), shows a progress bar and a live plot that leaves one static figure,
counts examples/sec over *all* training time (data included), can stop each epoch
after ``max_batches`` (smoke tests), can checkpoint every epoch and resume, stops with
a clear error when the loss diverges, and returns a :class:`History` that notebooks
assert on.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterable, Iterator
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
    """Number of correct predictions (d2l's convention: a count, not a fraction).

    :param y_hat: scores of shape (N, classes), or predicted labels of shape (N,).
    :param y: true labels of shape (N,).
    :raises ValueError: if the predictions and the labels have different shapes (d2l's
        version broadcasts them silently and returns a meaningless count).
    """
    if y_hat.ndim > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    if y_hat.shape != y.shape:
        raise ValueError(
            f"predictions {tuple(y_hat.shape)} and labels {tuple(y.shape)} do not match"
        )
    return float((y_hat.type(y.dtype) == y).sum())


class Accumulator:
    """Keep running sums of ``n`` quantities.

    :param n: how many sums to keep.
    """

    def __init__(self, n: int) -> None:
        self.data = [0.0] * n

    def add(self, *args: float) -> None:
        """Add one value to each sum.

        :raises ValueError: if the number of values is not ``n`` (d2l's version drops
            extra values and ignores missing ones silently).
        """
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


def _check_count(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise unless ``value`` is an int >= 1 (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = "an int >= 1" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def evaluate_accuracy(
    net: nn.Module,
    data_iter: Batches,
    device: torch.device | str | None = None,
    max_batches: int | None = None,
) -> float:
    """Accuracy of ``net`` on ``data_iter`` in eval mode without gradients.

    d2l calls this ``evaluate_accuracy_gpu``.

    Differs from d2l: the module's previous train/eval mode is restored afterwards (d2l
    leaves it in eval mode), ``max_batches`` can cap the batches, and an empty
    ``data_iter`` raises :class:`ValueError` instead of ``ZeroDivisionError``.

    :param net: the classifier.
    :param data_iter: ``(X, y)`` batches.
    :param device: where to compute; by default the device of ``net``'s parameters.
    :param max_batches: evaluate at most this many batches (all by default).
    :returns: the fraction of correct predictions.
    :raises ValueError: if ``data_iter`` yields no examples.
    """
    return _evaluate(net, data_iter, device, max_batches, "the data iterator")


def _evaluate(
    net: nn.Module,
    data_iter: Batches,
    device: torch.device | str | None,
    max_batches: int | None,
    name: str,
) -> float:
    _check_count("max_batches", max_batches, allow_none=True)
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
        raise ValueError(f"{name} yielded no examples")
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

    :returns: the loss *before* each step, so ``losses[0]`` is the initial loss.
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
    """Xavier-uniform initialisation for linear and conv layers: ``net.apply(init_cnn)``.

    Differs from d2l: subclasses of ``nn.Linear`` and ``nn.Conv2d`` are initialised too
    (``isinstance``; d2l compares the exact type). Biases are left alone, as in d2l.
    """
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def sgd_recipe(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    total_steps: int,
    one_cycle: bool = True,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The optimizer and schedule of Part IV's ``laptop`` recipe, or d2l's plain SGD.

    With ``one_cycle=True``: SGD with momentum and ``weight_decay``, and a ``OneCycleLR``
    schedule that warms the rate up from ``lr / 25`` to ``lr`` over the first 30 % of
    ``total_steps`` and anneals it to almost zero; pass the scheduler to :func:`train`
    with ``step_scheduler="batch"``. ``OneCycleLR`` also cycles the momentum against the
    rate, from 0.95 down to 0.85 at the peak and back, replacing ``momentum``. With
    ``one_cycle=False``: d2l's recipe, plain SGD with the constant rate ``lr`` and no
    scheduler (``momentum`` and ``weight_decay`` unused).

    :param params: the parameters to optimise, e.g. ``net.parameters()``.
    :param lr: the peak (one-cycle) or constant learning rate, > 0.
    :param total_steps: the number of optimizer steps of the whole run, >= 1:
        ``num_epochs * batches_per_epoch``.
    :returns: ``(optimizer, scheduler)``; the scheduler is ``None`` without one-cycle.
    :raises ValueError: for ``lr <= 0`` or ``total_steps < 1``.
    """
    _check_count("total_steps", total_steps)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if not one_cycle:
        return torch.optim.SGD(params, lr=lr), None
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    return optimizer, scheduler


@dataclass
class History:
    """What :func:`train` measured, one entry per epoch."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples: int = 0
    train_seconds: float = 0.0
    device: str = "cpu"
    #: What the third iterator of :func:`train` holds ("test", or "val" when tuning):
    #: ``test_acc`` is the accuracy on it, and the summary and plot use this name.
    eval_name: str = "test"

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
            f"{self.eval_name} acc {self.test_acc[-1]:.3f}\n"
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


def _initial_lrs(param_groups: list[dict[str, Any]]) -> list[float]:
    """The learning rate each group was built with (before any scheduler changed it)."""
    return [float(group.get("initial_lr", group["lr"])) for group in param_groups]


def _check_iterable(name: str, batches: Any, passes: int) -> None:
    try:
        empty = len(batches) == 0
    except TypeError:  # no len(): only a pass can tell
        empty = False
    if empty:
        raise ValueError(f"{name} is empty: it has no batches")
    if passes > 1 and isinstance(batches, Iterator):
        raise TypeError(
            f"{name} is a one-shot iterator ({type(batches).__name__}), which would be "
            f"empty after the first epoch; pass something that can be iterated "
            f"{passes} times, such as a list, a DataLoader or FashionMNISTBatches"
        )


def _finite_flag(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A 0-d tensor, on the tensors' device, that is True iff every value is finite.

    Computing it does not wait for the device; reading it does. The largest absolute
    value (the inf-norm) is NaN or infinite exactly when some value is, and it cannot
    overflow the way a sum of squares can. On a GPU ``get_total_norm`` fuses the
    per-tensor work into a few kernels.
    """
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
    if get_total_norm is not None:
        return torch.isfinite(get_total_norm(tensors, norm_type=math.inf))
    return torch.stack([torch.isfinite(t).all() for t in tensors]).all()


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    floats = [t.detach() for t in tensors if t.is_floating_point()]
    return bool(_finite_flag(floats)) if floats else True


def _diverged(
    what: str, epoch: int, batch: int, optimizer: torch.optim.Optimizer
) -> FloatingPointError:
    return FloatingPointError(
        f"{what} at epoch {epoch + 1}, batch {batch + 1}: training diverged. The weights "
        "were not updated with this batch. Try a lower learning rate (it is "
        f"{optimizer.param_groups[0]['lr']:g})"
    )


def _resume_state(
    checkpoint: Path,
    device: torch.device,
    num_epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
) -> dict[str, Any]:
    """Load ``checkpoint`` and check that it belongs to this run (see :func:`train`)."""
    state = load_checkpoint(checkpoint, map_location=device)
    for role, current in [("optimizer", optimizer), ("scheduler", scheduler)]:
        saved = state.get(f"{role}_type")
        now = type(current).__name__ if current is not None else None
        if saved != now:
            raise ValueError(
                f"checkpoint {checkpoint} was written with {role} {saved}, but this run "
                f"uses {role} {now}; build the same {role} as the run that wrote it, or "
                "delete the checkpoint to start from scratch"
            )
    saved_lrs = _initial_lrs(state["optimizer"]["param_groups"])
    now_lrs = _initial_lrs(optimizer.param_groups)
    if len(saved_lrs) != len(now_lrs) or not all(
        math.isclose(a, b, rel_tol=1e-9) for a, b in zip(saved_lrs, now_lrs)
    ):
        raise ValueError(
            f"checkpoint {checkpoint} was trained with lr {saved_lrs}, but this run asks "
            f"for lr {now_lrs}; resume with the same lr, or delete the checkpoint to "
            "start from scratch"
        )
    done = state["epoch"] + 1
    if done > num_epochs:
        raise ValueError(
            f"checkpoint {checkpoint} already holds {done} epochs, more than "
            f"num_epochs={num_epochs}"
        )
    return state


def train(
    net: nn.Module,
    train_iter: Batches,
    test_iter: Batches,
    num_epochs: int,
    lr: float | None = None,
    device: torch.device | str | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    step_scheduler: str = "epoch",
    loss: nn.Module | None = None,
    max_batches: int | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    plot: bool = True,
    progress: bool = True,
    eval_name: str = "test",
    summary: bool = True,
) -> History:
    """Train a classifier with mini-batch SGD (or ``optimizer``) and return its history.

    The arguments up to ``device`` are d2l's ``train_ch6(net, train_iter, test_iter,
    num_epochs, lr, device)``.

    Differs from d2l: ``net`` is *not* re-initialised (call
    ``net.apply(init_cnn)`` first for d2l's initialisation); ``lr`` is optional when an
    ``optimizer`` is given; the throughput counts all training time, data included;
    the run stops with :class:`FloatingPointError` when the loss diverges; the live plot
    shows one point per epoch; and a :class:`History` is returned.

    **Learning rate.** Without ``optimizer``, ``lr`` is required and plain SGD is used.
    With ``optimizer``, ``lr`` may be left out (the optimizer's is used); if it is given
    it must equal the learning rate every parameter group was built with (a scheduler's
    ``initial_lr``), otherwise :class:`ValueError`: passing two different learning rates
    is almost always a mistake.

    **Divergence.** The loss and the gradients of every batch are checked before
    ``optimizer.step()``: a NaN or infinity stops training with a
    :class:`FloatingPointError` naming the epoch and batch, and the weights keep their
    last finite values. A checkpoint is never written with non-finite weights or buffers.

    **Checkpoints.** With ``checkpoint``, the model, optimizer, scheduler, history and
    random-generator states are saved atomically after every epoch (see
    :func:`save_checkpoint`). With ``resume=True`` training continues from that file and
    prints ``resuming from PATH: k of n epochs done``; if the file does not exist yet it
    prints ``no checkpoint at PATH, starting from scratch`` and trains from the start,
    so the same cell works for the first run and after a crash. Resuming checks that the
    checkpoint belongs to this run: a different optimizer or scheduler type, or a
    different learning rate, raises :class:`ValueError` naming both (delete the file to
    start afresh).

    :param net: an initialised model; it is moved to ``device``.
    :param train_iter: training batches ``(X, y)``, iterable once per epoch.
    :param test_iter: test batches, evaluated after every epoch.
    :param num_epochs: the total number of epochs (including resumed ones), >= 1.
    :param lr: the SGD learning rate; optional when ``optimizer`` is given.
    :param device: where to train; by default :func:`~d2lmini.try_gpu`.
    :param optimizer: an optimizer over ``net``'s parameters (default: SGD with ``lr``).
    :param scheduler: a learning-rate scheduler on ``optimizer``; it steps once per
        epoch, or after every batch with ``step_scheduler="batch"``.
    :param step_scheduler: ``"epoch"`` (for schedules counted in epochs, such as
        ``StepLR``) or ``"batch"`` (for schedules counted in optimizer steps, such as
        ``OneCycleLR`` with ``total_steps=num_epochs * len(train_iter)``).
    :param loss: the loss module (default ``nn.CrossEntropyLoss()``).
    :param max_batches: at most this many batches per epoch, for training and for
        evaluation (smoke tests).
    :param checkpoint: a file to save the state to after every epoch.
    :param resume: continue from ``checkpoint`` when it exists.
    :param plot: draw the live plot of loss and accuracies.
    :param progress: show a progress bar.
    :param eval_name: what ``test_iter`` holds, for the summary, the plot's legend and
        :attr:`History.eval_name`: ``"test"``, or ``"val"`` when the third iterator is a
        validation split used to choose hyper-parameters.
    :param summary: print the final summary line (d2l's output) when done.
    :returns: the per-epoch losses and accuracies, and the throughput.
    :raises TypeError: for an argument of the wrong type, or a one-shot iterator used
        for more than one epoch.
    :raises ValueError: for an invalid argument, an empty iterator, ``resume=True``
        without ``checkpoint``, or a checkpoint that does not match this run.
    :raises FloatingPointError: when a loss or gradient is NaN or infinite.
    """
    from .devices import try_gpu
    from .plotting import Animator

    _check_count("num_epochs", num_epochs)
    _check_count("max_batches", max_batches, allow_none=True)
    if lr is not None:
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"lr must be a number, got {lr!r} ({type(lr).__name__})")
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"lr must be a finite number >= 0, got {lr}")
    if optimizer is None:
        if lr is None:
            raise ValueError("pass lr (for plain SGD) or an optimizer")
    else:
        for i, group_lr in enumerate(_initial_lrs(optimizer.param_groups)):
            if lr is not None and not math.isclose(lr, group_lr, rel_tol=1e-9):
                raise ValueError(
                    f"lr={lr} disagrees with the optimizer's learning rate {group_lr} "
                    f"(parameter group {i}); leave lr out to use the optimizer's, or "
                    f"build the optimizer with lr={lr}"
                )
    if step_scheduler not in ("epoch", "batch"):
        raise ValueError(f'step_scheduler must be "epoch" or "batch", got {step_scheduler!r}')
    if scheduler is not None and optimizer is None:
        raise ValueError("a scheduler needs the optimizer it was built on: pass optimizer=")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH, the file to resume from")
    checkpoint = Path(checkpoint).expanduser() if checkpoint is not None else None

    device = torch.device(device) if device is not None else try_gpu()
    net.to(device)
    if optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    history = History(device=str(device), eval_name=eval_name)
    start_epoch = 0
    if resume and checkpoint is not None:
        if checkpoint.exists():
            state = _resume_state(checkpoint, device, num_epochs, optimizer, scheduler)
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            restore_rng_state(state["rng"])
            history = History(**state["history"])
            start_epoch = state["epoch"] + 1
            print(f"resuming from {checkpoint}: {start_epoch} of {num_epochs} epochs done")
        else:
            print(f"no checkpoint at {checkpoint}, starting from scratch")
    passes = num_epochs - start_epoch
    _check_iterable("train_iter", train_iter, passes)
    _check_iterable("test_iter", test_iter, passes)
    try:
        batches_per_epoch = min(len(train_iter), _batch_limit(max_batches))  # type: ignore
    except TypeError:
        batches_per_epoch = max_batches or 0
    legend = ["train loss", "train acc", f"{eval_name} acc"]
    animator = Animator(xlabel="epoch", xlim=(1, num_epochs), legend=legend) if plot else None
    for epoch, values in enumerate(zip(history.train_loss, history.train_acc, history.test_acc)):
        if animator is not None:
            animator.add(epoch + 1, values)
    params = [p for p in net.parameters() if p.requires_grad]
    bar = _progress_bar(int(batches_per_epoch) * passes, progress)
    try:
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
                # one read from the device for both checks, before the weights change
                status = [batch_loss.detach().reshape(())]
                grads = [p.grad for p in params if p.grad is not None]
                if grads:
                    status.append(_finite_flag(grads).to(status[0]))
                loss_value, *grads_finite = torch.stack(status).tolist()
                if not math.isfinite(loss_value):
                    raise _diverged(f"the loss is {loss_value}", epoch, i, optimizer)
                if grads_finite and not grads_finite[0]:
                    what = f"a gradient is NaN or infinite (the loss is {loss_value:g})"
                    raise _diverged(what, epoch, i, optimizer)
                optimizer.step()
                if scheduler is not None and step_scheduler == "batch":
                    scheduler.step()
                with torch.no_grad():
                    metric.add(loss_value * y.shape[0], accuracy(y_hat, y), y.shape[0])
                bar.update(1)
                bar.set_postfix_str(f"epoch {epoch + 1}/{num_epochs}", refresh=False)
            if metric[2] == 0:
                raise ValueError(f"train_iter yielded no examples in epoch {epoch + 1}")
            if scheduler is not None and step_scheduler == "epoch":
                scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            history.train_seconds += time.perf_counter() - tic
            history.examples += int(metric[2])
            test_acc = _evaluate(
                net, test_iter, device, max_batches, f"test_iter in epoch {epoch + 1}"
            )
            history.train_loss.append(metric[0] / metric[2])
            history.train_acc.append(metric[1] / metric[2])
            history.test_acc.append(test_acc)
            if animator is not None:
                animator.add(epoch + 1, (history.train_loss[-1], history.train_acc[-1], test_acc))
            if checkpoint is not None:
                if not _all_finite(net.state_dict().values()):
                    raise FloatingPointError(
                        f"the model holds NaN or infinite values after epoch {epoch + 1}; "
                        f"not overwriting checkpoint {checkpoint} with them"
                    )
                save_checkpoint(
                    checkpoint,
                    {
                        "model": net.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "optimizer_type": type(optimizer).__name__,
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "scheduler_type": (
                            type(scheduler).__name__ if scheduler is not None else None
                        ),
                        "epoch": epoch,
                        "history": asdict(history),
                        "rng": capture_rng_state(),
                    },
                )
    finally:
        bar.close()
    if summary:
        print(history.summary())
    return history
