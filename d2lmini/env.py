"""Reproducibility helpers: seeding and a one-line report of the environment."""

from __future__ import annotations

import random
from importlib import metadata

import numpy as np
import torch

from .devices import try_gpu
from .profiles import current_profile

__all__ = ["env_info", "seed_everything"]


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
