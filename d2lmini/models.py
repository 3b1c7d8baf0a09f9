"""Small utilities for inspecting models."""

from __future__ import annotations

from torch import nn

__all__ = ["conv_output_size", "count_parameters"]


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
