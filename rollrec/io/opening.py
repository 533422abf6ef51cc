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

    Format v1 and v2 files open directly (members are memory-mapped; indexing reads). A directory
    recorded by several ranks (see `rollrec.format.manifest`), its ``manifest.json``, or
    ``run.npz`` where only the directory ``run/`` exists, opens as one `ShardedRollout`
    (`rollrec.io.sharded.rollout`).

    Args:
        path: a ``.npz`` rollout file, or a sharded rollout's directory or manifest.
        allow_pickle: convert files of the original recorder, which hold pickled objects, to the v1
            model. Unpickling a file from an untrusted source can run code: without this,
            `LegacyPickleError` says how to opt in.

    Returns:
        The opened `Rollout` (or `ShardedRollout`); use it as a context manager or call ``close``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        RecordingBusyError: a FileExistsError, for a file being recorded now ("being recorded
            (pid N on host H)").
        RolloutFormatError: an invalid file, with one line naming the file and the problem (never
            another exception for a malformed file).
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
