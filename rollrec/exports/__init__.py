"""Exports: a rollout in another tool's format, for datasets (imitation, distillation, VLA
fine-tuning) and for sharing what an eval showed.

- `api.export` (``rollrec.export(...)``, ``rollrec export``): the entry point;
- one module per target: `to_lerobot` (LeRobot dataset v3.0: parquet with pyarrow, videos with
  PyAV), `to_robomimic` (robomimic's HDF5 with h5py), `to_rerun` (a Rerun ``.rrd``), `to_viser`
  (one episode as a viser scene recording, ``.viser`` or a self-contained ``.html``);
- what they share: `selection` (which episodes and rows, from the rollout's episode index),
  `reading` (members read in bounded blocks), `fields` (members and their column names),
  `cameras` (the one function that reads camera frames), `stats` (LeRobot's feature stats),
  `video` (episodes as MP4 files), `staging` (temporary name, renamed when complete), `deps`
  (optional packages, imported when used, with an install hint).

Rollouts are read only through `rollrec.io.protocol.ReadableRollout`, so plain, v2 and sharded
rollouts all export. Layer: with the viewer and the video (the viser export draws with the
viewer's robot); imports nothing above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "TARGETS": "rollrec.exports.api",
    "export": "rollrec.exports.api",
    "MissingExtraError": "rollrec.exports.deps",
}

__all__ = ["TARGETS", "MissingExtraError", "export"]

__getattr__, __dir__ = lazy_exports("rollrec.exports", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.exports.api import TARGETS, export
    from rollrec.exports.deps import MissingExtraError
