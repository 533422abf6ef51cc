"""rollrec: record rollouts of massively parallel simulations, replay them, render them."""

__version__ = "0.1.0"

from rollrec.engine import Recorder  # noqa: E402
from rollrec.engine.policy import make_policy  # noqa: E402
from rollrec.engine.rollout import RolloutRecorder  # noqa: E402
from rollrec.io import (  # noqa: E402
    FORMAT_VERSION,
    LegacyPickleError,
    Rollout,
    RolloutFormatError,
    load,
    recover,
    save_rollout,
)

__all__ = [
    "FORMAT_VERSION",
    "LegacyPickleError",
    "Recorder",
    "Rollout",
    "RolloutFormatError",
    "RolloutRecorder",
    "__version__",
    "load",
    "make_policy",
    "recover",
    "save_rollout",
]
