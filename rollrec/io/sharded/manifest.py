"""Reading and writing a sharded rollout's ``manifest.json`` (its specification: `rollrec.format.manifest`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rollrec._npz.files import replace_small_file
from rollrec.format.errors import RolloutFormatError
from rollrec.format.manifest import MANIFEST_NAME, Manifest


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """The manifest of the sharded rollout in ``directory``.

    Raises FileNotFoundError when there is none and `RolloutFormatError` when it is invalid.
    """
    path = Path(directory) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory}: no {MANIFEST_NAME}; `rollrec recover {directory}` rebuilds it from the shards") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RolloutFormatError(f"{path}: not valid JSON ({exc})") from None
    return Manifest.from_json(doc, str(path))


def write_manifest(directory: str | os.PathLike, manifest: Manifest) -> Path:
    """Write ``manifest`` to ``directory/manifest.json`` atomically (`rollrec._npz.files.replace_small_file`:
    an exclusive temporary file named for this process, fsync, rename, directory fsync)."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    data = json.dumps(manifest.to_json(), indent=1).encode()
    replace_small_file(path, data, tmp=directory / f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    return path


__all__ = ["read_manifest", "write_manifest"]
