"""d2lmini: the small shared toolkit of the Hands-on PyTorch book.

Import it as ``import d2lmini``. Heavy dependencies (matplotlib, torchvision, tqdm)
load only when a function that needs them is called.
"""

import types as _types

from .checkpoint import *  # noqa: F403
from .cnn import *  # noqa: F403
from .data import *  # noqa: F403
from .deploy import *  # noqa: F403
from .devices import *  # noqa: F403
from .distributed import *  # noqa: F403
from .env import *  # noqa: F403
from .models import *  # noqa: F403
from .performance import *  # noqa: F403
from .plotting import *  # noqa: F403
from .profiles import *  # noqa: F403
from .recipes import *  # noqa: F403
from .scratch import *  # noqa: F403
from .serving import *  # noqa: F403
from .timer import *  # noqa: F403
from .training import *  # noqa: F403

__version__ = "0.1.0"
#: Every public name: what the modules export in their own ``__all__``.
__all__ = sorted(
    name
    for name, value in globals().items()
    if not name.startswith("_") and not isinstance(value, _types.ModuleType)
)
