"""The modern convolutional networks of Part IV, built once and reused.

Each network is first built step by step in its chapter of Part IV; the chapter then
checks that its model is the one here, and later chapters (the comparison, Part V) and
the benchmarks import it. Every builder takes 1-channel images and returns logits for
``num_classes`` classes.

The published networks are the defaults (d2l's versions, for 224×224 or 96×96 inputs).
A ``width`` multiplier scales every channel count, so the same code also builds the
narrow networks that the ``laptop`` profile trains on 28×28 images on a CPU. Only
AlexNet needs a separate 28×28 design (:func:`alexnet_28`): its 11×11 stride-4 first
layer would shrink a 28×28 image to 5×5.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "DenseBlock", "Inception", "Residual", "alexnet", "alexnet_28", "bn_lenet", "conv_params",
    "densenet", "googlenet", "nin", "nin_block", "randomize_bn", "resnet18", "transition_block",
    "vgg", "vgg_block",
]  # fmt: skip

#: VGG-11's convolutional part: (number of convolutions, output channels) per block.
VGG11_ARCH: tuple[tuple[int, int], ...] = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def conv_params(c_in: int, c_out: int, k: int) -> int:
    """Parameters of a ``k``×``k`` convolution with bias: ``c_out * (c_in * k * k + 1)``."""
    return c_out * (c_in * k * k + 1)


def _scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1: the channel count of a narrow network."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, round(channels * width))


def _check_width(builder: str, width: float) -> None:
    """Refuse ``builder(10)``: d2l's ``resnet18(num_classes)`` habit would build a network
    with 10 times the channels (about 100 times the parameters) of the intended one."""
    if isinstance(width, numbers.Integral) and not isinstance(width, bool) and width >= 2:
        raise TypeError(f"{builder}({width}): the first argument is width, a channel "
                        f"multiplier such as 0.25, not the number of classes; call "
                        f"{builder}(num_classes={width}) or {builder}(width=..., "
                        f"num_classes=...) (a wider network: width={width}.0)")  # fmt: skip


def _classifier_head(in_features: int, num_hiddens: int, dropout: float, num_classes: int):
    """AlexNet's and VGG's three dense layers, with dropout after the two hidden ones."""
    return [
        nn.Flatten(),
        nn.Linear(in_features, num_hiddens), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(num_hiddens, num_hiddens), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(num_hiddens, num_classes),
    ]  # fmt: skip


def alexnet(num_classes: int = 10, dropout: float = 0.5) -> nn.Sequential:
    """d2l's AlexNet for 1×224×224 images (one input channel, 10 classes).

    Five convolutions (96, 256, 384, 384, 256 channels; kernels 11, 5, 3, 3, 3; the first
    with stride 4), three 3×3 stride-2 max pools, and two 4096-unit hidden layers with
    dropout. 46.8 million parameters.
    """
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        *_classifier_head(256 * 5 * 5, 4096, dropout, num_classes),
    )  # fmt: skip


def alexnet_28(
    channels: Sequence[int] = (16, 32, 48, 48, 32), num_hiddens: int = 256,
    num_classes: int = 10, dropout: float = 0.5,
) -> nn.Sequential:  # fmt: skip
    """AlexNet's design adapted to 1×28×28 images.

    The same plan as :func:`alexnet`: five ReLU convolutions, max pooling after the
    first, second and fifth, and three dense layers with dropout. The changes make it fit
    a 28×28 image and a CPU: 3×3 kernels with stride 1 and padding 1 (the image is 8 times
    smaller than 224, so no stride-4 11×11 layer), 2×2 pools (28 → 14 → 7 → 3), about 6 to
    8 times fewer channels and 256 hidden units instead of 4096.
    """
    if len(channels) != 5:
        raise ValueError(f"alexnet_28 has 5 convolutions, got channels={tuple(channels)}")
    c1, c2, c3, c4, c5 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(c1, c2, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        *_classifier_head(c5 * 3 * 3, num_hiddens, dropout, num_classes),
    )  # fmt: skip


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3×3 convolutions (padding 1) with ReLU, then a 2×2 max pool."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(
    arch: Sequence[tuple[int, int]] = VGG11_ARCH, image_size: int = 224,
    num_hiddens: int = 4096, width: float = 1.0, num_classes: int = 10, dropout: float = 0.5,
) -> nn.Sequential:  # fmt: skip
    """VGG from an architecture list of ``(num_convs, out_channels)`` blocks.

    The default is VGG-11 for 224×224 images. ``width`` scales every block's channels
    (d2l trains ``width=1/4``). Each block halves the image, so ``image_size`` must be
    divisible by ``2 ** len(arch)``.
    """
    side = image_size // 2 ** len(arch)
    if side < 1 or side * 2 ** len(arch) != image_size:
        raise ValueError(
            f"image_size {image_size} is not divisible by 2**{len(arch)} "
            f"(one halving per block of {tuple(arch)})"
        )
    blocks, in_channels = [], 1
    for num_convs, out_channels in arch:
        out_channels = _scaled(out_channels, width)
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    head = _classifier_head(in_channels * side * side, num_hiddens, dropout, num_classes)
    return nn.Sequential(*blocks, *head)


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """A convolution followed by two 1×1 convolutions, each with ReLU: a per-pixel MLP."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


