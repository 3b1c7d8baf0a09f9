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


# --- arguments are checked when the loader is called, before any file is read -------


@pytest.mark.parametrize(
    "batch_size, error",
    [("32", TypeError), (32.0, TypeError), (True, TypeError), (0, ValueError), (-4, ValueError)],
)
def test_batch_size_is_checked_at_call_time(tmp_path, batch_size, error):
    nowhere = tmp_path / "no-data"  # a data root that loading would fill
    for load in (d2lmini.load_data_fashion_mnist, d2lmini.load_fashion_mnist_splits):
        with pytest.raises(error, match="batch_size"):
            load(batch_size, root=nowhere)
    assert not nowhere.exists()  # refused before any file was looked for or written
    with pytest.raises(error, match="batch_size"):
        d2lmini.FashionMNISTBatches(torch.zeros(4, 28, 28), torch.zeros(4), batch_size)


@pytest.mark.parametrize(
    "resize", ["32", 0, -1, 2.5, True, (32,), (32, 0), ("3", "2"), (32, 32, 32)]
)
def test_resize_is_checked_at_call_time(tmp_path, resize):
    nowhere = tmp_path / "no-data"
    for load in (d2lmini.load_data_fashion_mnist, d2lmini.load_fashion_mnist_splits):
        with pytest.raises(ValueError, match="resize must be"):
            load(8, resize=resize, root=nowhere)
    assert not nowhere.exists()
    with pytest.raises(ValueError, match="resize must be"):
        d2lmini.FashionMNISTBatches(torch.zeros(4, 28, 28), torch.zeros(4), 2, resize=resize)


def test_resize_accepts_a_pair_of_ints(root):
    _, test_iter = d2lmini.load_data_fashion_mnist(4, resize=[40, 20], root=root)
    assert next(iter(test_iter))[0].shape == (4, 1, 40, 20)


def test_generator_makes_the_training_order_reproducible(root):
    orders = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)  # must not matter
        generator = torch.Generator().manual_seed(0)
        train_iter, _ = d2lmini.load_data_fashion_mnist(500, root=root, generator=generator)
        orders.append(next(iter(train_iter))[1])
        train, _, _ = d2lmini.load_fashion_mnist_splits(
            500, root=root, generator=torch.Generator().manual_seed(0)
        )
        orders.append(next(iter(train))[1])
    assert torch.equal(orders[0], orders[2]) and torch.equal(orders[1], orders[3])
    assert not torch.equal(orders[0], orders[1])  # different data, different batches
    with pytest.raises(TypeError, match="torch.Generator"):
        d2lmini.load_data_fashion_mnist(8, root=root, generator=0)


# --- files that are not what their names say -------------------------------------


def write_idx(path, tensor, type_code=0x08):
    header = bytes([0, 0, type_code, tensor.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in tensor.shape)
    path.write_bytes(header + tensor.to(torch.uint8).numpy().tobytes())


@pytest.fixture
def fake_root(root, tmp_path):
    """A data root whose training files are real and whose test files we write."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).symlink_to(root / "FashionMNIST" / "raw" / name)
    write_idx(raw / "t10k-images-idx3-ubyte", torch.zeros(5, 28, 28))
    write_idx(raw / "t10k-labels-idx1-ubyte", torch.arange(5))
    return tmp_path


def test_fake_root_is_readable(fake_root):
    images, labels = d2lmini.read_fashion_mnist("test", fake_root)
    assert images.shape == (5, 28, 28) and labels.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.zeros(5, 28, 28), r"one label per image .* shape \(5, 28, 28\)"),
        (torch.tensor([0, 1, 2, 3, 12]), "holds the label 12, but Fashion-MNIST labels are 0 to 9"),
        (torch.arange(4), "5 images .* but 4 labels"),
    ],
)
def test_label_files_that_are_not_labels_are_named(fake_root, labels, message):
    path = fake_root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(path, labels)
    with pytest.raises(ValueError, match=message) as info:
        d2lmini.read_fashion_mnist("test", fake_root)
    assert str(path) in str(info.value) and "delete" in str(info.value)


@pytest.mark.parametrize("images", [torch.zeros(5, 32, 32), torch.zeros(5, 784)])
def test_image_files_of_the_wrong_shape_are_named(fake_root, images):
    path = fake_root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    write_idx(path, images)
    with pytest.raises(ValueError, match="28x28 pixels") as info:
        d2lmini.read_fashion_mnist("test", fake_root)
    assert str(path) in str(info.value) and "delete it" in str(info.value)


def test_idx_files_of_another_element_type_are_refused(fake_root):
    path = fake_root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(path, torch.arange(5), type_code=0x0D)  # 0x0D: float32 elements
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes.*delete it"):
        d2lmini.read_fashion_mnist("test", fake_root)


# --- where the data lives -----------------------------------------------------------


def test_a_root_that_is_a_file_is_named_with_the_fix(tmp_path):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("oops")
    with pytest.raises(NotADirectoryError, match="data root .*data is a file.*D2LMINI_DATA"):
        d2lmini.prepare_fashion_mnist(not_a_folder)
    (tmp_path / "root2").mkdir()
    (tmp_path / "root2" / "FashionMNIST").write_text("oops")
    with pytest.raises(NotADirectoryError, match="FashionMNIST is a file, not a folder"):
        d2lmini.prepare_fashion_mnist(tmp_path / "root2")


@pytest.mark.skipif(not data.SYSTEM_DIR.is_dir(), reason="needs the Debian package's files")
def test_an_unwritable_root_is_named_with_the_fix(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.tempfile, "mkstemp", denied)  # root ignores chmod; simulate
    with pytest.raises(
        PermissionError, match="cannot write the Fashion-MNIST files into .*raw.*D2LMINI_DATA"
    ):
        d2lmini.prepare_fashion_mnist(tmp_path)


def test_root_expands_the_home_folder(root, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "FashionMNIST").symlink_to(root / "FashionMNIST")
    monkeypatch.setenv("HOME", str(home))
    assert d2lmini.prepare_fashion_mnist("~/data") == home / "data"


def test_dataloader_workers_count_usable_cores_not_all_cores(monkeypatch):
    import multiprocessing
    import os

    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    monkeypatch.setattr(data.sys, "platform", "linux")
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert d2lmini.get_dataloader_workers() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert d2lmini.get_dataloader_workers() == 0
