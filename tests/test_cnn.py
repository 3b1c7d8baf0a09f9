"""d2lmini.cnn: Part IV's networks have the published sizes and shapes, and fail clearly."""

import numpy as np
import pytest
import torch
from torch import nn

import d2lmini

# d2l's published networks for 1-channel images and 10 classes. The counts are computed
# by hand from the layer sizes (AlexNet written out below) or taken from d2l's summaries.
PUBLISHED = [
    ("alexnet", d2lmini.alexnet, 224, 46_764_746),
    ("vgg11_quarter", lambda: d2lmini.vgg(width=0.25), 224, 43_093_322),
    ("nin", d2lmini.nin, 224, 1_992_166),
    ("googlenet", d2lmini.googlenet, 96, 5_977_530),
    ("bn_lenet", d2lmini.bn_lenet, 28, 44_878),
    ("resnet18", d2lmini.resnet18, 96, 11_178_378),
    ("densenet", d2lmini.densenet, 96, 758_226),
]


def conv(c_in, c_out, k):
    return c_out * c_in * k * k + c_out


def test_alexnet_count_by_hand():
    expected = (
        conv(1, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3)
        + conv(384, 256, 3) + 6400 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10
    )  # fmt: skip
    assert d2lmini.count_parameters(d2lmini.alexnet()) == expected


@pytest.mark.parametrize("name, build, size, count", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_networks_have_d2ls_sizes_and_output_logits(name, build, size, count):
    net = build()
    assert d2lmini.count_parameters(net) == count
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 1, size, size)).shape == (1, 10)


@pytest.mark.parametrize(
    "build, size",
    [
        (d2lmini.alexnet_28, 28),
        (lambda: d2lmini.vgg(image_size=32, num_hiddens=256, width=1 / 8), 32),
        (lambda: d2lmini.nin((3, 1, 1), width=1 / 6, final_relu=False), 28),
        (lambda: d2lmini.googlenet(1 / 4), 28),
        (lambda: d2lmini.resnet18(1 / 4), 28),
        (lambda: d2lmini.densenet(16, 32, (4, 4, 4)), 28),
    ],
)
def test_laptop_networks_take_small_images(build, size):
    net = build().eval()
    with torch.no_grad():
        assert net(torch.rand(3, 1, size, size)).shape == (3, 10)


def test_width_scales_every_channel_count():
    narrow = d2lmini.resnet18(width=0.25)
    widths = [m.out_channels for m in narrow.modules() if isinstance(m, nn.Conv2d)]
    full = [m.out_channels for m in d2lmini.resnet18().modules() if isinstance(m, nn.Conv2d)]
    assert [4 * w for w in widths] == full


def test_nin_final_relu_decides_whether_logits_can_be_negative():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    with_relu = d2lmini.nin((3, 1, 1), width=1 / 6).eval()
    without = d2lmini.nin((3, 1, 1), width=1 / 6, final_relu=False).eval()
    without.load_state_dict(with_relu.state_dict())  # same weights, one ReLU fewer
    with torch.no_grad():
        a, b = with_relu(x), without(x)
    assert (a >= 0).all() and (b < 0).any()


def test_inception_concatenates_its_four_paths():
    block = d2lmini.Inception(12, 3, (4, 5), (2, 6), 7)
    x = torch.rand(2, 12, 9, 9)
    y = block(x)
    assert y.shape == (2, 3 + 5 + 6 + 7, 9, 9) and block.out_channels == y.shape[1]
    paths = [block.p1(x), block.p2(x), block.p3(x), block.p4(x)]
    torch.testing.assert_close(y, torch.cat(paths, dim=1))


def test_residual_block_shapes_and_a_clear_error_for_a_missing_shortcut():
    x = torch.rand(2, 8, 10, 10)
    assert d2lmini.Residual(8, 8)(x).shape == (2, 8, 10, 10)
    assert d2lmini.Residual(8, 16, use_1x1conv=True, strides=2)(x).shape == (2, 16, 5, 5)
    with pytest.raises(ValueError, match="in_channels=8, out_channels=16.*use_1x1conv"):
        d2lmini.Residual(8, 16)


def test_dense_block_passes_its_input_through_and_grows():
    block = d2lmini.DenseBlock(3, 5, growth_rate=4)
    x = torch.rand(2, 5, 6, 6)
    y = block(x)
    assert y.shape == (2, 5 + 3 * 4, 6, 6)
    assert torch.equal(y[:, :5], x)
    t = d2lmini.transition_block(17, 8)(y)
    assert t.shape == (2, 8, 3, 3)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: d2lmini.vgg(image_size=28), "28 is not divisible by 2\\*\\*5"),
        (lambda: d2lmini.resnet18(width=0), "width must be > 0"),
        (lambda: d2lmini.alexnet_28(channels=(8, 8)), "5 convolutions"),
    ],
)
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("builder", ["resnet18", "googlenet"])
def test_the_d2l_call_with_the_number_of_classes_first_names_the_fix(builder):
    # d2l 1.0.3's resnet18(num_classes, ...): here the first argument is the width, and
    # resnet18(10) would silently build a network about 100 times too large.
    build = getattr(d2lmini, builder)
    for ten in (10, torch.tensor(10).item(), np.int64(10)):
        with pytest.raises(TypeError, match=rf"call {builder}\(num_classes=10\)"):
            build(ten)
    net = build(num_classes=10)
    assert net[-1].out_features == 10
    wide = d2lmini.count_parameters(build(2.0))  # a float is a deliberate width
    assert wide > 3 * d2lmini.count_parameters(net)


def test_randomize_bn_changes_every_batch_norm_and_nothing_else():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.BatchNorm1d(64))
    conv = net[0].weight.clone()
    assert d2lmini.randomize_bn(net) is net
    for bn in (net[1], net[3]):
        assert (bn.running_mean.abs() <= 1).all() and not (bn.running_mean == 0).all()
        assert ((bn.running_var >= 0.5) & (bn.running_var <= 2)).all()
        assert ((bn.weight >= 0.5) & (bn.weight <= 1.5)).all() and not (bn.bias == 0).all()
    assert torch.equal(net[0].weight, conv)


@pytest.mark.parametrize("c_in, c_out, k", [(1, 96, 11), (64, 128, 3), (16, 10, 1)])
def test_conv_params_counts_what_a_convolution_holds(c_in, c_out, k):
    assert d2lmini.conv_params(c_in, c_out, k) == d2lmini.count_parameters(
        nn.Conv2d(c_in, c_out, k)
    )
