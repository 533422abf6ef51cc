"""Rollouts on disk: opening, saving, recovering (the format itself is `rollrec.format`).

- opening: `opening.load` decides how a path is read, once, above both readers: a file
  (`reader`: `Rollout`; its views in `env_array` and `volume_view`; its episodes in
  `episode_index`; camera frames in `images`; legacy files in `legacy`) or a directory recorded by several ranks
  (`sharded`: `ShardedRollout`, its shard files and manifest);
- writing: `save.save_rollout` (a rollout held in memory), and `partial.PartialRecording`, the one
  owner of the crash protocol (the ``.partial`` data file, its JSON sidecar, the model kept
  beside it, naming, finishing, recovery) that `rollrec.engine.Recorder` asks;
  `recovery.recover` (``rollrec recover``) for a file or a sharded directory;
- the model: `model` (a `rollrec.model.RobotModel` as members and back);
- episodes and figures: `segments` (the one segmentation kernel from ``done``/``truncated``/
  ``rew``), `summary` (what ``rollrec info`` shows, as plain data).

Imports: numpy and the layers below, `rollrec.format`, `rollrec._npz` (the npz machinery),
`rollrec.model`, `rollrec.media` (the cameras' decoders, when a frame is read); never the engine, adapters, viewer, video or CLI. Names are imported on first
use, so importing one module of this package does not load the reader and the writer.
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
    "load": "rollrec.io.opening",
    "recover": "rollrec.io.recovery",
    "save_rollout": "rollrec.io.save",
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
    from rollrec.io.opening import load
    from rollrec.io.reader import Rollout
    from rollrec.io.recovery import recover
    from rollrec.io.save import save_rollout
