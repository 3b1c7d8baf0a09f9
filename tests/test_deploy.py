"""d2lmini.deploy: the cached trained LeNet and the ONNX export with its preprocessing."""

import json

import numpy as np
import pytest
import torch

import d2lmini
from d2lmini.checkpoint import CheckpointError

RECIPE = dict(epochs=1, lr=0.1, batch_size=256, max_batches=50)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def _weights(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_trained_lenet_trains_once_then_loads_the_same_weights(cache, capsys):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    net = d2lmini.trained_lenet(**RECIPE, cache_dir=cache)
    assert "trained LeNet" in capsys.readouterr().out
    torch.testing.assert_close(torch.rand(3), before)  # the caller's RNG is untouched
    assert not net.training and next(net.parameters()).device.type == "cpu"
    path = d2lmini.lenet_cache_path(**RECIPE, cache_dir=cache)
    assert path.exists()
    again = d2lmini.trained_lenet(**RECIPE, cache_dir=cache)
    assert "loaded the trained LeNet" in capsys.readouterr().out
    assert torch.equal(_weights(net), _weights(again))


def test_training_is_reproducible_and_beats_chance(cache, tmp_path):
    net = d2lmini.trained_lenet(**RECIPE, cache_dir=cache)
    torch.manual_seed(999)  # another global state must not change the result
    fresh = d2lmini.trained_lenet(**RECIPE, cache_dir=tmp_path)
    assert torch.equal(_weights(net), _weights(fresh))
    images, labels = d2lmini.read_fashion_mnist("test")
    X = images[:2000].unsqueeze(1).float() / 255
    with torch.no_grad():
        acc = (net(X).argmax(1) == labels[:2000]).float().mean().item()
    assert acc > 0.4, acc  # 50 steps of SGD; chance is 0.1


def test_cache_key_depends_on_every_setting(tmp_path):
    base = d2lmini.lenet_cache_path(**RECIPE, cache_dir=tmp_path)
    for key, value in [
        ("epochs", 2),
        ("lr", 0.2),
        ("batch_size", 128),
        ("max_batches", None),
        ("seed", 1),
    ]:
        other = dict(RECIPE, **{key: value})
        assert d2lmini.lenet_cache_path(**other, cache_dir=tmp_path) != base, key


@pytest.mark.parametrize(
    "bad",
    [dict(epochs=0), dict(lr=0), dict(batch_size=1.5), dict(max_batches=0), dict(epochs=True)],
)
def test_bad_recipes_are_refused(bad, tmp_path):
    with pytest.raises(ValueError):
        d2lmini.trained_lenet(**dict(RECIPE, **bad), cache_dir=tmp_path)


def test_a_damaged_cache_file_is_an_error_not_silent_weights(cache):
    d2lmini.trained_lenet(**RECIPE, cache_dir=cache)
    path = d2lmini.lenet_cache_path(**RECIPE, cache_dir=cache)
    damaged = cache / "damaged"
    damaged.mkdir()
    copy = d2lmini.lenet_cache_path(**RECIPE, cache_dir=damaged)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        d2lmini.trained_lenet(**RECIPE, cache_dir=damaged)


def test_export_onnx_writes_a_model_with_a_dynamic_batch_and_its_spec(cache, tmp_path):
    import onnxruntime as ort

    net = d2lmini.trained_lenet(**RECIPE, cache_dir=cache)
    path = d2lmini.export_onnx(net, tmp_path / "lenet.onnx")
    spec = json.loads(path.with_suffix(".json").read_text())
    assert spec == d2lmini.preprocessing_spec()
    assert spec["labels"] == d2lmini.get_fashion_mnist_labels(range(10))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images, _ = d2lmini.read_fashion_mnist("test")
    for n in (1, 7, 33):
        X = images[:n].unsqueeze(1).float() / 255
        out = session.run(["logits"], {"image": X.numpy()})[0]
        with torch.no_grad():
            expected = net(X).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_preprocessing_spec_is_the_training_pipeline():
    images, labels = d2lmini.read_fashion_mnist("test")
    X, _ = next(iter(d2lmini.FashionMNISTBatches(images[:5], labels[:5], 5)))
    spec = d2lmini.preprocessing_spec()
    assert tuple(X.shape[1:]) == (1, spec["height"], spec["width"])
    mine = images[:5].numpy().astype(np.float32) / np.float32(spec["divide_by"])
    assert np.array_equal(mine, X[:, 0].numpy())  # bit for bit
