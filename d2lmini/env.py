"""Reproducibility helpers: seeding and a one-line report of the environment."""

from __future__ import annotations

import json
import math
import random
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .devices import try_gpu
from .profiles import current_profile

__all__ = ["check_study", "env_info", "read_study", "seed_everything"]


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def env_info() -> str:
    """Print (and return) the versions, device, profile and thread count.

    Every notebook calls this first, so its stored outputs say where they came from.
    """
    device = try_gpu()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    line = (
        f"torch {torch.__version__.split('+')[0]} | "
        f"torchvision {_version('torchvision').split('+')[0]} | "
        f"device {name} | profile {current_profile()} | "
        f"threads {torch.get_num_threads()}"
    )
    print(line)
    return line


def read_study(name: str, start: str | Path | None = None) -> dict[str, Any]:
    """The report ``bench/NAME.json`` of a committed study, found by walking up from
    ``start`` (default: the working directory) to the repository's ``bench/`` folder.

    :raises FileNotFoundError: naming the script that writes it, when it is missing.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        path = folder / "bench" / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
    raise FileNotFoundError(
        f"bench/{name}.json not found above {here}: run `python bench/{name}.py` in a "
        f"clone of the book's repository (it writes bench/{name}.json and .md)"
    )


def check_study(
    study: dict[str, Any], hp: Any = None, profiles: tuple[str, ...] = ("laptop",)
) -> float:
    """Print what a Part IV study measured for one network, check its claims, return the
    mean test accuracy. ``study``: ``grid`` (peak rate: validation accuracy, ``None`` if
    it diverged), the chosen ``lr``, ``test_acc`` of the seeds and the ``target``. With
    settings ``hp`` of one of ``profiles`` (those that train the study's configuration),
    also check that they use the chosen rate and ask for the worst seed less 0.01,
    rounded down to three decimals.

    :raises ValueError: unless the chosen rate is the best of the grid and inside it,
        the seeds meet the target on average with the worst within 0.01 of it, and
        ``hp`` follows the study.
    """
    grid, lr, accs, target = study["grid"], study["lr"], study["test_acc"], study["target"]
    mean = sum(accs) / len(accs)
    print(f"chosen peak rate {lr} of {list(grid)}\ntest accuracy "
          f"{', '.join(map(str, accs))}: mean {mean:.4f}, target {target}")  # fmt: skip
    if max(grid, key=lambda rate: grid[rate] or 0) != lr or not min(grid) < lr < max(grid):
        raise ValueError(f"the chosen rate {lr} is not the best of {grid}, inside it")
    if mean < target or min(accs) < target - 0.01:
        raise ValueError(f"test accuracies {accs} miss the target {target}")
    threshold = math.floor(round((min(accs) - 0.01) * 1000, 6)) / 1000
    if hp is not None and hp.profile in profiles and (hp.lr, hp.min_acc) != (lr, threshold):
        raise ValueError(f"{hp.profile} must train at lr={lr} and ask for min_acc={threshold}, "
                         f"got lr={hp.lr}, min_acc={hp.min_acc}")  # fmt: skip
    return mean
