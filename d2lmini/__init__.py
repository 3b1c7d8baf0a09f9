"""d2lmini: the small shared toolkit of the Hands-on PyTorch book.

Import it as ``import d2lmini``. Heavy dependencies (matplotlib, torchvision, tqdm)
load only when a function that needs them is called.
"""

from . import (
    checkpoint,
    cnn,
    data,
    deploy,
    devices,
    distributed,
    env,
    models,
    performance,
    plotting,
    profiles,
    recipes,
    scratch,
    serving,
    timer,
    training,
)
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
#: Every public name; each module lists its own in its ``__all__``.
__all__ = sorted(
    checkpoint.__all__
    + cnn.__all__
    + data.__all__
    + deploy.__all__
    + devices.__all__
    + distributed.__all__
    + env.__all__
    + models.__all__
    + performance.__all__
    + plotting.__all__
    + profiles.__all__
    + recipes.__all__
    + scratch.__all__
    + serving.__all__
    + timer.__all__
    + training.__all__
)