def nin(
    stem: tuple[int, int, int] = (11, 4, 0), width: float = 1.0, num_classes: int = 10,
    dropout: float = 0.5, final_relu: bool = True,
) -> nn.Sequential:  # fmt: skip
    """Network in Network: four NiN blocks, max pooling between them, global average pool.

    The defaults are d2l's NiN for 224×224 images (96, 256, 384 channels; the first block
    has an 11×11 stride-4 convolution, ``stem=(kernel, stride, padding)``). For 28×28
    images use ``stem=(3, 1, 1)``. The last block outputs one channel per class and global
    average pooling turns each channel into a logit. With ``final_relu=True`` (d2l) that
    block ends in a ReLU, so every logit is >= 0; ``final_relu=False`` removes that last
    ReLU, so the logits can be negative.
    """
    kernel, stride, padding = stem
    c1, c2, c3 = (_scaled(c, width) for c in (96, 256, 384))
    last = nin_block(c3, num_classes, kernel_size=3, stride=1, padding=1)
    if not final_relu:
        last = nn.Sequential(*list(last)[:-1])
    return nn.Sequential(
        nin_block(1, c1, kernel, stride, padding), nn.MaxPool2d(kernel_size=3, stride=2),
        nin_block(c1, c2, kernel_size=5, stride=1, padding=2), nn.MaxPool2d(3, stride=2),
        nin_block(c2, c3, kernel_size=3, stride=1, padding=1), nn.MaxPool2d(3, stride=2),
        nn.Dropout(dropout), last, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
    )  # fmt: skip


class Inception(nn.Module):
    """GoogLeNet's Inception block: four parallel paths, concatenated along channels.

    ``c1``: a 1×1 convolution; ``c2 = (reduce, out)``: 1×1 then 3×3; ``c3 = (reduce,
    out)``: 1×1 then 5×5; ``c4``: 3×3 max pool then 1×1. All paths keep the height and
    width, so the output has ``c1 + c2[1] + c3[1] + c4`` channels.
    """

    def __init__(
        self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int
    ) -> None:
        super().__init__()
        self.p1 = nn.Sequential(nn.Conv2d(in_channels, c1, kernel_size=1), nn.ReLU())
        self.p2 = nn.Sequential(
            nn.Conv2d(in_channels, c2[0], kernel_size=1), nn.ReLU(),
            nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.p3 = nn.Sequential(
            nn.Conv2d(in_channels, c3[0], kernel_size=1), nn.ReLU(),
            nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2), nn.ReLU(),
        )  # fmt: skip
        self.p4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(in_channels, c4, kernel_size=1), nn.ReLU(),
        )  # fmt: skip
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)


