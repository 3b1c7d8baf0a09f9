"""The book's small reference models, and utilities for inspecting models.

Each model is first built in a chapter (softmax regression and the MLP in Part III's
"Baseline classifiers", LeNet in "LeNet"); later chapters and the benchmarks import it
from here.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "conv_output_size", "count_parameters", "lenet", "mlp", "shape_walk", "softmax_regression",
]  # fmt: skip


def softmax_regression(num_inputs: int = 784, num_outputs: int = 10) -> nn.Sequential:
    """Softmax regression: ``Flatten`` and one ``Linear`` layer that outputs logits."""
    return nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_outputs))


def mlp(
    num_inputs: int = 784, num_hiddens: int = 256, num_outputs: int = 10,
    dropout: tuple[float, float] = (0.2, 0.5),
) -> nn.Sequential:  # fmt: skip
    """The baseline MLP: two ReLU hidden layers, each followed by ``Dropout``; logits out."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(num_inputs, num_hiddens), nn.ReLU(), nn.Dropout(dropout[0]),
        nn.Linear(num_hiddens, num_hiddens), nn.ReLU(), nn.Dropout(dropout[1]),
        nn.Linear(num_hiddens, num_outputs),
    )  # fmt: skip


def lenet(
    activation: type[nn.Module] = nn.Sigmoid, pool: type[nn.Module] = nn.AvgPool2d
) -> nn.Sequential:
    """d2l's simplified LeNet-5 for 1×28×28 images; logits for 10 classes.

    The defaults give the classic network (sigmoid, average pooling);
    ``lenet(nn.ReLU, nn.MaxPool2d)`` is the modern one. Initialise it yourself, e.g.
    ``net.apply(init_cnn)``.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), activation(),
        pool(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), activation(),
        pool(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), activation(),
        nn.Linear(120, 84), activation(),
        nn.Linear(84, 10),
    )  # fmt: skip


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module``; shared parameters count once.

    Counts over ``module.parameters()`` (deduplicated), not over ``state_dict()``,
    which lists a shared layer under every name it is reachable by.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def conv_output_size(n: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    ``padding`` is added on *each* side, as ``nn.Conv2d`` and the pooling layers take it:
    ``floor((n + 2 * padding - kernel_size) / stride) + 1``.
    """
    size = (n + 2 * padding - kernel_size) // stride + 1
    if size < 1:
        raise ValueError(
            f"kernel {kernel_size} does not fit input {n} with padding {padding} on each side"
        )
    return size


def shape_walk(net: nn.Sequential, X: torch.Tensor, show: bool = True) -> list[tuple[int, ...]]:
    """Pass ``X`` through the layers of ``net`` one by one; print and return each output's
    shape. It runs in eval mode without gradients (so batch norm takes a batch of one)
    and puts ``net`` back in the mode it was in."""
    shapes, was_training = [], net.training
    net.eval()
    try:
        with torch.no_grad():
            for layer in net:
                X = layer(X)
                shapes.append(tuple(X.shape))
                if show:
                    print(f"{type(layer).__name__:17s} {tuple(X.shape)}")
    finally:
        net.train(was_training)
    return shapes
