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


def test_accuracy_counts_correct_predictions():
    y_hat = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert d2lmini.accuracy(y_hat, torch.tensor([1, 0, 0])) == 2.0


def test_accuracy_names_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        d2lmini.accuracy(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))


def test_accumulator_sums_and_resets():
    acc = d2lmini.Accumulator(2)
    acc.add(1, 2)
    acc.add(3.5, 4)
    assert (acc[0], acc[1]) == (4.5, 6.0)
    acc.reset()
    assert acc.data == [0.0, 0.0]
    with pytest.raises(ValueError, match="expected 2"):
        acc.add(1)


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


def test_init_cnn_touches_only_linear_and_conv_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.apply(d2lmini.init_cnn)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"0.weight", "3.weight"}


def test_train_learns_and_reports_history(capsys):
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    history = d2lmini.train(
        net, toy_batches(), toy_batches(seed=1), 5, 0.5, "cpu", plot=False, progress=False
    )
    assert history.epochs == 5 and history.examples == 5 * 512
    assert history.test_acc[-1] > 0.9 and history.train_loss[-1] < history.train_loss[0]
    assert history.examples_per_sec > 0
    out = capsys.readouterr().out
    assert "test acc" in out and "examples/sec on cpu" in out


def test_train_stops_after_max_batches():
    net = nn.Linear(4, 2)
    history = d2lmini.train(
        net, toy_batches(), toy_batches(), 2, 0.1, "cpu", max_batches=3, plot=False, progress=False
    )
    assert history.examples == 2 * 3 * 64


