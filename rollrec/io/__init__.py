"""Rollouts on disk: opening, saving, recovering (the format itself: `rollrec.format`).

Names are imported on first use, so importing one module of this package (or of the format
below it) does not load the reader and the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "FORMAT_VERSION": "rollrec.format.meta",
    "QUAT_ORDER": "rollrec.format.meta",
    "LegacyPickleError": "rollrec.format.errors",
    "RolloutFormatError": "rollrec.format.errors",
    "Rollout": "rollrec.io.reader",
    "load": "rollrec.io.reader",
    "recover": "rollrec.io.partial",
    "save_rollout": "rollrec.io.partial",
}

__all__ = [
    "FORMAT_VERSION",
    "QUAT_ORDER",
    "LegacyPickleError",
    "Rollout",
    "RolloutFormatError",
    "load",
    "recover",
    "save_rollout",
]

__getattr__, __dir__ = lazy_exports("rollrec.io", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.format.errors import LegacyPickleError, RolloutFormatError
    from rollrec.format.meta import FORMAT_VERSION, QUAT_ORDER
    from rollrec.io.partial import recover, save_rollout
    from rollrec.io.reader import Rollout, load
