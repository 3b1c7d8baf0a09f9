import pytest
import torch
from torch import nn

import d2lmini


def toy_batches(n=512, batch_size=64, seed=0):
    """A linearly separable 2-class problem: learnable in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return [(X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]


def test_evaluate_accuracy_uses_eval_mode_and_restores_it():
    modes = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, X):
            modes.append(self.training)
            return self.linear(X)

    net = Spy().train()
    d2lmini.evaluate_accuracy(net, toy_batches(), max_batches=2)
    assert modes == [False, False] and net.training
    net.eval()
    d2lmini.evaluate_accuracy(net, toy_batches(), max_batches=1)
    assert not net.training


def test_fit_full_batch_returns_the_loss_before_each_step():
    torch.manual_seed(0)
    X = torch.randn(16, 3)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    net = nn.Linear(3, 1)
    loss_fn = nn.MSELoss()
    initial = loss_fn(net(X), y).item()
    losses = d2lmini.fit_full_batch(
        net, torch.optim.SGD(net.parameters(), lr=0.1), X, y, loss_fn, steps=50
    )
    assert len(losses) == 50 and losses[0] == initial
    assert losses[-1] < 0.5 * losses[0]


# --- argument checks: clear errors that name the argument ---------------------------


def test_evaluate_accuracy_on_no_data_is_a_clear_error():
    with pytest.raises(ValueError, match="yielded no examples"):
        d2lmini.evaluate_accuracy(nn.Linear(4, 2), [])


def test_train_learns_and_reports_history(capsys):
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    history = d2lmini.train(net, toy_batches(), toy_batches(seed=1), 5, 0.5, "cpu", display=False)
    assert history.epochs == 5 and history.examples == 5 * 512
    assert history.test_acc[-1] > 0.9 and history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.examples_per_sec > 0
    assert capsys.readouterr().out == ""  # display=False prints nothing


def test_display_prints_d2ls_summary_named_after_the_split(capsys):
    torch.manual_seed(0)
    d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, "cpu")
    out = capsys.readouterr().out
    assert "test acc" in out and "examples/sec on cpu" in out

    class Val(list):
        split = "val"

    history = d2lmini.train(nn.Linear(4, 2), toy_batches(), Val(toy_batches()), 1, 0.1, "cpu")
    assert history.eval_name == "val" and "val acc" in capsys.readouterr().out


def test_train_stops_after_max_batches():
    history = d2lmini.train(
        nn.Linear(4, 2), toy_batches(), toy_batches(), 2, 0.1, "cpu", max_batches=3, display=False
    )
    assert history.examples == 2 * 3 * 64


def test_lr_alone_is_d2ls_plain_sgd():
    """train(..., lr) takes exactly the steps of torch.optim.SGD(lr) with no momentum."""
    torch.manual_seed(0)
    net, ref = nn.Linear(4, 2), nn.Linear(4, 2)
    ref.load_state_dict(net.state_dict())
    d2lmini.train(net, toy_batches(), toy_batches(), 1, 0.3, "cpu", display=False)
    optimizer = torch.optim.SGD(ref.parameters(), lr=0.3)
    for X, y in toy_batches():
        optimizer.zero_grad()
        nn.functional.cross_entropy(ref(X), y).backward()
        optimizer.step()
    torch.testing.assert_close(net.state_dict(), ref.state_dict(), rtol=0, atol=0)


def test_the_schedule_steps_after_every_batch():
    recipe = d2lmini.Recipe(0.3, "one_cycle", momentum=0.9)
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            if self.training:
                seen.append(state["optimizer"].param_groups[0]["lr"])
            return x

    class Grab(d2lmini.Callback):
        def on_start(self, s):
            state["optimizer"] = s.optimizer

    state = {}
    net = nn.Sequential(nn.Linear(4, 2), Spy())
    d2lmini.train(net, toy_batches(), toy_batches(), 3, device="cpu", recipe=recipe,
                  display=False, callbacks=[Grab()])  # fmt: skip
    optimizer, scheduler = recipe.optimizer(nn.Linear(4, 2).parameters(), 24)
    expected = []
    for _ in range(24):  # 3 epochs of 8 batches: the schedule's own sequence
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == expected


def test_lr_and_recipe_must_agree_and_one_is_needed():
    with pytest.raises(ValueError, match="pass lr"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, display=False)
    with pytest.raises(ValueError, match=r"lr=0\.1 disagrees with recipe\.lr=0\.3"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, "cpu",
                      recipe=d2lmini.Recipe(0.3), display=False)  # fmt: skip


def test_a_schedule_needs_to_know_the_steps_per_epoch():
    one_cycle = d2lmini.Recipe(0.1, "one_cycle")
    with pytest.raises(TypeError, match="pass max_batches"):
        d2lmini.train(nn.Linear(4, 2), iter(toy_batches()), toy_batches(), 1, device="cpu",
                      recipe=one_cycle, display=False)  # fmt: skip
    history = d2lmini.train(nn.Linear(4, 2), iter(toy_batches()), toy_batches(), 1, device="cpu",
                            recipe=one_cycle, max_batches=8, display=False)  # fmt: skip
    assert history.examples == 512


def test_the_recipe_augments_training_batches_only_and_scores_with_its_predict():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(16, 2)

        def forward(self, X):
            seen.append((self.training, X.clone()))
            return self.linear(X.flatten(1))

    X = torch.rand(8, 1, 4, 4)
    batches = [(X, torch.zeros(8, dtype=torch.long))]
    recipe = d2lmini.Recipe(0.1, shift=1, flip=True, flip_test=True)
    d2lmini.train(Spy(), batches, batches, 1, device="cpu", recipe=recipe, display=False)
    (train_mode, trained), *evaluated = seen
    assert train_mode and not torch.equal(trained, X)  # shifted or mirrored
    assert [mode for mode, _ in evaluated] == [False, False]
    assert torch.equal(evaluated[0][1], X) and torch.equal(evaluated[1][1], X.flip(-1))


def test_label_smoothing_reaches_the_loss():
    torch.manual_seed(0)
    hard = d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, "cpu",
                         display=False, max_batches=1)  # fmt: skip
    torch.manual_seed(0)
    smooth = d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, device="cpu",
                           recipe=d2lmini.Recipe(0.1, label_smoothing=0.5), display=False,
                           max_batches=1)  # fmt: skip
    X, y = toy_batches()[0]
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    expected = nn.functional.cross_entropy(net(X), y, label_smoothing=0.5).item()
    assert smooth.train_loss[0] == pytest.approx(expected) != hard.train_loss[0]


def test_a_callback_sees_every_epoch_and_can_stop_the_run():
    class StopAfterTwo(d2lmini.Callback):
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, state):
            self.epochs.append((state.epoch, state.history.epochs))
            state.stop = state.epoch == 2

    spy = StopAfterTwo()
    history = d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 5, 0.1, "cpu",
                            display=False, callbacks=[spy])  # fmt: skip
    assert spy.epochs == [(1, 1), (2, 2)] and history.epochs == 2


# --- argument checks: clear errors that name the argument ---------------------------


@pytest.mark.parametrize(
    "num_epochs, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_num_epochs_must_be_a_positive_int(num_epochs, error):
    with pytest.raises(error, match="num_epochs"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), num_epochs, 0.1, "cpu")


@pytest.mark.parametrize(
    "max_batches, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError)]
)
def test_max_batches_must_be_a_positive_int(max_batches, error):
    with pytest.raises(error, match="max_batches"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, "cpu",
                      max_batches=max_batches)  # fmt: skip


def test_empty_iterators_are_named():
    with pytest.raises(ValueError, match="train_iter is empty"):
        d2lmini.train(nn.Linear(4, 2), [], toy_batches(), 1, 0.1, "cpu")
    with pytest.raises(ValueError, match="test_iter is empty"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), [], 1, 0.1, "cpu")


def test_an_iterable_without_len_that_yields_nothing_is_named():
    class Nothing:
        def __iter__(self):
            return iter([])

    with pytest.raises(ValueError, match="train_iter yielded no examples in epoch 1"):
        d2lmini.train(nn.Linear(4, 2), Nothing(), toy_batches(), 1, 0.1, "cpu")
    with pytest.raises(ValueError, match="yielded no examples"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), Nothing(), 1, 0.1, "cpu")


def test_a_one_shot_iterator_is_refused_for_several_epochs():
    with pytest.raises(TypeError, match="one-shot iterator"):
        d2lmini.train(nn.Linear(4, 2), iter(toy_batches()), toy_batches(), 2, 0.1, "cpu")
    history = d2lmini.train(
        nn.Linear(4, 2), iter(toy_batches()), toy_batches(), 1, 0.1, "cpu", display=False
    )
    assert history.examples == 512


def test_device_defaults_to_try_gpu():
    history = d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, display=False)
    assert history.device == str(d2lmini.try_gpu())


# --- divergence: stop before the weights are spoiled ---------------------------------


def batches_with_nan_at(batch_index, epoch_batches=None):
    batches = [(X.clone(), y) for X, y in (epoch_batches or toy_batches())]
    batches[batch_index][0][0, 0] = float("nan")
    return batches


def test_a_nan_loss_stops_before_the_step_and_names_epoch_and_batch():
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    torch.manual_seed(0)
    ref = nn.Linear(4, 2)
    d2lmini.train(ref, toy_batches(), toy_batches(), 1, 0.1, "cpu", max_batches=2, display=False)
    with pytest.raises(
        FloatingPointError,
        match=r"loss is nan .* at epoch 1, batch 3.*lower learning rate \(it is 0\.1\)",
    ):
        d2lmini.train(net, batches_with_nan_at(2), toy_batches(), 1, 0.1, "cpu", display=False)
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)  # exactly two steps were taken, the third was refused


def test_real_divergence_leaves_finite_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    big = [(X * 1e3, y) for X, y in toy_batches()]
    with pytest.raises(FloatingPointError, match="diverged"):
        d2lmini.train(net, big, big, 50, 1e4, "cpu", display=False)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_a_nan_gradient_with_a_finite_loss_stops_before_the_step():
    class SqrtAtZero(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)
            self.z = nn.Parameter(torch.zeros(1))

        def forward(self, X):  # d sqrt(z)/dz at z = 0 is inf, and 0 * inf is nan
            return self.linear(X) + 0 * torch.sqrt(self.z)

    net = SqrtAtZero()
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(FloatingPointError, match="gradient is not finite.*batch 1"):
        d2lmini.train(net, toy_batches(), toy_batches(), 1, 0.1, "cpu", display=False)
    for p, q in zip(net.parameters(), before):
        assert torch.equal(p, q)


def test_the_finiteness_check_finds_nan_and_inf_and_nothing_else():
    from d2lmini import training

    big = torch.tensor([3e38, -3e38])  # its 2-norm overflows float32; no value is infinite
    assert training._all_finite([torch.zeros(3), big])
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert not training._all_finite([torch.zeros(3), torch.tensor([1.0, bad]), big])
    assert training._all_finite([torch.arange(3)])  # integer tensors are skipped


def test_fit_fashion_mnist_reproduces_a_run_and_starts_from_the_recipes_init(monkeypatch):
    with pytest.raises(ValueError, match='"modern" or "d2l"'):
        d2lmini.fit_fashion_mnist(d2lmini.lenet, d2lmini.Settings("x", dict(recipe="adam")))
    hp = dict(batch_size=256, num_epochs=1, lr=0.1, max_batches=3)
    starts = []
    monkeypatch.setattr(d2lmini.training, "train", lambda net, *a, **k: starts.append(net))
    d2lmini.fit_fashion_mnist(d2lmini.lenet, d2lmini.Settings("x", dict(hp, recipe="d2l")))
    d2lmini.fit_fashion_mnist(d2lmini.lenet, d2lmini.Settings("x", hp), init=d2lmini.init_cnn)
    d2lmini.fit_fashion_mnist(d2lmini.lenet, d2lmini.Settings("x", hp))
    expected = []
    for init in (d2lmini.init_cnn, d2lmini.init_cnn, d2lmini.init_kaiming):  # d2l's: Xavier
        d2lmini.seed_everything(0)
        expected.append(d2lmini.lenet().apply(init).state_dict())
    for start, want in zip(starts, expected, strict=True):
        torch.testing.assert_close(start.state_dict(), want)
    monkeypatch.undo()
    settings = d2lmini.Settings("x", hp)  # the modern recipe from Kaiming weights
    runs = [d2lmini.fit_fashion_mnist(d2lmini.lenet, settings) for _ in range(2)]
    (net_a, a), (net_b, b) = runs
    assert a.test_acc == b.test_acc and a.train_loss == b.train_loss and a.epochs == 1
    torch.testing.assert_close(net_a.state_dict(), net_b.state_dict())
