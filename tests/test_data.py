import gzip
from pathlib import Path

import pytest
import torch

import d2lmini
from d2lmini import data


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A fresh data root filled from the Debian package (or the default cache)."""
    root = tmp_path_factory.mktemp("fashion")
    if data.SYSTEM_DIR.is_dir():
        return d2lmini.prepare_fashion_mnist(root, download=False)
    return d2lmini.prepare_fashion_mnist()  # a developer machine without the package


def test_prepare_decompresses_the_debian_files_into_torchvision_layout(root):
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(data._all_files())
    if data.SYSTEM_DIR.is_dir():
        with gzip.open(data.SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz") as f:
            assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == f.read()


def test_splits_have_the_published_sizes_types_and_labels(root):
    for split, n in [("train", 60000), ("test", 10000)]:
        images, labels = d2lmini.read_fashion_mnist(split, root)
        assert images.shape == (n, 28, 28) and images.dtype == torch.uint8
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert torch.equal(labels.bincount(), torch.full((10,), n // 10))


def test_pixels_equal_torchvisions_reader_of_the_same_files(root):
    train, test = d2lmini.load_fashion_mnist_datasets(root)
    for dataset, split in [(train, "train"), (test, "test")]:
        images, labels = d2lmini.read_fashion_mnist(split, root)
        assert torch.equal(dataset.data, images)
        assert torch.equal(dataset.targets, labels)


def test_batches_match_a_dataloader_with_totensor(root):
    from torchvision import transforms

    _, test = d2lmini.load_fashion_mnist_datasets(root, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(test, batch_size=100)
    _, test_iter = d2lmini.load_data_fashion_mnist(100, root=root)
    (X_ref, y_ref), (X, y) = next(iter(loader)), next(iter(test_iter))
    torch.testing.assert_close(X, X_ref, rtol=0, atol=1e-7)
    assert torch.equal(y, y_ref)


def test_load_data_yields_float_batches_in_unit_range(root):
    train_iter, test_iter = d2lmini.load_data_fashion_mnist(256, root=root)
    assert (len(train_iter), len(test_iter)) == (235, 40)
    batches = list(train_iter)
    X, y = batches[0]
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32
    assert 0 <= X.min() and X.max() <= 1 and X.max() > 0.9
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    assert batches[-1][0].shape[0] == 60000 - 234 * 256
    assert sum(b[1].numel() for b in batches) == 60000


def test_training_order_is_reshuffled_and_test_order_is_fixed(root):
    train_iter, test_iter = d2lmini.load_data_fashion_mnist(1000, root=root)
    first, second = next(iter(train_iter))[1], next(iter(train_iter))[1]
    assert not torch.equal(first, second)
    assert torch.equal(next(iter(test_iter))[1], next(iter(test_iter))[1])


def test_resize_changes_height_and_width(root):
    _, test_iter = d2lmini.load_data_fashion_mnist(8, resize=64, root=root)
    X, _ = next(iter(test_iter))
    assert X.shape == (8, 1, 64, 64)
    assert 0 <= X.min() and X.max() <= 1


def test_batches_live_on_the_requested_device(root):
    device = d2lmini.try_gpu()
    train_iter, _ = d2lmini.load_data_fashion_mnist(32, root=root, device=device)
    X, y = next(iter(train_iter))
    assert X.device.type == device.type and y.device.type == device.type


def test_missing_data_error_names_both_ways_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        d2lmini.prepare_fashion_mnist(tmp_path, system_dir=tmp_path / "none", download=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "internet" in message and "D2LMINI_DATA" in message


def test_failed_download_is_reported_not_hidden(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(FileNotFoundError, match="download failed.*unreachable"):
        d2lmini.prepare_fashion_mnist(tmp_path, system_dir=tmp_path / "none")


def test_truncated_idx_file_gives_a_clear_error(root, tmp_path):
    source = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    broken = tmp_path / "broken-idx1-ubyte"
    broken.write_bytes(source.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(broken)
    broken.write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(broken)


def test_mismatched_images_and_labels_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(5, 28, 28\).*\(4,\)"):
        d2lmini.FashionMNISTBatches(torch.zeros(5, 28, 28), torch.zeros(4), batch_size=2)


def test_labels_are_named():
    assert d2lmini.get_fashion_mnist_labels(torch.tensor([0, 9])) == ["t-shirt", "ankle boot"]


def test_dataloader_workers_is_small_and_non_negative():
    assert 0 <= d2lmini.get_dataloader_workers() <= 4


def test_no_workers_unless_processes_fork(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "spawn")
    assert d2lmini.get_dataloader_workers() == 0


def test_validation_split_is_disjoint_from_training_and_fixed_by_seed():
    train, val, test = d2lmini.load_fashion_mnist_splits(1000, val_size=5000, seed=1)
    assert (train.num_examples, val.num_examples, test.num_examples) == (55000, 5000, 10000)
    full, _ = d2lmini.read_fashion_mnist("train")
    seen = torch.cat([train.images, val.images]).flatten(1)
    # every training image lands in exactly one of the two splits
    assert torch.equal(seen.sum(0, dtype=torch.int64), full.flatten(1).sum(0, dtype=torch.int64))
    again = d2lmini.load_fashion_mnist_splits(1000, val_size=5000, seed=1).val
    other = d2lmini.load_fashion_mnist_splits(1000, val_size=5000, seed=2).val
    assert torch.equal(again.images, val.images) and not torch.equal(other.images, val.images)
    with pytest.raises(ValueError, match="val_size"):
        d2lmini.load_fashion_mnist_splits(1000, val_size=0)
