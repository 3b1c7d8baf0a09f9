"""Fashion-MNIST, the real data set, loaded fast and offline when possible.

Where the raw files come from, in order:

1. the folder ``root`` you pass, else ``$D2LMINI_DATA``, else ``~/.cache/d2lmini``
   (torchvision's layout: ``ROOT/FashionMNIST/raw/``);
2. the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
   whose gzip files are decompressed into that layout once;
3. torchvision's download, when the machine is online.

If none works you get a :class:`FileNotFoundError` that names both ways to get the data.
There is never a silent fake data set.

The fast path decodes each split once into a ``uint8`` tensor and cuts batches out of it
by indexing a shuffled permutation; scaling to ``[0, 1]`` and resizing happen per batch.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.nn import functional as F

__all__ = [
    "DATA_ENV",
    "SYSTEM_DIR",
    "FashionMNISTBatches",
    "default_data_root",
    "get_dataloader_workers",
    "get_fashion_mnist_labels",
    "load_data_fashion_mnist",
    "load_fashion_mnist_datasets",
    "load_fashion_mnist_splits",
    "prepare_fashion_mnist",
    "read_fashion_mnist",
    "read_idx",
]

DATA_ENV = "D2LMINI_DATA"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LABELS = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip


def default_data_root() -> Path:
    """``$D2LMINI_DATA`` if set, else ``$XDG_CACHE_HOME/d2lmini`` (``~/.cache/d2lmini``)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "d2lmini"


