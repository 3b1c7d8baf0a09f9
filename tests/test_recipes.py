import functools

import pytest
import torch
from torch import nn

import d2lmini


def test_init_cnn_touches_only_linear_and_conv_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.apply(d2lmini.init_cnn)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"0.weight", "3.weight"}


def test_init_kaiming_has_he_variance_and_zero_biases():
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(64, 128, 3), nn.Linear(512, 256)
    for layer in (conv, linear):
        layer.apply(d2lmini.init_kaiming)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    # He: std = sqrt(2 / fan), fan_out = 128 * 9 for the conv, fan_in = 512 for the linear
    assert conv.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.02)
    assert linear.weight.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.02)


def test_shift_flip_moves_each_image_by_its_own_offset():
    X = torch.arange(64 * 25.0).reshape(64, 1, 5, 5) + 1  # no pixel is 0
    Y = d2lmini.shift_flip(X, max_shift=2, flip=False, generator=torch.Generator().manual_seed(0))
    offsets = set()
    for x, y in zip(X[:, 0], Y[:, 0]):
        matches = [
            (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
            if torch.equal(y, shifted(x, dy, dx))
        ]  # fmt: skip
        assert len(matches) == 1  # every output is exactly one translation of its input
        offsets.add(matches[0])
    assert len(offsets) > 10  # drawn per image, not once for the batch


def shifted(x, dy, dx):
    """``x`` moved down by ``dy`` and right by ``dx`` pixels, zeros coming in."""
    out = torch.zeros_like(x)
    h, w = x.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_shift_flip_mirrors_about_half_the_images():
    X = torch.rand(1000, 1, 4, 4)
    Y = d2lmini.shift_flip(X, max_shift=0, generator=torch.Generator().manual_seed(0))
    mirrored = [torch.equal(y, x.flip(-1)) for x, y in zip(X, Y)]
    kept = [torch.equal(y, x) for x, y in zip(X, Y)]
    assert all(m != k for m, k in zip(mirrored, kept)) and 450 < sum(mirrored) < 550


def test_shift_flip_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        d2lmini.shift_flip(torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="max_shift"):
        d2lmini.shift_flip(torch.zeros(1, 1, 4, 4), max_shift=-1)


def test_flip_test_averages_the_probabilities_of_the_two_views():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    X = torch.rand(5, 1, 4, 4)
    expected = (net(X).softmax(1) + net(X.flip(-1)).softmax(1)) / 2
    torch.testing.assert_close(d2lmini.flip_test(net, X), expected)
    assert d2lmini.Recipe(0.1, flip_test=True).predict is d2lmini.flip_test


def test_the_plain_recipe_is_d2ls_sgd():
    optimizer, scheduler = d2lmini.Recipe(0.9).optimizer(nn.Linear(3, 2).parameters(), 10)
    group = optimizer.param_groups[0]
    assert scheduler is None and (group["lr"], group["momentum"], group["weight_decay"]) == (
        0.9, 0, 0,
    )  # fmt: skip


def test_one_cycle_warms_up_anneals_and_cycles_the_momentum():
    recipe = d2lmini.modern_recipe(0.2)
    optimizer, scheduler = recipe.optimizer(nn.Linear(3, 2).parameters(), total_steps=10)
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 5e-4 and group["nesterov"]
    lrs, momenta = [], []
    for _ in range(10):
        lrs.append(group["lr"])
        momenta.append(group["momentum"])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(0.2) and lrs[0] < 0.2 / 20 and lrs[-1] < 0.2 / 100
    peak = lrs.index(max(lrs))
    assert momenta[0] == pytest.approx(0.95) and momenta[peak] == pytest.approx(0.85)


def test_drop_at_divides_the_rate_by_ten_once():
    optimizer, scheduler = d2lmini.Recipe(0.5, drop_at=0.75).optimizer(
        nn.Linear(3, 2).parameters(), total_steps=8
    )
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.5] * 6 + [0.05] * 2)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(lr=0.0), "lr must be"),
        (dict(lr=float("nan")), "lr must be"),
        (dict(schedule="cosine"), "schedule"),
        (dict(momentum=1.0), "momentum"),
        (dict(label_smoothing=-0.1), "label_smoothing"),
        (dict(nesterov=True), "nesterov"),
        (dict(shift=1.5), "shift"),
        (dict(drop_at=1.0), "drop_at"),
        (dict(schedule="one_cycle", drop_at=0.5), "constant schedule only"),
    ],
)
def test_a_recipe_refuses_values_out_of_range(changes, match):
    with pytest.raises(ValueError, match=match):
        d2lmini.Recipe(**{"lr": 0.1, **changes})


def test_modern_recipe_takes_changes():
    recipe = d2lmini.modern_recipe(0.1, flip=False, label_smoothing=0.0)
    assert (recipe.flip, recipe.label_smoothing, recipe.shift) == (False, 0.0, 2)
    X = torch.rand(4, 1, 6, 6)
    assert d2lmini.Recipe(0.1).augment(X) is X


def test_init_kaiming_fan_in_keeps_a_shrinking_convolution_tame():
    conv = nn.Conv2d(256, 32, kernel_size=1)  # a 1×1 reduction, as in Inception
    conv.apply(functools.partial(d2lmini.init_kaiming, mode="fan_in"))
    assert conv.weight.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.05)
    conv.apply(d2lmini.init_kaiming)  # fan_out: 8 times the variance here
    assert conv.weight.std().item() == pytest.approx((2 / 32) ** 0.5, rel=0.05)
    with pytest.raises(ValueError, match="fan_in"):
        d2lmini.init_kaiming(conv, mode="fan")
