"""Sharded rollouts on disk: one file per ``torch.distributed`` rank and a ``manifest.json``.

`rollout` opens the directory as one env axis (`ShardedRollout`), `shards` finds which shard
files are present and recovers interrupted ones (each through its
`rollrec.io.partial.PartialRecording`), `manifest` reads and writes the manifest atomically.
The layout and the manifest's specification are `rollrec.format.manifest`'s. Imports: the rest
of `rollrec.io` below `rollrec.io.opening`, `rollrec.format`, `rollrec._npz`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "MissingEnvsError": "rollrec.io.sharded.rollout",
    "MissingEnvsWarning": "rollrec.io.sharded.rollout",
    "ShardedRollout": "rollrec.io.sharded.rollout",
}

__all__ = ["MissingEnvsError", "MissingEnvsWarning", "ShardedRollout"]

__getattr__, __dir__ = lazy_exports("rollrec.io.sharded", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.io.sharded.rollout import MissingEnvsError, MissingEnvsWarning, ShardedRollout
