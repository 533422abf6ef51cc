"""rollrec: record rollouts of massively parallel simulations, replay them, render them."""

__version__ = "0.1.0"

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
    "Rollout",
    "RolloutFormatError",
    "__version__",
    "load",
    "recover",
    "save_rollout",
]
