"""`recover`: make the committed steps of an interrupted recording readable (``rollrec recover``).

One entry point above both kinds of rollout: a file is recovered by its
`rollrec.io.partial.PartialRecording`, a directory recorded by several ranks shard by shard
(`rollrec.io.sharded.shards.recover_directory`, which asks each shard's `PartialRecording`).
"""

from __future__ import annotations

import os
from pathlib import Path

from rollrec.io.partial import PartialRecording
from rollrec.io.sharded.shards import recover_directory


def recover(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Turn the partial file of an interrupted recording into a valid rollout at ``path``.

    ``path`` is the final name (``run.npz``) or a partial one (``run.npz.partial``,
    ``run.npz.partial.json``). The rows the recorder had committed to disk are kept, after
    checking them against the CRC-32s the sidecar recorded; ``meta["recovered"]`` is set. A
    recording killed after its final rename is only tidied (its sidecar removed). Returns the
    path. Leaves no temporary file behind, also when it fails.

    Raises FileNotFoundError when there is nothing to recover, and `RolloutFormatError` when
    the sidecar is unusable or the committed rows do not match their CRCs.

    A recording in progress, or one another process recovers right now, is never touched:
    `RecordingBusyError` names the process ("being recorded (pid N on host H)"). ``force``
    recovers one whose owner cannot be asked (made on another host, on a file system without
    locks: see `rollrec.io.lease`); it never overrides a held lock.

    A directory recorded by several ranks is recovered shard by shard and its manifest updated
    (`rollrec.io.sharded.shards.recover_directory`); ranks still recording are left alone and
    named.
    """
    if os.path.isdir(path):
        return recover_directory(path, force=force)
    return PartialRecording.of(path).recover(force=force)


__all__ = ["recover"]
