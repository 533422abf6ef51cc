"""`load`: open any rollout, the one place that decides how a path is read.

- a plain ``.npz`` (format v1 or v2, or a file of the original recorder): `rollrec.io.reader`;
- a directory recorded by several ranks, its ``manifest.json``, or ``run.npz`` where only the
  directory ``run/`` exists: `rollrec.io.sharded.rollout`, whose shards are plain files;
- a missing file: FileNotFoundError, saying so when an interrupted recording of it exists, and
  `RecordingBusyError` naming the recording process while one records it
  (`rollrec.io.partial.RecordingState`).
"""

from __future__ import annotations

import os

from rollrec.io.partial import PartialRecording, RecordingBusyError, RecordingState
from rollrec.io.reader import Rollout, open_file
from rollrec.io.sharded.rollout import open_sharded, sharded_dir


def load(path: str | os.PathLike, *, allow_pickle: bool = False) -> Rollout:
    """Open the rollout at ``path`` without reading its data.

    Format v1 and v2 files open directly. Files of the original recorder hold pickled objects;
    they are converted to the v1 model only when ``allow_pickle=True`` (unpickling a file from an
    untrusted source can run code), else `LegacyPickleError` says how to opt in.
    Raises FileNotFoundError for a missing file, `RecordingBusyError` (a FileExistsError) for
    one being recorded now ("being recorded (pid N on host H)"), and `RolloutFormatError` for an
    invalid one (never another exception for a malformed file).

    A directory recorded by several ranks (see `rollrec.format.manifest`), its ``manifest.json``,
    or ``run.npz`` where only the directory ``run/`` exists, opens as one `ShardedRollout`
    (`rollrec.io.sharded.rollout`).
    """
    path = os.fspath(path)
    if (directory := sharded_dir(path)) is not None:
        return open_sharded(directory)
    if not os.path.lexists(path):
        recording = PartialRecording.of(path)
        holder = recording.holder()
        if holder is not None:  # recorded (or recovered) right now: never advise recover
            raise RecordingBusyError(f"{recording.busy_message(holder)}: the file appears when it finishes", holder)
        if recording.state() is RecordingState.INTERRUPTED:
            raise FileNotFoundError(
                f"{path}: no such file, but an interrupted recording of it exists; "
                f"run `rollrec recover {recording.path}` to make it readable"
            )
    return open_file(path, allow_pickle=allow_pickle)


__all__ = ["load"]
