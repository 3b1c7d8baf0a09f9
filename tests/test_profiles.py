import pytest
import torch

import d2lmini
from d2lmini.profiles import PROFILE_ENV

FULL = dict(epochs=10, lr=0.9, max_batches=None)


@pytest.mark.parametrize(
    "profile, expected",
    [
        ("full", dict(epochs=10, lr=0.9, max_batches=None)),
        ("laptop", dict(epochs=3, lr=0.9, max_batches=None)),
        ("smoke", dict(epochs=1, lr=0.9, max_batches=20)),
    ],
)
def test_choose_layers_laptop_and_smoke_over_full(profile, expected):
    hp = d2lmini.choose(
        full=FULL, laptop=dict(epochs=3), smoke=dict(epochs=1, max_batches=20), profile=profile
    )
    assert dict(hp) == expected
    assert hp.epochs == expected["epochs"]
    assert hp.profile == profile
    lines = repr(hp).splitlines()
    assert lines[0] == f"profile {profile}" and lines[1].split() == ["epochs", repr(hp.epochs)]


def test_smoke_inherits_laptop_settings():
    hp = d2lmini.choose(full=FULL, laptop=dict(epochs=3), smoke=dict(lr=0.1), profile="smoke")
    assert (hp.epochs, hp.lr) == (3, 0.1)


def test_settings_missing_from_full_are_rejected():
    with pytest.raises(KeyError, match="full does not define"):
        d2lmini.choose(full=FULL, smoke=dict(batch_size=8), profile="smoke")


def test_unknown_setting_names_the_known_ones():
    hp = d2lmini.choose(full=FULL, profile="full")
    with pytest.raises(AttributeError, match="epochs"):
        hp.epoch  # noqa: B018


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "SMOKE")
    assert d2lmini.current_profile() == "smoke"
    monkeypatch.setenv(PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match="full, laptop, smoke"):
        d2lmini.current_profile()


def test_default_profile_depends_on_cuda(monkeypatch):
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    expected = "full" if torch.cuda.is_available() else "laptop"
    assert d2lmini.current_profile() == expected
