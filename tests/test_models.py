"""The reference models of d2lmini.models: sizes from first principles, and behaviour."""

import pytest
import torch
from torch import nn

import d2lmini


def test_softmax_regression_and_mlp_have_the_textbook_sizes():
    X = torch.rand(3, 1, 28, 28)
    softmax = d2lmini.softmax_regression()
    assert softmax(X).shape == (3, 10)
    assert d2lmini.count_parameters(softmax) == 784 * 10 + 10
    mlp = d2lmini.mlp()
    assert mlp(X).shape == (3, 10)
    expected = (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
    assert d2lmini.count_parameters(mlp) == expected


def test_mlp_dropout_fires_only_in_training_mode():
    mlp = d2lmini.mlp(dropout=(0.5, 0.5))
    X = torch.rand(4, 1, 28, 28)
    torch.manual_seed(0)
    assert not torch.equal(mlp(X), mlp(X))  # two dropout masks
    mlp.eval()
    torch.testing.assert_close(mlp(X), mlp(X), rtol=0, atol=0)


@pytest.mark.parametrize("activation, pool", [(nn.Sigmoid, nn.AvgPool2d), (nn.ReLU, nn.MaxPool2d)])
def test_lenet_shapes_and_parameter_count(activation, pool):
    net = d2lmini.lenet(activation, pool)
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    convs = (6 * 25 + 6) + (16 * 6 * 25 + 16)
    dense = (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert d2lmini.count_parameters(net) == convs + dense == 61_706
    kinds = {type(m) for m in net}
    assert activation in kinds and pool in kinds


def test_shape_walk_prints_and_returns_each_layers_output_shape(capsys):
    net = d2lmini.bn_lenet().train()
    shapes = d2lmini.shape_walk(net, torch.zeros(1, 1, 28, 28))  # batch 1: eval mode
    assert shapes[0] == (1, 6, 24, 24) and shapes[-1] == (1, 10) and len(shapes) == len(net)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "Conv2d" and lines[0].endswith("(1, 6, 24, 24)")
    assert net.training  # its mode is restored
    d2lmini.shape_walk(net, torch.zeros(1, 1, 28, 28), show=False)
    assert capsys.readouterr().out == ""