def _raw_dir(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def _all_files() -> list[str]:
    return [name for pair in SPLIT_FILES.values() for name in pair]


def _decompress(src: Path, dst: Path) -> None:
    """Decompress ``src`` to ``dst`` atomically (safe when two processes race)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".part")
    try:
        with gzip.open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _missing_data_error(root: Path, system_dir: Path, reason: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Fashion-MNIST not found in {_raw_dir(root)} nor in {system_dir}, "
        f"and {reason}.\nGet it one of two ways:\n"
        "  * offline (Debian/Ubuntu): sudo apt-get install dataset-fashion-mnist\n"
        "  * online: run this again with internet access; torchvision downloads it\n"
        f"Or point ${DATA_ENV} (or root=) at a folder that holds FashionMNIST/raw/."
    )


def prepare_fashion_mnist(
    root: str | Path | None = None,
    system_dir: str | Path = SYSTEM_DIR,
    download: bool = True,
) -> Path:
    """Make sure the four raw files are in ``ROOT/FashionMNIST/raw/``; return ``ROOT``."""
    root = Path(root).expanduser() if root is not None else default_data_root()
    system_dir = Path(system_dir)
    raw = _raw_dir(root)
    missing = [name for name in _all_files() if not (raw / name).exists()]
    if not missing:
        return root
    if all((system_dir / f"{name}.gz").exists() for name in missing):
        for name in missing:
            _decompress(system_dir / f"{name}.gz", raw / name)
        return root
    if not download:
        raise _missing_data_error(root, system_dir, "downloading was not allowed")
    try:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except Exception as exc:  # offline, proxy, disk full ...
        raise _missing_data_error(root, system_dir, f"the download failed ({exc})") from exc
    return root


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (the MNIST format) into a ``uint8`` tensor."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise ValueError(
            f"{path} has {len(data)} bytes but its header {tuple(shape)} needs {expected}: "
            "the file is truncated or corrupt; delete it to fetch it again"
        )
    buffer = bytearray(data[header:])  # writable copy: torch wants writable memory
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(shape)


def read_fashion_mnist(
    split: str = "train", root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(images, labels)`` of a split: ``uint8`` N×28×28 and ``int64`` N."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
    raw = _raw_dir(prepare_fashion_mnist(root))
    images_file, labels_file = SPLIT_FILES[split]
    images, labels = read_idx(raw / images_file), read_idx(raw / labels_file).long()
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def _as_size(resize: int | Sequence[int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    if isinstance(resize, int):
        return (resize, resize)
    height, width = resize
    return (int(height), int(width))


class FashionMNISTBatches:
    """Iterate over ``(X, y)`` mini-batches of a decoded split, like a ``DataLoader``.

    ``X`` is ``float32`` of shape (B, 1, H, W) with values in [0, 1]; ``y`` is ``int64``.
    With ``device`` set, the whole split (47 MB for training) moves there once and
    batches are made on that device.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        resize: int | Sequence[int] | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images {tuple(images.shape)} and labels {tuple(labels.shape)} "
                "must have the same first dimension"
            )
        device = torch.device(device) if device is not None else images.device
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.size = _as_size(resize)
        self.generator = generator

    @property
    def num_examples(self) -> int:
        """How many examples one pass yields."""
        return int(self.images.shape[0])

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_examples
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.images.device)
        else:
            order = torch.arange(n, device=self.images.device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            X = self.images[idx].unsqueeze(1).float().div_(255)
            if self.size is not None and tuple(X.shape[-2:]) != self.size:
                X = F.interpolate(
                    X, size=self.size, mode="bilinear", align_corners=False, antialias=True
                )
            yield X, self.labels[idx]

    def __repr__(self) -> str:
        return (
            f"FashionMNISTBatches({self.num_examples} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, resize={self.size}, device={self.images.device})"
        )


def load_data_fashion_mnist(
    batch_size: int,
    resize: int | Sequence[int] | None = None,
    root: str | Path | None = None,
    device: torch.device | str | None = None,
) -> tuple[FashionMNISTBatches, FashionMNISTBatches]:
    """Return ``(train_iter, test_iter)`` over real Fashion-MNIST (d2l's name and order).

    The training iterator reshuffles on every pass (seed with ``torch.manual_seed``);
    the test iterator keeps the file order.
    """
    train_images, train_labels = read_fashion_mnist("train", root)
    test_images, test_labels = read_fashion_mnist("test", root)
    train_iter = FashionMNISTBatches(
        train_images, train_labels, batch_size, shuffle=True, resize=resize, device=device
    )
    test_iter = FashionMNISTBatches(
        test_images, test_labels, batch_size, shuffle=False, resize=resize, device=device
    )
    return train_iter, test_iter


class Splits(NamedTuple):
    """Training, validation and test iterators (unpack them like a tuple)."""

    train: FashionMNISTBatches
    val: FashionMNISTBatches
    test: FashionMNISTBatches


def load_fashion_mnist_splits(
    batch_size: int,
    val_size: int = 10_000,
    resize: int | Sequence[int] | None = None,
    root: str | Path | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Splits:
    """Return ``(train_iter, val_iter, test_iter)``: a validation split for tuning.

    ``val_size`` images are drawn at random (fixed by ``seed``, independent of the global
    RNG) from the 60,000 training images and held out; training uses the rest. Choose
    hyper-parameters on ``val_iter`` and report ``test_iter`` once, at the end.
    """
    images, labels = read_fashion_mnist("train", root)
    if not 0 < val_size < images.shape[0]:
        raise ValueError(
            f"val_size must be between 1 and {images.shape[0] - 1}, got {val_size}"
        )
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    test_images, test_labels = read_fashion_mnist("test", root)

    def batches(x: torch.Tensor, y: torch.Tensor, shuffle: bool) -> FashionMNISTBatches:
        return FashionMNISTBatches(
            x, y, batch_size, shuffle=shuffle, resize=resize, device=device
        )

    return Splits(
        batches(images[train_idx], labels[train_idx], shuffle=True),
        batches(images[val_idx], labels[val_idx], shuffle=False),
        batches(test_images, test_labels, shuffle=False),
    )


def load_fashion_mnist_datasets(
    root: str | Path | None = None, transform: Any = None
) -> tuple[Any, Any]:
    """Return torchvision's ``FashionMNIST`` train and test ``Dataset`` objects.

    This is the classic per-image pipeline (PIL image -> ``transform``), kept for teaching
    ``Dataset``/``DataLoader``; training uses the faster :func:`load_data_fashion_mnist`.
    """
    from torchvision.datasets import FashionMNIST

    root = prepare_fashion_mnist(root)
    train = FashionMNIST(str(root), train=True, transform=transform, download=False)
    test = FashionMNIST(str(root), train=False, transform=transform, download=False)
    return train, test


def get_dataloader_workers() -> int:
    """A sane ``num_workers`` for a ``DataLoader``.

    0 unless worker processes start by ``fork``: with ``spawn`` (Windows, macOS) or
    ``forkserver`` (Linux from Python 3.14) workers re-import ``__main__``, which fails for
    a Dataset class defined in a notebook. Otherwise one less than the CPU count, at most 4
    (d2l hard-codes 4, which oversubscribes a 2-core machine).
    """
    import multiprocessing

    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:  # not fixed yet: the platform default is listed first
        method = multiprocessing.get_all_start_methods()[0]
    if sys.platform in ("win32", "darwin") or method != "fork":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def get_fashion_mnist_labels(labels: Any) -> list[str]:
    """Turn numeric labels (ints or a tensor) into their text names."""
    return [LABELS[int(i)] for i in labels]
