"""Profiles: one switch that scales every notebook's work to the machine.

The environment variable ``D2LMINI_PROFILE`` selects one of

* ``full`` -- the book's reference settings (default when CUDA is available);
* ``laptop`` -- lighter settings, each notebook at most ~5 minutes on 2 CPU cores
  (default otherwise);
* ``smoke`` -- the smallest settings, used by the test suite (each notebook ≤ 60 s).

A notebook states what it runs in one visible cell::

    hp = d2lmini.choose(full=dict(epochs=10, lr=0.9),
                        laptop=dict(epochs=3),
                        smoke=dict(epochs=1))

``full`` lists every setting; ``laptop`` and ``smoke`` override some of them.
The model code is the same in every profile: only these numbers change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch

__all__ = ["Settings", "choose", "current_profile"]

PROFILE_ENV = "D2LMINI_PROFILE"
PROFILES = ("full", "laptop", "smoke")


def current_profile() -> str:
    """Return the active profile: ``$D2LMINI_PROFILE`` or the machine's default."""
    name = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not name:
        return "full" if torch.cuda.is_available() else "laptop"
    if name not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={name!r} is not a profile; choose one of {', '.join(PROFILES)}"
        )
    return name


class Settings(Mapping[str, Any]):
    """Read-only settings with attribute access (``hp.epochs``); ``print(hp)`` shows the
    profile and one setting per line."""

    def __init__(self, profile: str, values: Mapping[str, Any]) -> None:
        self._profile, self._values = profile, dict(values)

    @property
    def profile(self) -> str:
        """The profile these settings were chosen for."""
        return self._profile

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        if key not in self._values:
            raise AttributeError(f"no setting {key!r}; settings are {sorted(self._values)}")
        return self._values[key]

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        width = max(map(len, self._values), default=0)
        rows = [f"  {k:{width}s}  {v!r}" for k, v in self._values.items()]
        return "\n".join([f"profile {self._profile}", *rows])


def choose(
    full: Mapping[str, Any], laptop: Mapping[str, Any] | None = None,
    smoke: Mapping[str, Any] | None = None, profile: str | None = None,
) -> Settings:  # fmt: skip
    """Return the settings of the active profile.

    ``full`` holds every setting. ``laptop`` overrides some of them; ``smoke``
    overrides the laptop settings. ``profile`` forces a profile (mainly for tests).
    """
    name = profile if profile is not None else current_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    for layer_name, layer in [("laptop", laptop or {}), ("smoke", smoke or {})]:
        unknown = sorted(set(layer) - set(full))
        if unknown:
            raise KeyError(
                f"{layer_name} sets {unknown}, which full does not define; "
                "list every setting in full"
            )
    values = dict(full)
    if name in ("laptop", "smoke"):
        values.update(laptop or {})
    if name == "smoke":
        values.update(smoke or {})
    return Settings(name, values)
