"""The rollout format (v1), its writer, the lazy reader and legacy import (videos: `rollrec.video`)."""

from rollrec.io.errors import LegacyPickleError, RolloutFormatError
from rollrec.io.format import FORMAT_VERSION, QUAT_ORDER
from rollrec.io.reader import Rollout, load
from rollrec.io.writer import recover, save_rollout

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
