import random

import numpy as np
import pytest
import torch

import d2lmini


def test_try_gpu_returns_a_usable_device():
    device = d2lmini.try_gpu()
    assert torch.ones(2, device=device).sum().item() == 2


def test_try_gpu_falls_back_to_cpu_for_a_missing_index():
    assert d2lmini.try_gpu(d2lmini.num_gpus() + 5) == torch.device("cpu")


def test_try_gpu_rejects_negative_index():
    with pytest.raises(ValueError, match=">= 0"):
        d2lmini.try_gpu(-1)


def test_synchronize_waits_on_every_device_and_names_an_unknown_one():
    for device in d2lmini.try_all_gpus() + [d2lmini.cpu(), "cpu"]:
        d2lmini.synchronize(device)  # returns once the device is idle
    with pytest.raises(ValueError, match="'meta'"):
        d2lmini.synchronize("meta")


def test_try_all_gpus_is_never_empty():
    devices = d2lmini.try_all_gpus()
    assert devices
    assert len(devices) == max(1, d2lmini.num_gpus())


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    d2lmini.seed_everything(7)
    first = draw()
    d2lmini.seed_everything(7)
    assert draw() == first


def test_env_info_names_versions_device_and_profile(capsys, monkeypatch):
    monkeypatch.setenv("D2LMINI_PROFILE", "smoke")
    line = d2lmini.env_info()
    assert capsys.readouterr().out.strip() == line
    assert line.startswith(f"torch {torch.__version__.split('+')[0]} | torchvision ")
    assert "| profile smoke |" in line
    assert line.endswith(f"threads {torch.get_num_threads()}")


def test_timer_records_laps():
    timer = d2lmini.Timer()
    for _ in range(3):
        with timer:
            sum(range(100))
    assert len(timer.times) == 3
    assert timer.sum() == pytest.approx(sum(timer.times))
    assert timer.avg() == pytest.approx(timer.sum() / 3)


def test_timer_starts_when_created_like_d2ls():
    import time

    timer = d2lmini.Timer()
    time.sleep(0.01)
    assert timer.stop() >= 0.01 and len(timer.times) == 1


def test_timer_stop_without_a_running_lap_is_an_error():
    timer = d2lmini.Timer()
    timer.stop()
    with pytest.raises(RuntimeError, match="without a running lap"):
        timer.stop()


def test_import_is_light():
    """`import d2lmini` (and its diagrams) must not pull in matplotlib or torchvision."""
    import subprocess
    import sys

    code = (
        "import sys, d2lmini, d2lmini.diagrams; "
        "print(sorted(m for m in ('matplotlib', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_time_in_turn_interleaves_rounds_and_tells_rivals_apart():
    import time

    order: list[str] = []

    def sleeper(name, seconds):
        def fn():
            order.append(name)
            time.sleep(seconds)

        return fn

    rivals = {"fast": sleeper("fast", 0.001), "slow": sleeper("slow", 0.004)}
    samples = d2lmini.time_in_turn(rivals, rounds=3, seconds=0.15, warmup=1)
    assert [len(v) for v in samples.values()] == [3, 3]
    assert max(samples["fast"]) < min(samples["slow"])  # 1 ms vs 4 ms, every round
    assert 0.003 < min(samples["slow"]) < 0.02
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches >= 5  # in turn: fast, slow, fast, slow, ... not all of one first
    with pytest.raises(ValueError, match="rounds must be an int >= 1"):
        d2lmini.time_in_turn({"x": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="non-empty mapping"):
        d2lmini.time_in_turn([lambda: None])  # type: ignore[arg-type]


STUDY = dict(grid={0.05: 0.90, 0.1: 0.92, 0.2: None}, lr=0.1, test_acc=(0.92, 0.93, 0.91),
             target=0.915)  # fmt: skip


def test_check_study_returns_the_mean_and_prints_the_numbers(capsys):
    assert d2lmini.check_study(STUDY) == pytest.approx(0.92)
    assert "chosen peak rate 0.1 of [0.05, 0.1, 0.2]\ntest accuracy 0.92" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(lr=0.05), "not the best"),  # not the grid's best
        (dict(grid={0.05: 0.90, 0.1: 0.92}), "inside"),  # best on the edge
        (dict(test_acc=(0.91, 0.91, 0.91)), "miss the target"),  # mean below
        (dict(test_acc=(0.95, 0.95, 0.90)), "miss the target"),  # worst 0.015 below
    ],
)
def test_check_study_rejects_a_claim_the_numbers_do_not_support(change, message):
    with pytest.raises(ValueError, match=message):
        d2lmini.check_study({**STUDY, **change})


def test_check_study_checks_the_settings_of_the_profiles_that_train_the_study():
    laptop = d2lmini.Settings("laptop", dict(lr=0.1, min_acc=0.9))  # worst 0.91 less 0.01
    assert d2lmini.check_study(STUDY, laptop) == pytest.approx(0.92)
    for wrong in (dict(lr=0.2, min_acc=0.9), dict(lr=0.1, min_acc=0.89)):
        with pytest.raises(ValueError, match="must train at lr=0.1 and ask for min_acc=0.9"):
            d2lmini.check_study(STUDY, d2lmini.Settings("laptop", wrong))
    smoke = d2lmini.Settings("smoke", dict(lr=0.05, min_acc=0.3))  # not the study's run
    d2lmini.check_study(STUDY, smoke)
    with pytest.raises(ValueError, match="full must train"):
        d2lmini.check_study(STUDY, d2lmini.Settings("full", dict(lr=0.05, min_acc=0.3)),
                            profiles=("laptop", "full"))  # fmt: skip
    # rounded down to three decimals: 0.9137 - 0.01 asks for 0.903
    odd = {**STUDY, "test_acc": (0.92, 0.93, 0.9137)}
    d2lmini.check_study(odd, d2lmini.Settings("laptop", dict(lr=0.1, min_acc=0.903)))
