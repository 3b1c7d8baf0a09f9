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
import numbers
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

from .checkpoint import _explain_permission

__all__ = [
    "FashionMNISTBatches", "get_dataloader_workers", "get_fashion_mnist_labels",
    "load_data_fashion_mnist", "load_fashion_mnist_datasets", "load_fashion_mnist_splits",
    "prepare_fashion_mnist", "read_fashion_mnist",
]  # fmt: skip

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


def _root_fix() -> str:
    return (
        f"pass root= (or set ${DATA_ENV}) to a folder you can write to, "
        f"e.g. the default {Path('~') / '.cache' / 'd2lmini'}"
    )


def _writable_raw_dir(root: Path) -> Path:
    """Create ``ROOT/FashionMNIST/raw`` if needed and check that files can be added."""
    raw = _raw_dir(root)
    try:
        with _explain_permission(f"cannot write the Fashion-MNIST files into {raw}; {_root_fix()}"):
            raw.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=raw, prefix=".write-test")
            os.close(fd)
            os.unlink(probe)
    except (FileExistsError, NotADirectoryError) as exc:
        blocking = next(
            (p for p in (root, root / "FashionMNIST", raw) if p.exists() and not p.is_dir()),
            Path(exc.filename or raw),
        )
        raise NotADirectoryError(
            f"cannot use {root} as the data root: {blocking} is a file, not a folder; {_root_fix()}"
        ) from exc
    return raw


def prepare_fashion_mnist(
    root: str | Path | None = None, system_dir: str | Path = SYSTEM_DIR, download: bool = True
) -> Path:
    """Make sure the four raw files are in ``ROOT/FashionMNIST/raw/``; return ``ROOT``.

    :param root: the data root; by default ``$D2LMINI_DATA`` or ``~/.cache/d2lmini``.
    :param system_dir: where the Debian package keeps its gzip files.
    :param download: whether torchvision may download missing files.
    :returns: the data root, with ``~`` expanded.
    :raises NotADirectoryError: if ``root`` (or a folder inside it) is a file.
    :raises PermissionError: if files are missing and ``root`` is not writable.
    :raises FileNotFoundError: if the files are nowhere to be found, naming the ways to
        get them.
    """
    root = Path(root).expanduser() if root is not None else default_data_root()
    system_dir = Path(system_dir)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"the data root {root} is a file, not a folder; {_root_fix()}")
    raw = _raw_dir(root)
    missing = [name for name in _all_files() if not (raw / name).exists()]
    if not missing:
        return root
    if all((system_dir / f"{name}.gz").exists() for name in missing):
        _writable_raw_dir(root)
        for name in missing:
            _decompress(system_dir / f"{name}.gz", raw / name)
        return root
    if not download:
        raise _missing_data_error(root, system_dir, "downloading was not allowed")
    _writable_raw_dir(root)
    try:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except Exception as exc:  # offline, proxy, disk full ...
        raise _missing_data_error(root, system_dir, f"the download failed ({exc})") from exc
    return root