# GoogLeNet's nine Inception blocks: (c1, (c2 reduce, c2), (c3 reduce, c3), c4), by stage.
_INCEPTION_STAGES: tuple[tuple[tuple[int, tuple[int, int], tuple[int, int], int], ...], ...] = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    (
        (192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64), (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)  # fmt: skip


def _stem(out_channels: int) -> list[nn.Module]:
    """The stem of GoogLeNet, ResNet and DenseNet: 7×7 stride-2 convolution, 3×3
    stride-2 max pool (a 96×96 image becomes 24×24, a 28×28 one 7×7)."""
    return [
        nn.Conv2d(1, out_channels, kernel_size=7, stride=2, padding=3),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]


def googlenet(width: float = 1.0, num_classes: int = 10) -> nn.Sequential:
    """d2l's GoogLeNet (for 96×96 images): stem, two convolutions, nine Inception blocks.

    ``width`` scales every channel count (``width=1`` is the published network). The
    network ends in global average pooling, so it accepts any image size from 28×28 up.
    """
    _check_width("googlenet", width)
    w = lambda c: _scaled(c, width)  # noqa: E731
    c64, c192 = w(64), w(192)
    layers: list[nn.Module] = [
        nn.Conv2d(1, c64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        nn.Conv2d(c64, c64, kernel_size=1), nn.ReLU(),
        nn.Conv2d(c64, c192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]  # fmt: skip
    channels = c192
    for stage, blocks in enumerate(_INCEPTION_STAGES):
        for c1, (r2, c2), (r3, c3), c4 in blocks:
            block = Inception(channels, w(c1), (w(r2), w(c2)), (w(r3), w(c3)), w(c4))
            layers.append(block)
            channels = block.out_channels
        if stage < len(_INCEPTION_STAGES) - 1:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def bn_lenet(num_classes: int = 10) -> nn.Sequential:
    """LeNet with batch normalization after every convolution and hidden dense layer.

    d2l's BN-LeNet: :func:`~d2lmini.lenet`'s layout (sigmoid, average pooling, but no
    padding in the first convolution) with ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` before
    each sigmoid.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )  # fmt: skip


class Residual(nn.Module):
    """ResNet's basic block: two 3×3 convolutions with batch norm, plus a shortcut.

    ``y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``. The shortcut is the
    identity, or a 1×1 convolution with stride ``strides`` when ``use_1x1conv`` (needed
    when the number of channels or the stride changes).

    Differs from d2l: ``in_channels`` is the first argument (d2l 1.0.3's
    ``Residual(num_channels, ...)`` uses lazy convolutions that infer it), so the block's
    parameters exist at once, and an identity shortcut whose shapes cannot match raises
    :class:`ValueError` when the block is built instead of failing in ``forward``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, use_1x1conv: bool = False, strides: int = 1
    ) -> None:
        super().__init__()
        if not use_1x1conv and (strides != 1 or in_channels != out_channels):
            raise ValueError(
                f"an identity shortcut needs the same shape in and out: in_channels="
                f"{in_channels}, out_channels={out_channels}, strides={strides}; "
                "pass use_1x1conv=True"
            )
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=strides, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=strides)
        self.conv3 = shortcut if use_1x1conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.conv3 is None else self.conv3(x)
        return torch.relu(y + shortcut)


def _resnet_stage(in_channels: int, out_channels: int, num_blocks: int, first: bool):
    """``num_blocks`` residual blocks; all but the first stage halve the image first."""
    blocks: list[nn.Module] = []
    for i in range(num_blocks):
        if i == 0 and not first:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(Residual(out_channels, out_channels))
    return nn.Sequential(*blocks)


def resnet18(width: float = 1.0, num_classes: int = 10, *, stem: str = "7x7") -> nn.Sequential:
    """d2l's ResNet-18: stem, four stages of two residual blocks, global average pool.

    Channels 64, 128, 256, 512 times ``width``. The stem is a 7×7 stride-2 convolution
    with batch norm and ReLU, then a 3×3 stride-2 max pool (torchvision's ResNet-18 has
    the same layout for 3-channel images). Any image size from 28×28 up works.
    ``stem="3x3"`` is the form for 28×28 images: a 3×3 stride-1 stem convolution, so that
    the max pool alone halves the image (28 → 14 instead of 28 → 7).

    Differs from d2l: this is the ResNet-18 of d2l's ResNet chapter. d2l 1.0.3's function
    ``resnet18(num_classes, in_channels=1)`` is the "slightly modified" one of its
    multi-GPU chapter: a 3×3 stride-1 stem without max pooling, fixed channels, and the
    number of classes as its first argument; ``resnet18(10)`` here raises a
    :class:`TypeError` that says to write ``resnet18(num_classes=10)``.
    """
    _check_width("resnet18", width)
    if stem not in ("7x7", "3x3"):
        raise ValueError(f'stem must be "7x7" or "3x3", got {stem!r}')
    c = [_scaled(ch, width) for ch in (64, 128, 256, 512)]
    conv, pool = _stem(c[0])
    if stem == "3x3":
        conv = nn.Conv2d(1, c[0], kernel_size=3, padding=1)
    stages = [_resnet_stage(c[0], c[0], 2, first=True)]
    stages += [_resnet_stage(c[i - 1], c[i], 2, first=False) for i in range(1, 4)]
    return nn.Sequential(
        conv, nn.BatchNorm2d(c[0]), nn.ReLU(), pool,
        *stages,
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c[3], num_classes),
    )  # fmt: skip


