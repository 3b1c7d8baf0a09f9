import numpy as np
import pytest
import torch
import torch.nn.functional as F

import d2lmini


def test_numpy_grads_match_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    w1, w2 = rng.normal(size=(5, 6)), rng.normal(size=(6, 3))
    _, g1, g2 = d2lmini.numpy_two_layer_grads(x, y, w1, w2)
    eps = 1e-6
    for w, g in [(w1, g1), (w2, g2)]:
        for idx in [(0, 0), (2, 1), (4, 2)]:
            old = w[idx]
            w[idx] = old + eps
            plus = d2lmini.numpy_two_layer_grads(x, y, w1, w2)[0]
            w[idx] = old - eps
            minus = d2lmini.numpy_two_layer_grads(x, y, w1, w2)[0]
            w[idx] = old
            assert (plus - minus) / (2 * eps) == pytest.approx(g[idx], rel=1e-5, abs=1e-7)


def test_numpy_grads_name_mismatched_shapes():
    with pytest.raises(ValueError, match=r"x \(2, 3\), w1 \(4, 5\)"):
        d2lmini.numpy_two_layer_grads(
            np.ones((2, 3)), np.ones((2, 1)), np.ones((4, 5)), np.ones((5, 1))
        )


def test_corr2d_matches_conv2d():
    torch.manual_seed(0)
    X, K = torch.randn(6, 7), torch.randn(2, 3)
    expected = F.conv2d(X[None, None], K[None, None])[0, 0]
    torch.testing.assert_close(d2lmini.corr2d(X, K), expected)


def test_corr2d_does_not_truncate_integer_input_with_a_float_kernel():
    X = torch.arange(12).reshape(3, 4)  # int64
    K = torch.tensor([[0.5, 0.25]])
    Y = d2lmini.corr2d(X, K)
    assert Y.dtype == torch.float32
    expected = F.conv2d(X[None, None].float(), K[None, None])[0, 0]
    torch.testing.assert_close(Y, expected)  # 0.25, 1.0, ... not 0, 1, ...


@pytest.mark.parametrize(
    "x_dtype, k_dtype",
    [(torch.int64, torch.int64), (torch.float64, torch.float32), (torch.int32, torch.float64)],
)
def test_corr2d_result_dtype_follows_type_promotion(x_dtype, k_dtype):
    X, K = torch.ones(3, 3, dtype=x_dtype), torch.ones(2, 2, dtype=k_dtype)
    Y = d2lmini.corr2d(X, K)
    assert Y.dtype == torch.result_type(X, K) and torch.equal(Y, torch.full_like(Y, 4))


def test_corr2d_rejects_bad_shapes():
    with pytest.raises(ValueError, match="larger"):
        d2lmini.corr2d(torch.ones(2, 2), torch.ones(3, 3))
    with pytest.raises(ValueError, match="2-D"):
        d2lmini.corr2d(torch.ones(1, 2, 2), torch.ones(1, 1))


def test_count_parameters_counts_shared_layers_once_and_filters_frozen():
    shared = torch.nn.Linear(3, 3)  # 12 parameters
    net = torch.nn.Sequential(shared, torch.nn.ReLU(), shared, torch.nn.Linear(3, 1))  # + 4
    assert d2lmini.count_parameters(net) == 16
    net[3].requires_grad_(False)
    assert d2lmini.count_parameters(net, trainable_only=True) == 12


@pytest.mark.parametrize("n, k, p, s", [(28, 5, 2, 1), (28, 2, 0, 2), (7, 3, 1, 2), (8, 3, 0, 3)])
def test_conv_output_size_matches_conv2d(n, k, p, s):
    conv = torch.nn.Conv2d(1, 1, k, padding=p, stride=s)
    assert conv(torch.zeros(1, 1, n, n)).shape[-1] == d2lmini.conv_output_size(n, k, p, s)


def test_conv_output_size_rejects_kernels_that_do_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        d2lmini.conv_output_size(3, 5)
