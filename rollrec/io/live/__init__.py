"""Recordings in progress, read while they are written: what ``rollrec replay`` follows.

- `follow`: `RecordingFiles`, one recording's files followed read-only (the sidecar's committed
  rows, members that move, the finished file), `LiveStatus`, and whether the writer is alive;
- `arrays`: `CommittedArray`, a member's committed rows read with pread at checked placements;
- `rollout`: `LiveRollout`, a recording as a rollout whose steps grow (`ReadableRollout`);
  `running`: the episodes still running, for the index of a format-v2 recording;
- `sharded`: `LiveShardedRollout`, the shards of a ``torch.distributed`` recording as one.

`open_live` opens either; `in_progress` says whether a path names a recording to follow.
"""

from __future__ import annotations

import os
from pathlib import Path

from rollrec.io.live.follow import LiveStatus, RecordingFiles, writer_pids
from rollrec.io.live.rollout import LiveRollout
from rollrec.io.live.sharded import LiveShardedRollout
from rollrec.io.partial import LAYOUT_SUFFIX, PARTIAL_SUFFIX, PartialRecording
from rollrec.io.sharded.manifest import read_manifest
from rollrec.io.sharded.rollout import sharded_dir


def in_progress(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a recording in progress (or one whose writer died): a file with a
    sidecar beside it, its ``.partial`` or sidecar, or a sharded directory whose manifest says
    ``recording`` and that holds a shard's partial files."""
    p = os.fspath(path)
    directory = sharded_dir(p)
    if directory is not None:
        try:
            if read_manifest(directory).state != "recording":
                return False
        except (OSError, ValueError):
            return False
        return any(Path(directory).glob("rank-*.npz" + PARTIAL_SUFFIX + "*"))
    if p.endswith((PARTIAL_SUFFIX, LAYOUT_SUFFIX)):
        return True
    return os.path.lexists(PartialRecording.of(p).sidecar_path)


def open_live(path: str | os.PathLike, *, check_crc: bool = False) -> LiveRollout | LiveShardedRollout:
    """Follow the recording of ``path``: a `LiveShardedRollout` for a sharded directory, else a `LiveRollout`."""
    directory = sharded_dir(os.fspath(path))
    if directory is not None:
        return LiveShardedRollout(directory, check_crc=check_crc)
    return LiveRollout(path, check_crc=check_crc)


__all__ = ["LiveRollout", "LiveShardedRollout", "LiveStatus", "RecordingFiles", "in_progress", "open_live",
           "writer_pids"]