def _delete_hint(path: Path | str) -> str:
    return f"the file is wrong or corrupt; delete it ({path}) so that it is fetched again"


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (the MNIST format) into a ``uint8`` tensor.

    :raises ValueError: if the file is not an IDX file of unsigned bytes, or its size does
        not match its header (truncated); the message names the file.
    """
    data = Path(path).read_bytes()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes: {_delete_hint(path)}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated inside its header: {_delete_hint(path)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise ValueError(
            f"{path} has {len(data)} bytes but its header {tuple(shape)} needs {expected}: "
            f"{_delete_hint(path)}"
        )
    buffer = bytearray(data[header:])  # writable copy: torch wants writable memory
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(shape)


def read_fashion_mnist(
    split: str = "train", root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(images, labels)`` of a split: ``uint8`` N×28×28 and ``int64`` N.

    :param split: ``"train"`` or ``"test"``.
    :param root: the data root (see :func:`prepare_fashion_mnist`).
    :raises ValueError: if a file does not hold what its name says (images of 28×28
        pixels, or one label from 0 to 9 per image); the message names the file.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
    raw = _raw_dir(prepare_fashion_mnist(root))
    images_file, labels_file = raw / SPLIT_FILES[split][0], raw / SPLIT_FILES[split][1]
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(
            f"{images_file} should hold N images of 28x28 pixels (IDX magic 0x00000803) "
            f"but holds an array of shape {tuple(images.shape)}: {_delete_hint(images_file)}"
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{labels_file} should hold one label per image (IDX magic 0x00000801) but "
            f"holds an array of shape {tuple(labels.shape)}: {_delete_hint(labels_file)}"
        )
    if labels.numel() and int(labels.max()) >= len(LABELS):
        raise ValueError(
            f"{labels_file} holds the label {int(labels.max())}, but Fashion-MNIST labels "
            f"are 0 to {len(LABELS) - 1}: {_delete_hint(labels_file)}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{split}: {images.shape[0]} images in {images_file} but {labels.shape[0]} "
            f"labels in {labels_file}; delete both so that they are fetched again"
        )
    return images, labels.long()


def _check_batch_size(batch_size: Any) -> int:
    from .training import check_count  # lazily, like checkpoint.py: no import cycle

    check_count("batch_size", batch_size)
    return int(batch_size)


def _as_size(resize: int | Sequence[int] | None) -> tuple[int, int] | None:
    """Check ``resize`` (None, an int >= 1 or a pair of them) and return (height, width)."""
    if resize is None:
        return None

    def positive_int(value: Any) -> bool:
        return (
            isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1
        )

    if positive_int(resize):
        return (int(resize), int(resize))  # type: ignore[arg-type]
    if isinstance(resize, Sequence) and not isinstance(resize, (str, bytes)):
        if len(resize) == 2 and all(positive_int(v) for v in resize):
            return (int(resize[0]), int(resize[1]))
    raise ValueError(
        "resize must be None, an int >= 1 or a pair (height, width) of them, "
        f"got {resize!r} ({type(resize).__name__})"
    )


def _check_generator(generator: Any) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {generator!r} "
                        f"({type(generator).__name__}); e.g. "
                        "torch.Generator().manual_seed(0)")  # fmt: skip
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator (the shuffling order is drawn on "
                         f"the CPU), got one on {generator.device}")  # fmt: skip
    return generator


class FashionMNISTBatches:
    """Iterate over ``(X, y)`` mini-batches of a decoded split, like a ``DataLoader``.

    ``X`` is ``float32`` of shape (B, 1, H, W) with values in [0, 1]; ``y`` is ``int64``.
    With ``device`` set, the whole split (47 MB for training) moves there once and
    batches are made on that device.

    :param images: ``uint8`` images of shape (N, H, W).
    :param labels: labels of shape (N,).
    :param batch_size: examples per batch (the last batch may be smaller), an int >= 1.
    :param shuffle: draw a new random order on every pass.
    :param resize: an int or a pair ``(height, width)``: resize each batch with
        antialiased bilinear interpolation.
    :param device: where the split and the batches live (default: where ``images`` are).
    :param generator: a CPU ``torch.Generator`` for the shuffling order (default: the
        global generator, seeded by ``torch.manual_seed``).
    :raises TypeError: if ``batch_size`` is not an int or ``generator`` not a generator.
    :raises ValueError: for ``batch_size < 1``, an invalid ``resize``, or images and
        labels of different lengths.
    """

    #: What the batches are for, "train", "val" or "test"; :func:`~d2lmini.train`
    #: names the accuracy on its third iterator after it.
    split = "test"

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool = False,
        resize: int | Sequence[int] | None = None, device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        self.batch_size = _check_batch_size(batch_size)
        self.size = _as_size(resize)
        self.generator = _check_generator(generator)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images {tuple(images.shape)} and labels {tuple(labels.shape)} "
                "must have the same first dimension"
            )
        device = torch.device(device) if device is not None else images.device
        self.images, self.labels = images.to(device), labels.to(device)
        self.shuffle = shuffle

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
    batch_size: int, resize: int | Sequence[int] | None = None, root: str | Path | None = None,
    device: torch.device | str | None = None, generator: torch.Generator | None = None,
) -> tuple[FashionMNISTBatches, FashionMNISTBatches]:  # fmt: skip
    """Return ``(train_iter, test_iter)`` over real Fashion-MNIST (d2l's name and order).

    The training iterator reshuffles on every pass; the test iterator keeps the file
    order. Both yield ``float32`` images in [0, 1] of shape (B, 1, H, W) and ``int64``
    labels, the same pixels and labels as d2l's loader.

    Differs from d2l: the batches come from :class:`FashionMNISTBatches` (one decoded
    tensor, no ``DataLoader``, no worker processes); the files are found as
    :func:`prepare_fashion_mnist` describes (d2l downloads into ``../data``); the
    shuffling order is drawn differently (same examples, another order); and ``resize``
    uses antialiased bilinear interpolation on the float image, which is within 1/255 of
    d2l's ``transforms.Resize`` (PIL, rounded to ``uint8``).

    :param batch_size: examples per batch, an int >= 1.
    :param resize: an int or a pair ``(height, width)`` to resize the images to.
    :param root: the data root (see :func:`prepare_fashion_mnist`).
    :param device: where the data and the batches live (default: the CPU).
    :param generator: a CPU ``torch.Generator`` for a training order that does not
        depend on the global random state, e.g. ``torch.Generator().manual_seed(0)``
        (default: the global generator, seeded by ``torch.manual_seed``).
    :raises TypeError: if ``batch_size`` is not an int or ``generator`` not a generator.
    :raises ValueError: for ``batch_size < 1`` or an invalid ``resize``, before any file
        is read.
    """
    batch_size, _ = _check_batch_size(batch_size), _as_size(resize)
    generator = _check_generator(generator)
    train_images, train_labels = read_fashion_mnist("train", root)
    test_images, test_labels = read_fashion_mnist("test", root)
    train_iter = FashionMNISTBatches(
        train_images, train_labels, batch_size, shuffle=True, resize=resize, device=device,
        generator=generator,
    )  # fmt: skip
    test_iter = FashionMNISTBatches(
        test_images, test_labels, batch_size, shuffle=False, resize=resize, device=device
    )
    train_iter.split = "train"
    return train_iter, test_iter


class Splits(NamedTuple):
    """Training, validation and test iterators (unpack them like a tuple)."""

    train: FashionMNISTBatches
    val: FashionMNISTBatches
    test: FashionMNISTBatches


def load_fashion_mnist_splits(
    batch_size: int, val_size: int = 10_000, resize: int | Sequence[int] | None = None,
    root: str | Path | None = None, device: torch.device | str | None = None, seed: int = 0,
    generator: torch.Generator | None = None,
) -> Splits:  # fmt: skip
    """Return ``(train_iter, val_iter, test_iter)``: a validation split for tuning.

    ``val_size`` images are drawn at random (fixed by ``seed``, independent of the global
    RNG) from the 60,000 training images and held out; training uses the rest. Choose
    hyper-parameters on ``val_iter`` and report ``test_iter`` once, at the end.

    :param batch_size: examples per batch, an int >= 1.
    :param val_size: how many training images to hold out for validation.
    :param resize: an int or a pair ``(height, width)`` to resize the images to.
    :param root: the data root (see :func:`prepare_fashion_mnist`).
    :param device: where the data and the batches live (default: the CPU).
    :param seed: fixes which images form the validation split.
    :param generator: a CPU ``torch.Generator`` for the order of the training batches
        (default: the global generator, seeded by ``torch.manual_seed``).
    :raises TypeError: if ``batch_size`` is not an int or ``generator`` not a generator.
    :raises ValueError: for ``batch_size < 1``, an invalid ``resize`` or ``val_size``.
    """
    batch_size, _ = _check_batch_size(batch_size), _as_size(resize)
    generator = _check_generator(generator)
    images, labels = read_fashion_mnist("train", root)
    if not 0 < val_size < images.shape[0]:
        raise ValueError(f"val_size must be between 1 and {images.shape[0] - 1}, got {val_size}")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    test_images, test_labels = read_fashion_mnist("test", root)

    def batches(x: torch.Tensor, y: torch.Tensor, shuffle: bool = False) -> FashionMNISTBatches:
        gen = generator if shuffle else None  # only the training order is drawn
        return FashionMNISTBatches(x, y, batch_size, shuffle, resize, device, generator=gen)

    splits = Splits(
        batches(images[train_idx], labels[train_idx], shuffle=True),
        batches(images[val_idx], labels[val_idx]),
        batches(test_images, test_labels),
    )
    splits.train.split, splits.val.split = "train", "val"
    return splits


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


def _usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask), not all of the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def get_dataloader_workers() -> int:
    """A sane ``num_workers`` for a ``DataLoader``.

    0 unless worker processes start by ``fork``: with ``spawn`` (Windows, macOS) or
    ``forkserver`` (Linux from Python 3.14) workers re-import ``__main__``, which fails for
    a Dataset class defined in a notebook. Otherwise one less than the number of CPU
    cores this process may use (``os.sched_getaffinity``, which respects ``taskset`` and
    container CPU sets, where available), at most 4.

    Differs from d2l: d2l always returns 4, which oversubscribes a 2-core machine and
    fails for notebook-defined datasets under ``spawn``.
    """
    import multiprocessing

    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:  # not fixed yet: the platform default is listed first
        method = multiprocessing.get_all_start_methods()[0]
    if sys.platform in ("win32", "darwin") or method != "fork":
        return 0
    return max(0, min(4, _usable_cores() - 1))


def get_fashion_mnist_labels(labels: Any) -> list[str]:
    """Turn numeric labels (ints or a tensor) into their text names.

    >>> get_fashion_mnist_labels([0, 9])
    ['t-shirt', 'ankle boot']
    """
    return [LABELS[int(i)] for i in labels]