def fresh_run():
    """A seeded model, its optimizer and a learning-rate schedule."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return net, dict(optimizer=optimizer, scheduler=scheduler)


def test_scheduler_steps_once_per_epoch():
    net, opts = fresh_run()
    d2lmini.train(
        net, toy_batches(), toy_batches(), 3, 0.3, "cpu", plot=False, progress=False, **opts
    )
    assert opts["optimizer"].param_groups[0]["lr"] == 0.3 * 0.5**3


def one_cycle_run(epochs, batches_per_epoch=8):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.3, total_steps=epochs * batches_per_epoch
    )
    return net, dict(optimizer=optimizer, scheduler=scheduler, step_scheduler="batch")


def test_batch_scheduler_steps_after_every_batch():
    net, opts = one_cycle_run(epochs=3)
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(opts["optimizer"].param_groups[0]["lr"])
            return x

    d2lmini.train(nn.Sequential(net, Spy()), toy_batches(), toy_batches(), 3, device="cpu",
                  plot=False, progress=False, summary=False, **opts)  # fmt: skip
    ref_net, ref = one_cycle_run(epochs=3)
    expected = []
    for _ in range(24):  # 3 epochs of 8 batches: the schedule's own sequence
        expected.append(ref["optimizer"].param_groups[0]["lr"])
        ref["optimizer"].step()
        ref["scheduler"].step()
    assert seen[:8] + seen[16:24] + seen[32:40] == expected  # eval calls in between
    # OneCycleLR raises when stepped past total_steps: every batch stepped exactly once
    assert opts["scheduler"].last_epoch == 24


def test_step_scheduler_must_be_epoch_or_batch():
    net, opts = one_cycle_run(epochs=1)
    opts["step_scheduler"] = "step"
    with pytest.raises(ValueError, match='"epoch" or "batch".*step'):
        d2lmini.train(
            net, toy_batches(), toy_batches(), 1, device="cpu", plot=False, progress=False, **opts
        )


def test_resume_with_a_batch_scheduler_equals_uninterrupted_training(tmp_path):
    kwargs = dict(device="cpu", plot=False, progress=False, summary=False)
    full, opts = one_cycle_run(epochs=4)
    ref = d2lmini.train(full, toy_batches(), toy_batches(seed=1), 4, **opts, **kwargs)
    ckpt = tmp_path / "run.pt"
    part, opts = one_cycle_run(epochs=4)
    d2lmini.train(part, toy_batches(), toy_batches(seed=1), 2, checkpoint=ckpt, **opts,
                  **kwargs)  # fmt: skip
    part, opts = one_cycle_run(epochs=4)
    hist = d2lmini.train(part, toy_batches(), toy_batches(seed=1), 4, checkpoint=ckpt,
                         resume=True, **opts, **kwargs)  # fmt: skip
    assert hist.train_loss == ref.train_loss
    torch.testing.assert_close(part.state_dict(), full.state_dict(), rtol=0, atol=0)


def test_resume_from_checkpoint_equals_uninterrupted_training(tmp_path):
    kwargs = dict(lr=0.3, device="cpu", plot=False, progress=False)
    full, opts = fresh_run()
    ref = d2lmini.train(full, toy_batches(), toy_batches(seed=1), 4, **opts, **kwargs)

    ckpt = tmp_path / "run.pt"
    part, opts = fresh_run()
    d2lmini.train(part, toy_batches(), toy_batches(seed=1), 2, checkpoint=ckpt, **opts, **kwargs)
    resumed, opts = fresh_run()  # a new process would start from scratch like this
    hist = d2lmini.train(
        resumed,
        toy_batches(),
        toy_batches(seed=1),
        4,
        checkpoint=ckpt,
        resume=True,
        **opts,
        **kwargs,
    )
    assert hist.train_loss == ref.train_loss and hist.test_acc == ref.test_acc
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


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


def quiet(**kwargs):
    return dict(plot=False, progress=False, **kwargs)


@pytest.mark.parametrize(
    "num_epochs, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_num_epochs_must_be_a_positive_int(num_epochs, error):
    with pytest.raises(error, match="num_epochs"):
        d2lmini.train(
            nn.Linear(4, 2), toy_batches(), toy_batches(), num_epochs, 0.1, "cpu", **quiet()
        )


@pytest.mark.parametrize(
    "max_batches, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError)]
)
def test_max_batches_must_be_a_positive_int(max_batches, error):
    with pytest.raises(error, match="max_batches"):
        d2lmini.train(
            nn.Linear(4, 2),
            toy_batches(),
            toy_batches(),
            1,
            0.1,
            "cpu",
            **quiet(max_batches=max_batches),
        )


def test_empty_iterators_are_named():
    with pytest.raises(ValueError, match="train_iter is empty"):
        d2lmini.train(nn.Linear(4, 2), [], toy_batches(), 1, 0.1, "cpu", **quiet())
    with pytest.raises(ValueError, match="test_iter is empty"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), [], 1, 0.1, "cpu", **quiet())


def test_an_iterable_without_len_that_yields_nothing_is_named():
    class Nothing:
        def __iter__(self):
            return iter([])

    with pytest.raises(ValueError, match="train_iter yielded no examples in epoch 1"):
        d2lmini.train(nn.Linear(4, 2), Nothing(), toy_batches(), 1, 0.1, "cpu", **quiet())
    with pytest.raises(ValueError, match="test_iter in epoch 1 yielded no examples"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), Nothing(), 1, 0.1, "cpu", **quiet())


def test_a_one_shot_iterator_is_refused_for_several_epochs():
    with pytest.raises(TypeError, match="one-shot iterator"):
        d2lmini.train(nn.Linear(4, 2), iter(toy_batches()), toy_batches(), 2, 0.1, "cpu", **quiet())
    history = d2lmini.train(
        nn.Linear(4, 2), iter(toy_batches()), toy_batches(), 1, 0.1, "cpu", **quiet()
    )
    assert history.examples == 512


# --- the learning rate and the optimizer ---------------------------------------------


def test_lr_is_optional_with_an_optimizer():
    net_a, opts_a = fresh_run()
    ref = d2lmini.train(net_a, toy_batches(), toy_batches(), 2, 0.3, "cpu", **opts_a, **quiet())
    net_b, opts_b = fresh_run()
    hist = d2lmini.train(net_b, toy_batches(), toy_batches(), 2, **opts_b, **quiet())
    assert hist.train_loss == ref.train_loss


def test_lr_or_an_optimizer_is_required():
    with pytest.raises(ValueError, match="pass lr"):
        d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, **quiet())


def test_an_lr_that_disagrees_with_the_optimizer_is_an_error():
    net, opts = fresh_run()  # SGD with lr=0.3
    with pytest.raises(ValueError, match=r"lr=0\.1 disagrees .* 0\.3"):
        d2lmini.train(net, toy_batches(), toy_batches(), 1, 0.1, "cpu", **opts, **quiet())


def test_lr_is_compared_with_the_lr_before_the_scheduler_changed_it():
    net = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=2)
    assert optimizer.param_groups[0]["lr"] == 0.1  # the warm-up already changed it
    d2lmini.train(
        net,
        toy_batches(),
        toy_batches(),
        1,
        0.2,
        "cpu",
        optimizer=optimizer,
        scheduler=scheduler,
        **quiet(),
    )


def test_a_scheduler_needs_its_optimizer():
    net = nn.Linear(4, 2)
    scheduler = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(net.parameters(), lr=0.1), 1)
    with pytest.raises(ValueError, match="optimizer="):
        d2lmini.train(
            net, toy_batches(), toy_batches(), 1, 0.1, "cpu", scheduler=scheduler, **quiet()
        )


def test_device_defaults_to_try_gpu():
    history = d2lmini.train(nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, **quiet())
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
    d2lmini.train(ref, toy_batches(), toy_batches(), 1, 0.1, "cpu", **quiet(max_batches=2))
    with pytest.raises(
        FloatingPointError,
        match=r"loss is nan at epoch 1, batch 3.*lower "
        r"learning rate \(it is 0\.1\)",
    ):
        d2lmini.train(net, batches_with_nan_at(2), toy_batches(), 1, 0.1, "cpu", **quiet())
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)  # exactly two steps were taken, the third was refused


def test_real_divergence_leaves_finite_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    big = [(X * 1e3, y) for X, y in toy_batches()]
    with pytest.raises(FloatingPointError, match="diverged"):
        d2lmini.train(net, big, big, 50, 1e4, "cpu", **quiet())
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
    with pytest.raises(FloatingPointError, match="gradient is NaN or infinite.*batch 1"):
        d2lmini.train(net, toy_batches(), toy_batches(), 1, 0.1, "cpu", **quiet())
    for p, q in zip(net.parameters(), before):
        assert torch.equal(p, q)


def test_no_checkpoint_is_written_after_a_divergence(tmp_path):
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    net = nn.Linear(4, 2)

    class EpochTwoHasNaN:
        def __init__(self):
            self.passes = 0

        def __len__(self):
            return 8

        def __iter__(self):
            self.passes += 1
            return iter(batches_with_nan_at(5) if self.passes == 2 else toy_batches())

    with pytest.raises(FloatingPointError, match="epoch 2, batch 6"):
        d2lmini.train(net, EpochTwoHasNaN(), toy_batches(), 3, 0.1, "cpu", **quiet(checkpoint=ckpt))
    state = d2lmini.load_checkpoint(ckpt)
    assert state["epoch"] == 0  # the checkpoint of epoch 1 is kept, finite
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_non_finite_buffers_are_not_checkpointed(tmp_path):
    class Spoils(nn.Module):
        """A running statistic that overflows, as a broken normalisation layer might."""

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)
            self.register_buffer("running", torch.zeros(1))

        def forward(self, X):
            self.running += float("inf") if self.training else 0.0
            return self.linear(X)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(FloatingPointError, match="not overwriting checkpoint"):
        d2lmini.train(
            Spoils(), toy_batches(), toy_batches(), 1, 0.1, "cpu", **quiet(checkpoint=ckpt)
        )
    assert not ckpt.exists()


# --- resuming must be loud -------------------------------------------------------


def test_resume_needs_a_checkpoint_path():
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        d2lmini.train(
            nn.Linear(4, 2), toy_batches(), toy_batches(), 1, 0.1, "cpu", **quiet(resume=True)
        )


def test_resume_without_a_file_says_it_starts_from_scratch(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    net, opts = fresh_run()
    d2lmini.train(
        net, toy_batches(), toy_batches(), 1, **opts, **quiet(checkpoint=ckpt, resume=True)
    )
    assert f"no checkpoint at {ckpt}, starting from scratch" in capsys.readouterr().out
    assert ckpt.is_file()
    net, opts = fresh_run()
    d2lmini.train(
        net, toy_batches(), toy_batches(), 2, **opts, **quiet(checkpoint=ckpt, resume=True)
    )
    assert f"resuming from {ckpt}: 1 of 2 epochs done" in capsys.readouterr().out


def test_resume_with_another_lr_is_an_error(tmp_path):
    ckpt = tmp_path / "run.pt"
    net, opts = fresh_run()  # lr 0.3 with a StepLR schedule
    d2lmini.train(net, toy_batches(), toy_batches(), 1, **opts, **quiet(checkpoint=ckpt))
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    with pytest.raises(ValueError, match=r"trained with lr \[0\.3\].*asks for lr \[0\.1\]"):
        d2lmini.train(
            net,
            toy_batches(),
            toy_batches(),
            2,
            optimizer=optimizer,
            scheduler=scheduler,
            **quiet(checkpoint=ckpt, resume=True),
        )


def test_resume_with_another_optimizer_or_scheduler_names_both_types(tmp_path):
    ckpt = tmp_path / "run.pt"
    net, opts = fresh_run()  # SGD + StepLR
    d2lmini.train(net, toy_batches(), toy_batches(), 1, **opts, **quiet(checkpoint=ckpt))
    net, _ = fresh_run()
    adam = torch.optim.Adam(net.parameters(), lr=0.3)
    with pytest.raises(ValueError, match="optimizer SGD, but this run uses optimizer Adam"):
        d2lmini.train(
            net,
            toy_batches(),
            toy_batches(),
            2,
            optimizer=adam,
            scheduler=torch.optim.lr_scheduler.StepLR(adam, 1),
            **quiet(checkpoint=ckpt, resume=True),
        )
    net, opts = fresh_run()
    with pytest.raises(ValueError, match="scheduler StepLR, but this run uses scheduler None"):
        d2lmini.train(
            net,
            toy_batches(),
            toy_batches(),
            2,
            optimizer=opts["optimizer"],
            **quiet(checkpoint=ckpt, resume=True),
        )


def test_resume_refuses_a_checkpoint_with_more_epochs(tmp_path):
    ckpt = tmp_path / "run.pt"
    net, opts = fresh_run()
    d2lmini.train(net, toy_batches(), toy_batches(), 3, **opts, **quiet(checkpoint=ckpt))
    net, opts = fresh_run()
    with pytest.raises(ValueError, match="already holds 3 epochs, more than num_epochs=2"):
        d2lmini.train(
            net, toy_batches(), toy_batches(), 2, **opts, **quiet(checkpoint=ckpt, resume=True)
        )


def test_resume_of_a_finished_run_returns_its_history(tmp_path):
    ckpt = tmp_path / "run.pt"
    net, opts = fresh_run()
    ref = d2lmini.train(net, toy_batches(), toy_batches(), 2, **opts, **quiet(checkpoint=ckpt))
    again, opts = fresh_run()
    hist = d2lmini.train(
        again, toy_batches(), toy_batches(), 2, **opts, **quiet(checkpoint=ckpt, resume=True)
    )
    assert hist.train_loss == ref.train_loss and hist.examples == ref.examples
    for p, q in zip(net.parameters(), again.parameters()):
        assert torch.equal(p, q)


def test_evaluate_accuracy_on_no_data_is_a_clear_error():
    with pytest.raises(ValueError, match="yielded no examples"):
        d2lmini.evaluate_accuracy(nn.Linear(4, 2), [])


@pytest.mark.parametrize("fused", [True, False])
def test_the_finiteness_check_finds_nan_and_inf_and_nothing_else(monkeypatch, fused):
    from d2lmini import training

    if not fused:  # the fallback for torch < 2.6, which lacks get_total_norm
        monkeypatch.delattr(torch.nn.utils, "get_total_norm", raising=False)
    big = torch.tensor([3e38, -3e38])  # its 2-norm overflows float32; no value is infinite
    assert training._all_finite([torch.zeros(3), big])
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert not training._all_finite([torch.zeros(3), torch.tensor([1.0, bad]), big])
    assert training._all_finite([torch.arange(3)])  # integer tensors are skipped


def test_eval_name_labels_the_summary_and_summary_can_be_silenced(capsys):
    torch.manual_seed(0)
    X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    batches = [(X[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    net = torch.nn.Linear(4, 3)
    history = d2lmini.train(
        net, batches, batches, 1, 0.1, "cpu", plot=False, progress=False, eval_name="val"
    )
    out = capsys.readouterr().out
    assert "val acc" in out and "test acc" not in out
    assert history.eval_name == "val"
    d2lmini.train(net, batches, batches, 1, 0.1, "cpu", plot=False, progress=False, summary=False)
    assert capsys.readouterr().out == ""


def test_sgd_recipe_is_one_cycle_sgd_or_d2ls_plain_sgd():
    net = nn.Linear(3, 2)
    optimizer, scheduler = d2lmini.sgd_recipe(net.parameters(), 0.2, total_steps=10)
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 5e-4
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    lrs, momenta = [], []
    for _ in range(10):
        lrs.append(group["lr"])
        momenta.append(group["momentum"])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(0.2) and lrs[0] < 0.2 / 20 and lrs[-1] < 0.2 / 100
    # OneCycleLR cycles the momentum against the rate: 0.95 at the ends, 0.85 at the peak
    peak = lrs.index(max(lrs))
    assert momenta[0] == pytest.approx(0.95) and momenta[peak] == pytest.approx(0.85)
    plain, none = d2lmini.sgd_recipe(net.parameters(), 0.9, 10, one_cycle=False)
    assert none is None and plain.param_groups[0]["momentum"] == 0
    assert plain.param_groups[0]["lr"] == 0.9
    with pytest.raises(ValueError, match="lr must be"):
        d2lmini.sgd_recipe(net.parameters(), 0.0, 10)
    with pytest.raises(ValueError, match="total_steps"):
        d2lmini.sgd_recipe(net.parameters(), 0.1, 0)
