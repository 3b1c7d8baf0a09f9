"""From-scratch reference implementations that several chapters reuse.

Each is first built step by step in a chapter; later chapters import it from here.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["corr2d", "numpy_two_layer_grads"]


def numpy_two_layer_grads(
    x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss and hand-derived gradients of the two-layer ReLU net of Part I.

    The net is ``y_pred = relu(x @ w1) @ w2`` with the summed squared error
    ``loss = sum((y_pred - y) ** 2)``. Returns ``(loss, grad_w1, grad_w2)``.
    """
    if x.shape[1] != w1.shape[0] or w1.shape[1] != w2.shape[0] or y.shape[1] != w2.shape[1]:
        raise ValueError(
            f"shapes do not chain: x {x.shape}, w1 {w1.shape}, w2 {w2.shape}, y {y.shape}"
        )
    h = x @ w1
    h_relu = np.maximum(h, 0)
    y_pred = h_relu @ w2
    loss = float(np.square(y_pred - y).sum())
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.T @ grad_y_pred
    grad_h = (grad_y_pred @ w2.T) * (h > 0)
    grad_w1 = x.T @ grad_h
    return loss, grad_w1, grad_w2


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation of a matrix ``X`` with a kernel ``K`` (no padding, stride 1).

    This is what deep-learning libraries call "convolution". The result has the dtype
    that PyTorch's type promotion gives ``X * K`` (``torch.result_type``): an integer
    ``X`` with a float ``K`` gives floats, never a silently truncated integer result.

    Differs from d2l: d2l always returns ``float32`` (it builds the output with
    ``torch.zeros``), which rounds ``float64`` inputs and turns integer inputs into
    floats; here the dtype follows the inputs, and shapes are checked.

    :param X: the input, a 2-D tensor.
    :param K: the kernel, a 2-D tensor no larger than ``X``.
    :returns: a tensor of shape ``(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)``.
    :raises ValueError: if ``X`` or ``K`` is not 2-D, or ``K`` is larger than ``X``.
    """
    if X.ndim != 2 or K.ndim != 2:
        raise ValueError(f"corr2d takes 2-D X and K, got {tuple(X.shape)} and {tuple(K.shape)}")
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(f"kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}")
    dtype = torch.result_type(X, K)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=dtype, device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y
