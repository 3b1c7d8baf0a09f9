"""The training loop for classifiers, in the spirit of d2l's ``train_ch6``.

Differences from d2l: :func:`train` never re-initialises the network (that is the
caller's job), takes a :class:`~d2lmini.Recipe` for everything beyond plain SGD, shows a
progress bar and a live plot that leaves one static figure, counts examples/sec over
*all* training time (data included), stops with a clear error when the loss diverges,
calls callbacks after every epoch (checkpoints: :class:`~d2lmini.Checkpoint`), and
returns a :class:`History` that notebooks assert on.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .data import load_data_fashion_mnist
from .devices import try_gpu
from .env import seed_everything
from .recipes import Recipe, Scheduler, init_cnn, init_kaiming, modern_recipe

__all__ = [
    "Callback", "History", "TrainState", "evaluate_accuracy", "fit_fashion_mnist",
    "fit_full_batch", "train",
]  # fmt: skip

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def check_count(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise unless ``value`` is an int >= 1 (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = "an int >= 1" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _correct(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """How many rows of ``scores`` (N, classes) put the highest score on ``y`` (a tensor)."""
    if scores.ndim != 2 or scores.shape[0] != y.shape[0]:
        raise ValueError(f"scores {tuple(scores.shape)} do not match labels {tuple(y.shape)}")
    return (scores.argmax(dim=1) == y).sum()


def evaluate_accuracy(
    net: nn.Module, data_iter: Batches, device: torch.device | str | None = None,
    max_batches: int | None = None,
    predict: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> float:  # fmt: skip
    """Accuracy of ``net`` on ``data_iter`` in eval mode without gradients.

    d2l calls this ``evaluate_accuracy_gpu``. Differs from d2l: the module's train/eval
    mode is restored afterwards, ``max_batches`` caps the batches, ``predict(net, X)``
    can replace ``net(X)`` (e.g. :func:`~d2lmini.flip_test`), the count stays on the
    device until the end, and an empty ``data_iter`` raises :class:`ValueError`.
    """
    check_count("max_batches", max_batches, allow_none=True)
    device = device if device is not None else next(iter(net.parameters())).device
    predict = predict or (lambda model, X: model(X))
    was_training, correct, n = net.training, torch.zeros((), device=device), 0
    net.eval()
    try:
        with torch.no_grad():
            for X, y in itertools.islice(data_iter, max_batches):
                X, y = X.to(device), y.to(device)
                correct += _correct(predict(net, X), y)
                n += y.numel()
    finally:
        net.train(was_training)
    if n == 0:
        raise ValueError("the data iterator yielded no examples")
    return correct.item() / n


def fit_full_batch(
    net: nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
    loss_fn: nn.Module, steps: int = 500,
) -> list[float]:  # fmt: skip
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


@dataclass
class History:
    """What :func:`train` measured, one entry per epoch."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples: int = 0
    train_seconds: float = 0.0
    device: str = "cpu"
    #: What the third iterator of :func:`train` holds: ``"test"``, or ``"val"`` for a
    #: validation split (its ``split`` attribute); ``test_acc`` is the accuracy on it.
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


@dataclass
class TrainState:
    """The run as callbacks see it; ``epoch`` counts finished epochs, ``stop`` ends it."""

    net: nn.Module
    recipe: Recipe
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler | None
    history: History
    device: torch.device
    num_epochs: int
    epoch: int = 0
    stop: bool = False


class Callback(Protocol):
    """Behaviour added to :func:`train`: subclass it and override either method."""

    def on_start(self, state: TrainState) -> None:
        """Called once before the first epoch (e.g. to resume from a checkpoint)."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after each epoch and its evaluation; set ``state.stop`` to end."""


def _check_iterable(name: str, batches: Any, passes: int) -> None:
    try:
        empty = len(batches) == 0
    except TypeError:  # no len(): only a pass can tell
        empty = False
    if empty:
        raise ValueError(f"{name} is empty: it has no batches")
    if passes > 1 and isinstance(batches, Iterator):
        raise TypeError(f"{name} is a one-shot iterator ({type(batches).__name__}), "
                        f"which would be empty after the first epoch; pass something "
                        f"that can be iterated {passes} times, such as a list, a "
                        "DataLoader or FashionMNISTBatches")  # fmt: skip


