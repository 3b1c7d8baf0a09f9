"""Training recipes: initialisation, optimizer and schedule, loss, augmentation, TTA.

A :class:`Recipe` says *how* :func:`~d2lmini.train` trains; the book's chapter
"Training recipes" adds its ingredients one at a time and measures each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = ["Recipe", "flip_test", "init_cnn", "init_kaiming", "modern_recipe", "shift_flip"]

Scheduler = torch.optim.lr_scheduler.LRScheduler


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform weights for linear and conv layers (d2l's): ``net.apply(init_cnn)``.

    Differs from d2l: subclasses of ``nn.Linear`` and ``nn.Conv2d`` are initialised too
    (``isinstance``; d2l compares the exact type). Biases are left alone, as in d2l.
    """
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def init_kaiming(module: nn.Module, mode: Literal["fan_in", "fan_out"] = "fan_out") -> None:
    """Kaiming-normal weights for ReLU networks (He et al., 2015), zero biases.

    Linear layers keep the variance of the activations (``fan_in``). Convolutions use
    ``mode``: ``"fan_out"`` keeps that of the gradients (torchvision's ResNet), and
    ``"fan_in"`` that of the activations, which a deep network without batch norm
    needs where its 1×1 convolutions shrink the channels (GoogLeNet, NiN): pass
    ``functools.partial(init_kaiming, mode="fan_in")`` to ``net.apply``.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f'mode must be "fan_in" or "fan_out", got {mode!r}')
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        fan: Literal["fan_in", "fan_out"] = mode if isinstance(module, nn.Conv2d) else "fan_in"
        nn.init.kaiming_normal_(module.weight, mode=fan, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def shift_flip(
    X: torch.Tensor, max_shift: int = 2, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels and mirror half of them, at random.

    Every image of the batch ``X`` (N, C, H, W) gets its own draw, made on ``X``'s device:
    a translation (zeros fill the border) and, with ``flip``, a left-right mirror with
    probability 1/2. ``torchvision.transforms.v2`` applied to a batch tensor would make
    one draw for the whole batch.

    :raises ValueError: for a tensor that is not 4-d or a negative ``max_shift``.
    """
    if X.ndim != 4:
        raise ValueError(f"expected a batch of shape (N, C, H, W), got {tuple(X.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    n, _, h, w = X.shape
    if max_shift:
        s = max_shift
        padded = nn.functional.pad(X, (s, s, s, s)).permute(0, 2, 3, 1)  # N, H+2s, W+2s, C
        dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1), device=X.device, generator=generator)
        rows = dy + torch.arange(h, device=X.device)  # N, H
        cols = dx + torch.arange(w, device=X.device)  # N, W
        batch = torch.arange(n, device=X.device)[:, None, None]
        X = padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = torch.rand(n, 1, 1, 1, device=X.device, generator=generator) < 0.5
        X = torch.where(mirror, X.flip(-1), X)
    return X.contiguous()


def flip_test(net: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Test-time augmentation: the mean of the class probabilities of ``X`` and its mirror."""
    return (net(X).softmax(dim=1) + net(X.flip(-1)).softmax(dim=1)) / 2


def _check_fraction(name: str, value: float, low: float, high: float) -> None:
    if not (isinstance(value, (int, float)) and low <= value < high):
        raise ValueError(f"{name} must be a number in [{low}, {high}), got {value!r}")


@dataclass(frozen=True)
class Recipe:
    """How :func:`~d2lmini.train` trains: ``Recipe(lr)`` is d2l's plain SGD.

    Optimizer: SGD with ``momentum`` (``nesterov``) and ``weight_decay``. Schedule,
    stepped after every batch: ``"constant"`` (times 0.1 after the fraction ``drop_at``
    of the steps, if set) or ``"one_cycle"`` (``OneCycleLR``: warm up to ``lr`` over 30 %
    of the steps, anneal to almost 0; with momentum it also cycles the momentum
    0.95 → 0.85 → 0.95, replacing ``momentum``). Loss: cross-entropy with
    ``label_smoothing``. Batches: :func:`shift_flip` by up to ``shift`` pixels, mirrored
    if ``flip``. Evaluation: :func:`flip_test` if ``flip_test``.

    :raises ValueError: for a value out of range (``lr <= 0``, an unknown schedule, ...).
    """

    lr: float
    schedule: str = "constant"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    shift: int = 0
    flip: bool = False
    flip_test: bool = False
    drop_at: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
            raise TypeError(f"lr must be a number, got {self.lr!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.schedule not in ("constant", "one_cycle"):
            raise ValueError(f'schedule must be "constant" or "one_cycle", got {self.schedule!r}')
        _check_fraction("momentum", self.momentum, 0, 1)
        _check_fraction("label_smoothing", self.label_smoothing, 0, 1)
        _check_fraction("weight_decay", self.weight_decay, 0, 1)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if not isinstance(self.shift, int) or self.shift < 0:
            raise ValueError(f"shift must be an int >= 0, got {self.shift!r}")
        if self.drop_at is not None:
            if self.schedule != "constant":
                raise ValueError("drop_at works with the constant schedule only")
            _check_fraction("drop_at", self.drop_at, 0, 1)

    def optimizer(
        self, params: Iterable[nn.Parameter], total_steps: int
    ) -> tuple[torch.optim.Optimizer, Scheduler | None]:
        """The optimizer and its per-batch scheduler (or ``None``) for ``total_steps``."""
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        optimizer = torch.optim.SGD(
            params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )  # fmt: skip
        if self.schedule == "one_cycle":
            scheduler: Scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, self.lr, total_steps=total_steps, cycle_momentum=self.momentum > 0
            )
        elif self.drop_at is not None:
            milestone = max(1, round(self.drop_at * total_steps))
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [milestone], 0.1)
        else:
            return optimizer, None
        return optimizer, scheduler

    def loss(self) -> nn.Module:
        """The training loss: cross-entropy with ``label_smoothing``."""
        return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def augment(self, X: torch.Tensor) -> torch.Tensor:
        """The training batch as the network sees it (:func:`shift_flip`, or ``X``)."""
        return shift_flip(X, self.shift, self.flip) if self.shift or self.flip else X

    @property
    def predict(self) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
        """How evaluation scores a batch, ``net(X)`` or :func:`flip_test`."""
        return flip_test if self.flip_test else _forward


def _forward(net: nn.Module, X: torch.Tensor) -> torch.Tensor:
    return net(X)


def modern_recipe(lr: float, **changes: object) -> Recipe:
    """Part IV's recipe: one-cycle Nesterov SGD, weight decay 5e-4, label smoothing 0.1,
    shifts by up to 2 pixels, flips, flip test-time augmentation; ``changes`` override."""
    fields: dict[str, object] = dict(
        lr=lr, schedule="one_cycle", momentum=0.9, nesterov=True, weight_decay=5e-4,
        label_smoothing=0.1, shift=2, flip=True, flip_test=True,
    )  # fmt: skip
    return Recipe(**{**fields, **changes})  # type: ignore[arg-type]
