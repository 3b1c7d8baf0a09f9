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
    history = d2lmini.train(net, toy_batches(), toy_batches(seed=1), 5, 0.5, "cpu",
                            plot=False, progress=False)
    assert history.epochs == 5 and history.examples == 5 * 512
    assert history.test_acc[-1] > 0.9 and history.train_loss[-1] < history.train_loss[0]
    assert history.examples_per_sec > 0
    out = capsys.readouterr().out
    assert "test acc" in out and "examples/sec on cpu" in out


def test_train_stops_after_max_batches():
    net = nn.Linear(4, 2)
    history = d2lmini.train(net, toy_batches(), toy_batches(), 2, 0.1, "cpu",
                            max_batches=3, plot=False, progress=False)
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
    d2lmini.train(net, toy_batches(), toy_batches(), 3, 0.3, "cpu", plot=False,
                  progress=False, **opts)
    assert opts["optimizer"].param_groups[0]["lr"] == 0.3 * 0.5**3


def test_resume_from_checkpoint_equals_uninterrupted_training(tmp_path):
    kwargs = dict(lr=0.3, device="cpu", plot=False, progress=False)
    full, opts = fresh_run()
    ref = d2lmini.train(full, toy_batches(), toy_batches(seed=1), 4, **opts, **kwargs)

    ckpt = tmp_path / "run.pt"
    part, opts = fresh_run()
    d2lmini.train(part, toy_batches(), toy_batches(seed=1), 2, checkpoint=ckpt, **opts,
                  **kwargs)
    resumed, opts = fresh_run()  # a new process would start from scratch like this
    hist = d2lmini.train(resumed, toy_batches(), toy_batches(seed=1), 4,
                         checkpoint=ckpt, resume=True, **opts, **kwargs)
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
    losses = d2lmini.fit_full_batch(net, torch.optim.SGD(net.parameters(), lr=0.1), X, y,
                                    loss_fn, steps=50)
    assert len(losses) == 50 and losses[0] == initial
    assert losses[-1] < 0.5 * losses[0]
