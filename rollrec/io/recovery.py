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

    The rows the recorder had committed to disk are kept, after checking them against the CRC-32s
    the sidecar recorded; ``meta["recovered"]`` is set. A recording killed after its final rename
    is only tidied (its sidecar removed). Leaves no temporary file behind, also when it fails. A
    recording in progress, or one another process recovers right now, is never touched. A
    directory recorded by several ranks is recovered shard by shard and its manifest updated
    (`rollrec.io.sharded.shards.recover_directory`); ranks still recording are left alone and
    named.

    Args:
        path: the final name (``run.npz``), a partial one (``run.npz.partial``,
            ``run.npz.partial.json``), or a sharded rollout's directory.
        force: recover a recording whose owner cannot be asked (made on another host, on a file
            system without locks: see `rollrec.io.lease`); it never overrides a held lock.

    Returns:
        The path of the finished rollout.

    Raises:
        FileNotFoundError: there is nothing to recover.
        RecordingBusyError: the recording is in progress or being recovered by another process;
            the message names it ("being recorded (pid N on host H)").
        RolloutFormatError: the sidecar is unusable, or the committed rows do not match their CRCs.
    """
    if os.path.isdir(path):
        return recover_directory(path, force=force)
    return PartialRecording.of(path).recover(force=force)


__all__ = ["recover"]
