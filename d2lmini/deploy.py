"""Part VI's deployment helpers: one trained network for every chapter, and its export.

The chapters of Part VI each need the same trained LeNet. :func:`trained_lenet` trains
it with a short recipe, or loads it from a cache in ``$D2LMINI_DATA/models`` keyed by
the recipe, so the chapters can run in any order and in parallel. :func:`export_onnx`
writes the ONNX file and, next to it, the preprocessing the network was trained with.
``onnx`` and ``onnxscript`` load only when :func:`export_onnx` is called.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)

__all__ = ["export_onnx", "lenet_cache_path", "preprocessing_spec", "trained_lenet"]

#: Bump when the network or the training code changes, so old caches are not reused.
RECIPE_VERSION = 1


def _recipe(epochs: int, lr: float, batch_size: int, max_batches: int | None,
            seed: int) -> dict[str, Any]:  # fmt: skip
    for name, value in [("epochs", epochs), ("batch_size", batch_size)]:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if max_batches is not None and (
        isinstance(max_batches, bool) or not isinstance(max_batches, numbers.Integral)
        or max_batches < 1
    ):  # fmt: skip
        raise ValueError(f"max_batches must be an int >= 1 or None, got {max_batches!r}")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    return dict(model="lenet-relu-maxpool", version=RECIPE_VERSION, epochs=int(epochs),
                lr=float(lr), batch_size=int(batch_size), seed=int(seed),
                max_batches=None if max_batches is None else int(max_batches))  # fmt: skip


def lenet_cache_path(
    epochs: int, lr: float, batch_size: int, max_batches: int | None = None,
    seed: int = 0, cache_dir: str | Path | None = None,
) -> Path:  # fmt: skip
    """The cache file :func:`trained_lenet` uses for this recipe (it may not exist yet).

    The name holds a hash of the recipe, so two recipes never share a file.
    """
    from .data import default_data_root

    recipe = _recipe(epochs, lr, batch_size, max_batches, seed)
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    folder = default_data_root() / "models" if cache_dir is None else Path(cache_dir).expanduser()
    return folder / f"lenet-{key}.ckpt"


def _new_lenet() -> nn.Sequential:
    from .models import lenet

    return lenet(nn.ReLU, nn.MaxPool2d)


def _train(recipe: dict[str, Any], root: str | Path | None) -> tuple[nn.Sequential, float, str]:
    """Train LeNet with ``recipe``: the network (CPU, eval mode), seconds and device."""
    from .data import load_data_fashion_mnist
    from .devices import try_gpu
    from .env import seed_everything
    from .recipes import Recipe, init_cnn
    from .training import train

    seed_everything(recipe["seed"])
    net = _new_lenet()
    net.apply(init_cnn)
    generator = torch.Generator().manual_seed(recipe["seed"])
    device = try_gpu()
    train_iter, test_iter = load_data_fashion_mnist(
        recipe["batch_size"], root=root, device=device, generator=generator
    )
    sgd = Recipe(recipe["lr"], "one_cycle", momentum=0.9, weight_decay=5e-4)
    history = train(
        net, train_iter, test_iter, recipe["epochs"], device=device, recipe=sgd,
        max_batches=recipe["max_batches"], display=False,
    )  # fmt: skip
    return net.cpu().eval(), history.train_seconds, history.device


def trained_lenet(
    epochs: int, lr: float, batch_size: int, max_batches: int | None = None,
    seed: int = 0, cache_dir: str | Path | None = None, root: str | Path | None = None,
) -> nn.Sequential:  # fmt: skip
    """LeNet (ReLU, max pooling) trained on Fashion-MNIST, on the CPU in eval mode.

    The recipe is Part IV's: Xavier initialisation, SGD with momentum and a one-cycle
    schedule (a :class:`~d2lmini.Recipe`) with peak rate ``lr``, for ``epochs`` epochs
    of at most ``max_batches`` batches, the data order fixed by ``seed``. The first call
    trains (on :func:`~d2lmini.try_gpu`) and saves the weights atomically, with a
    checksum, to :func:`lenet_cache_path`; later calls with the same recipe load them.
    It prints one line saying which it did.

    :param cache_dir: where the cache lives (default ``$D2LMINI_DATA/models``).
    :param root: the Fashion-MNIST root (see :func:`~d2lmini.prepare_fashion_mnist`).
    :raises ValueError: for an invalid recipe.
    :raises CheckpointError: if the cache file is damaged (the message says to delete it).
    """
    path = lenet_cache_path(epochs, lr, batch_size, max_batches, seed, cache_dir)
    recipe = _recipe(epochs, lr, batch_size, max_batches, seed)
    if path.exists():
        net = _new_lenet()
        state = load_checkpoint(path, map_location="cpu")
        if state.get("recipe") != recipe:
            raise CheckpointError(f"{path} holds another recipe; delete it to retrain")
        net.load_state_dict(state["model"])
        print(f"loaded the trained LeNet from the cache ({path.name})")
        return net.eval()
    rng = capture_rng_state(), random.getstate(), np.random.get_state()
    try:  # training seeds every generator: give the caller its own states back
        net, seconds, device = _train(recipe, root)
    finally:
        restore_rng_state(rng[0])
        random.setstate(rng[1])
        np.random.set_state(rng[2])
    save_checkpoint(path, {"recipe": recipe, "model": net.state_dict()})
    print(f"trained LeNet in {seconds:.0f} s on {device} and cached it ({path.name})")
    return net


def preprocessing_spec() -> dict[str, Any]:
    """What the network expects, as JSON-ready data: how to turn a PNG into its input.

    It describes the training pipeline of :class:`~d2lmini.FashionMNISTBatches`:
    8-bit grayscale images of 28×28 pixels, divided by 255 into float32 values in
    [0, 1], in the layout (batch, 1, 28, 28); and the ten class names in label order.
    A server reads it from the file :func:`export_onnx` writes instead of retyping it.
    """
    from .data import LABELS

    return {
        "input_name": "image", "output_name": "logits", "image_mode": "L",
        "height": 28, "width": 28, "divide_by": 255.0, "dtype": "float32",
        "layout": "NCHW", "labels": list(LABELS),
    }  # fmt: skip


def export_onnx(net: nn.Module, path: str | Path, max_batch: int = 4096) -> Path:
    """Export ``net`` to ONNX with a dynamic batch size and save its preprocessing.

    Runs ``torch.onnx.export(..., dynamo=True)`` on a (2, 1, 28, 28) example with the
    batch dimension marked dynamic (``torch.export.Dim``, 1 to ``max_batch``), the input
    named ``"image"`` and the output ``"logits"``, checks the file with
    ``onnx.checker``, and writes :func:`preprocessing_spec` as JSON next to it (same
    name, suffix ``.json``). ``net`` should be in eval mode on the CPU.

    :returns: the path of the ONNX file.
    """
    import onnx

    path = Path(path)
    spec = preprocessing_spec()
    example = torch.zeros(2, 1, spec["height"], spec["width"])
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    program = torch.onnx.export(
        net, (example,), dynamo=True, input_names=[spec["input_name"]],
        output_names=[spec["output_name"]], dynamic_shapes=({0: batch},),
        verbose=False,
    )  # fmt: skip
    if program is None:  # only the TorchScript exporter (dynamo=False) returns None
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    path.with_suffix(".json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path