def _bn_relu_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """DenseNet's pre-activation unit: batch norm, ReLU, 3×3 convolution."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
    )  # fmt: skip


class DenseBlock(nn.Module):
    """``num_convs`` units; each sees the concatenation of the input and all earlier
    outputs and adds ``growth_rate`` channels: ``in_channels + num_convs * growth_rate``
    channels come out."""

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.net = nn.ModuleList(
            _bn_relu_conv(in_channels + i * growth_rate, growth_rate) for i in range(num_convs)
        )
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.net:
            x = torch.cat([x, unit(x)], dim=1)
        return x


def transition_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Batch norm, ReLU, a 1×1 convolution to ``out_channels``, 2×2 average pooling."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )  # fmt: skip


def densenet(
    growth_rate: int = 32, stem_channels: int = 64,
    convs_per_block: Sequence[int] = (4, 4, 4, 4), num_classes: int = 10,
) -> nn.Sequential:  # fmt: skip
    """d2l's DenseNet: stem, dense blocks with transitions that halve the channels.

    The defaults are d2l's (for 96×96 images). A transition block between two dense blocks
    halves both the channels and the image, so the image must stay at least 1×1 until the
    last block: 96×96 works with four dense blocks, 28×28 only with three
    (``convs_per_block=(4, 4, 4)``: 7 → 3 → 1 after the stem).
    """
    conv, pool = _stem(stem_channels)
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(stem_channels), nn.ReLU(), pool]
    channels = stem_channels
    for i, num_convs in enumerate(convs_per_block):
        block = DenseBlock(num_convs, channels, growth_rate)
        layers.append(block)
        channels = block.out_channels
        if i != len(convs_per_block) - 1:
            layers.append(transition_block(channels, channels // 2))
            channels //= 2
    layers += [
        nn.BatchNorm2d(channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels, num_classes),
    ]  # fmt: skip
    return nn.Sequential(*layers)


def randomize_bn(net: nn.Module) -> nn.Module:
    """Give every batch norm of ``net`` random running statistics and affine parameters
    (in place; returns ``net``), so that a comparison in eval mode depends on them."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):  # 1d, 2d, 3d, sync
            for tensor, low, high in [(m.running_mean, -1, 1), (m.running_var, 0.5, 2),
                                      (m.weight, 0.5, 1.5), (m.bias, -0.5, 0.5)]:  # fmt: skip
                if tensor is not None:  # no running statistics or no affine parameters
                    nn.init.uniform_(tensor, low, high)
    return net