def _finite_flag(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A 0-d tensor, on the tensors' device, that is True iff every value is finite.

    Computing it does not wait for the device; reading it does. The largest absolute
    value (the inf-norm) is NaN or infinite exactly when some value is, and it cannot
    overflow the way a sum of squares can. On a GPU ``get_total_norm`` fuses the
    per-tensor work into a few kernels.
    """
    return torch.isfinite(torch.nn.utils.get_total_norm(tensors, norm_type=math.inf))


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    floats = [t.detach() for t in tensors if t.is_floating_point()]
    return bool(_finite_flag(floats)) if floats else True


def _steps_per_epoch(train_iter: Any, max_batches: int | None) -> int | None:
    try:
        n = len(train_iter)
    except TypeError:
        return max_batches
    return n if max_batches is None else min(n, max_batches)


def _recipe_for(lr: float | None, recipe: Recipe | None) -> Recipe:
    if recipe is None:
        if lr is None:
            raise ValueError("pass lr (for plain SGD) or recipe=Recipe(...)")
        return Recipe(lr)
    if lr is not None and lr != recipe.lr:
        raise ValueError(f"lr={lr} disagrees with recipe.lr={recipe.lr}; pass one of them")
    return recipe


def _train_epoch(
    state: TrainState, batches: Batches, loss_fn: nn.Module, max_batches: int | None, bar: Any
) -> tuple[float, float, int]:
    """One pass over ``batches``: (summed loss, correct predictions, examples)."""
    net, optimizer, device = state.net, state.optimizer, state.device
    params = [p for p in net.parameters() if p.requires_grad]
    loss_sum, correct, n = 0.0, torch.zeros((), device=device), 0
    net.train()
    for i, (X, y) in enumerate(itertools.islice(batches, max_batches)):
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        y_hat = net(state.recipe.augment(X))
        loss = loss_fn(y_hat, y)
        optimizer.zero_grad()
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        finite = _finite_flag(grads) if grads else torch.ones((), device=device)
        loss_value, grads_finite = torch.stack([loss.detach(), finite.to(loss)]).tolist()
        if not (math.isfinite(loss_value) and grads_finite):
            raise FloatingPointError(
                f"the loss is {loss_value:g} or a gradient is not finite at epoch "
                f"{state.epoch + 1}, batch {i + 1}: training diverged. The weights were "
                f"not updated with this batch. Try a lower learning rate (it is "
                f"{optimizer.param_groups[0]['lr']:g})")  # fmt: skip
        optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        loss_sum, n = loss_sum + loss_value * len(y), n + len(y)
        correct += _correct(y_hat, y)
        bar.update(1)
    if n == 0:
        raise ValueError(f"train_iter yielded no examples in epoch {state.epoch + 1}")
    return loss_sum, correct.item(), n


def _plot_epoch(animator: Any, history: History, epoch: int) -> None:
    if animator:
        values = history.train_loss[epoch], history.train_acc[epoch], history.test_acc[epoch]
        animator.add(epoch + 1, values)


def train(
    net: nn.Module,
    train_iter: Batches,
    test_iter: Batches,
    num_epochs: int,
    lr: float | None = None,
    device: torch.device | str | None = None,
    *,
    recipe: Recipe | None = None,
    max_batches: int | None = None,
    display: bool = True,
    callbacks: Sequence[Callback] = (),
) -> History:
    """Train a classifier and return its per-epoch :class:`History`.

    The positional arguments are d2l's ``train_ch6(net, train_iter, test_iter,
    num_epochs, lr, device)``: with ``lr``, plain SGD (``Recipe(lr)``). Differs from d2l:
    ``recipe`` sets the optimizer, schedule (stepped after every batch), loss, batch
    augmentation and test-time augmentation; ``net`` is *not* re-initialised;
    ``max_batches`` caps the batches per epoch (training and evaluation); the
    throughput counts data loading; ``display`` switches the progress
    bar, the live plot and the final summary line together. ``callbacks`` run after
    every epoch (see :class:`Callback`). A NaN or infinite loss or gradient stops the
    run with :class:`FloatingPointError` before the weights change.

    :raises TypeError: for an argument of the wrong type, or a one-shot iterator used
        for more than one epoch.
    :raises ValueError: for an invalid argument or an empty iterator.
    """
    from .plotting import Animator, _progress_bar

    check_count("num_epochs", num_epochs)
    check_count("max_batches", max_batches, allow_none=True)
    recipe = _recipe_for(lr, recipe)
    device = torch.device(device) if device is not None else try_gpu()
    steps = _steps_per_epoch(train_iter, max_batches)
    if steps is None and (recipe.schedule != "constant" or recipe.drop_at is not None):
        raise TypeError("train_iter has no len(): pass max_batches, the steps per epoch")
    optimizer, scheduler = recipe.optimizer(net.to(device).parameters(), num_epochs * (steps or 1))
    history = History(device=str(device), eval_name=getattr(test_iter, "split", "test"))
    state = TrainState(net, recipe, optimizer, scheduler, history, device, num_epochs)
    for callback in callbacks:
        callback.on_start(state)
    history = state.history  # a callback may have resumed an earlier one
    _check_iterable("train_iter", train_iter, num_epochs - state.epoch)
    _check_iterable("test_iter", test_iter, num_epochs - state.epoch)
    legend = ["train loss", "train acc", f"{history.eval_name} acc"]
    animator = display and Animator("epoch", ("loss", "accuracy"), legend, (1, num_epochs),
                                    figsize=(6.4, 2.6), panels=(0, 1, 1))  # fmt: skip
    bar = _progress_bar((steps or 0) * (num_epochs - state.epoch), display)
    loss_fn = recipe.loss()
    for epoch in range(state.epoch):  # epochs a callback resumed
        _plot_epoch(animator, history, epoch)
    try:
        for epoch in range(state.epoch, num_epochs):
            tic = time.perf_counter()
            loss_sum, correct, n = _train_epoch(state, train_iter, loss_fn, max_batches, bar)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            history.train_seconds += time.perf_counter() - tic
            history.examples += n
            history.train_loss.append(loss_sum / n)
            history.train_acc.append(correct / n)
            history.test_acc.append(
                evaluate_accuracy(net, test_iter, device, max_batches, recipe.predict)
            )
            _plot_epoch(animator, history, epoch)
            state.epoch = epoch + 1
            for callback in callbacks:
                callback.on_epoch_end(state)
            if state.stop:
                break
    finally:
        bar.close()
    if display:
        print(history.summary())
    return history


def fit_fashion_mnist(
    build: Callable[[], nn.Module], hp: Any, init: Callable[[nn.Module], None] | None = None,
    seed: int = 0,
) -> tuple[nn.Module, History]:  # fmt: skip
    """Build, initialise and train a network on Fashion-MNIST as ``bench/part4_study.py``
    trains its test run of ``seed`` (same data order, seeds, initialisation and recipe;
    the study runs on one CPU thread, and another device or thread count changes the
    last digits); return the network and its :class:`History`.

    ``hp`` (a profile's settings) gives ``batch_size``, ``num_epochs``, ``lr``,
    ``max_batches`` and optionally ``resize`` and ``recipe``: ``"modern"`` (the default)
    starts from ``init`` (default :func:`~d2lmini.init_kaiming`) and trains with
    :func:`~d2lmini.modern_recipe`; ``"d2l"`` is d2l's recipe, which always starts from
    Xavier weights (``init`` is for the modern recipe only) and trains with plain SGD.
    """
    kind = hp.get("recipe", "modern")
    if kind not in ("modern", "d2l"):
        raise ValueError(f'hp.recipe must be "modern" or "d2l", got {kind!r}')
    device, generator = try_gpu(), torch.Generator().manual_seed(seed)
    train_iter, test_iter = load_data_fashion_mnist(hp.batch_size, hp.get("resize"),
                                                    device=device, generator=generator)  # fmt: skip
    seed_everything(seed)
    net = build().apply(init_cnn if kind == "d2l" else init or init_kaiming)
    recipe = modern_recipe(hp.lr) if kind == "modern" else Recipe(hp.lr)
    return net, train(net, train_iter, test_iter, hp.num_epochs, device=device, recipe=recipe,
                      max_batches=hp.max_batches)  # fmt: skip
