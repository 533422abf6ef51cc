"""The rollrec file format: the specification, written once, next to the checks that enforce it.

A rollout is one ``.npz`` file (a zip archive of ``.npy`` members) that plain
``np.load(path, allow_pickle=False)`` reads; no member is ever an object array. The spec is the
docstrings of this package, each beside the code that reads or writes its part:

- `rollrec.format.v1`: the members (``obs [T, N, D]``, ``act``, ``rew``, ``done``, ...), their
  ranks, dtypes and storage (stored, 64-byte aligned, memory-mappable), and what ``meta`` holds;
- `rollrec.format.meta`: ``meta``, the JSON object every file holds, and its codec;
- `rollrec.format.v2`: what version 2 changes (members kept for some envs, for captured episode
  windows, one step in k) and its episode index;
- `rollrec.format.images`: what version 3 adds: camera images, one encoded stream per env and
  camera, in two members per camera (packets and their index);
- `rollrec.format.model`: the optional robot model's members (``model_*``);
- `rollrec.format.manifest`: a rollout recorded by several ``torch.distributed`` ranks, a
  directory of one file per rank and a ``manifest.json``;
- `rollrec.format.errors`: `RolloutFormatError`, what every reader raises for a file that breaks it.

Versions. ``meta["format_version"]`` is 1, 2 or 3 (`READ_VERSIONS`); `FORMAT_VERSION` (3) is the
newest this rollrec writes and reads. Each is a superset of the one before: a v1 file is a v2
file whose members all hold every env and every step, a v2 file a v3 file without cameras. Writers write version 1 whenever the file satisfies
it (every file without volume options, ``save_rollout`` always), the way numpy's ``.npy``
writer picks the oldest header version that holds an array, so such files stay readable by
every rollrec; only `Recorder`'s volume options (``envs=``, ``every=``, ``capture=``, and
``fields=``/``dtypes=`` when they leave v1) write version 2, and cameras (``images=``) version 3. The manifest of a sharded rollout
and the sidecar of a recording in progress (`rollrec._npz.sidecar`) have versions of their own.

This package is pure: it imports numpy and the standard library (and `rollrec._version`), never
another part of rollrec, so every layer above may use it. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "FORMAT_VERSION": "rollrec.format.meta",
    "READ_VERSIONS": "rollrec.format.meta",
    "QUAT_ORDER": "rollrec.format.meta",
    "LegacyPickleError": "rollrec.format.errors",
    "RolloutFormatError": "rollrec.format.errors",
}

__all__ = ["FORMAT_VERSION", "QUAT_ORDER", "READ_VERSIONS", "LegacyPickleError", "RolloutFormatError"]

__getattr__, __dir__ = lazy_exports("rollrec.format", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.format.errors import LegacyPickleError, RolloutFormatError
    from rollrec.format.meta import FORMAT_VERSION, QUAT_ORDER, READ_VERSIONS
