"""The lowest bounds of requirements.txt as pins: what `make test-oldest` installs.

    python tools/oldest_requirements.py [requirements.txt] > oldest.txt

Each ``name>=X.Y`` becomes ``name==X.Y.*``: the oldest release series the bound allows,
with its newest bug-fix release (``torch>=2.14`` -> ``torch==2.14.*``).
``-r`` includes (the book's tools) and packages without a lower bound are left out, and
so are the browser-test tools (``SKIP``): `make test-oldest` runs the unit tests and the
notebooks, not the book build. A bound that is not ``>=`` is an error, so that a new
kind of requirement is noticed here instead of being silently dropped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"selenium"}  # tests/test_browser.py only
BOUND = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9.]*)\s*$")


def oldest_pins(text: str) -> list[str]:
    """``name==X.Y.*`` for every ``name>=X.Y`` line of a requirements file."""
    pins = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = BOUND.match(line)
        if match is None:
            raise ValueError(f"not a plain lower bound (name>=X.Y): {raw!r}")
        name, version = match.groups()
        if name.lower() not in SKIP:
            pins.append(f"{name}=={version.rstrip('.')}.*")
    return pins


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "requirements.txt"
    print("\n".join(oldest_pins(path.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
