"""Sharded rollouts: the directory layout and the manifest's specification, and its checks.

A rollout recorded by W ranks of ``torch.distributed`` is a directory::

    run/
      manifest.json              this document: which file holds which envs
      rank-00000.npz             rank 0's envs: a complete format-v1 file (see `rollrec.format.v1`)
      rank-00001.npz             rank 1's envs
      rank-00002.npz.partial     a rank that has not finished (or died): data so far, and its
      rank-00002.npz.partial.json  sidecar; ``rollrec recover run/`` makes it a shard file

Every shard is an ordinary format-v1 file of that rank's ``n_r`` envs; the rollout's env axis is
the concatenation of the shards' env axes at their offsets: global env ``g`` is local env
``g - env_offset`` of the shard whose ``[env_offset, env_offset + num_envs)`` holds it. The
shards' ranges cover ``0..N-1`` exactly once (no overlap, no gap).

``manifest.json`` is a JSON object:

===================  ==============  =================================================================
key                  type            meaning
===================  ==============  =================================================================
``format``           str             ``"rollrec-sharded"``
``format_version``   int             1
``run_id``           str             random hex id of the recording; every shard's
                                     ``meta["shard"]["run_id"]`` holds the same value
``state``            str             ``"recording"`` (written when the ranks started), ``"complete"``
                                     (every shard finished) or ``"incomplete"`` (a shard is missing
                                     or recovered: see ``shards``)
``world_size``       int             W, the number of shards
``num_envs``         int             N, the total number of envs
``num_steps``        int or null     T, the steps of the longest shard (null while recording)
``dt``               float           seconds of simulated time per step
``env_name``         str             as in each shard's ``meta``
``fields``           object or null  ``{name: {"dtype": "<f4", "shape": [D, ...]}}``: each per-step
                                     member's dtype and shape after ``[T, N]`` (null while recording)
``shards``           list            W objects in rank order, below
``created``          str             ISO 8601, UTC
``rollrec_version``  str
===================  ==============  =================================================================

Each entry of ``shards``: ``rank`` (int), ``file`` (path of the shard file relative to the
directory, ``/``-separated names ending in ``.npz``, never absolute, never ``.`` or ``..``, never
the manifest itself; readers also refuse one that resolves outside the directory through a
symlink), ``env_offset`` and
``num_envs`` (its global env range), ``num_steps`` (int or null: steps it holds), ``status``
(``"recording"``, ``"complete"``, ``"recovered"``: finished by ``rollrec recover`` with the steps
flushed before its rank died, or ``"missing"``: no readable file), ``host`` (the machine that
wrote it, or null) and ``note`` (why it is missing or short, or null).

The manifest is written twice, each time atomically (temporary file, fsync, rename, directory
fsync: `rollrec.io.sharded.manifest`): by rank 0
when the ranks start (``state: "recording"``, the env layout), and by rank 0 once every rank has
closed, from the facts the ranks gathered with ``torch.distributed``. Readers trust the files
more than the statuses: a shard is read when its file exists and its ``meta["shard"]`` matches
(run id, rank, env range), whatever its status says; ``rollrec recover`` brings the statuses up
to date. Each shard's ``meta["shard"]`` also holds the whole layout, so a lost manifest can be
rebuilt from any shard (``rollrec recover``).
"""

from __future__ import annotations

import datetime as _dt
import os
import posixpath
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rollrec._version import __version__
from rollrec.format.errors import RolloutFormatError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "rollrec-sharded"
MANIFEST_VERSION = 1
STATES = ("recording", "complete", "incomplete")
STATUSES = ("recording", "complete", "recovered", "missing")


def shard_file_name(rank: int) -> str:
    """The file rank ``rank`` writes inside the rollout directory: ``rank-00003.npz``."""
    return f"rank-{rank:05d}.npz"


def rollout_dir(path: str | os.PathLike) -> Path:
    """The directory a sharded recording of ``path`` writes: ``run.npz`` -> ``run``, ``run`` -> ``run``."""
    p = Path(path)
    return p.with_suffix("") if p.suffix == ".npz" else p


def check_layout(counts: Sequence[int], offsets: Sequence[int | None]) -> list[int]:
    """Global env offsets of W shards of ``counts`` envs; returns one offset per rank.

    ``offsets`` all None: shards follow rank order (rank 0 first). All given: each shard starts
    there, and together the shards must cover ``0..N-1`` exactly once. Raises ValueError naming
    the ranks for a mix of given and missing offsets, a negative value, an overlap or a gap.
    """
    given = [o is not None for o in offsets]
    if any(c < 1 for c in counts):
        bad = next(r for r, c in enumerate(counts) if c < 1)
        raise ValueError(f"rank {bad}: num_envs must be at least 1, got {counts[bad]}")
    if not any(given):
        starts, at = [], 0
        for c in counts:
            starts.append(at)
            at += c
        return starts
    if not all(given):
        missing = [r for r, g in enumerate(given) if not g]
        raise ValueError(f"env_offset was passed on some ranks but not on ranks {missing}: pass it on every rank or none")
    starts = [int(o) for o in offsets]  # type: ignore[arg-type]
    at, prev = 0, None  # the ranks before r (by offset) tile 0..at-1 exactly; prev ends at `at`
    for r in sorted(range(len(counts)), key=lambda r: starts[r]):
        a, b = starts[r], starts[r] + counts[r]
        if a < 0:
            raise ValueError(f"rank {r}: env_offset must be >= 0, got {a}")
        if a < at:
            raise ValueError(
                f"env ranges overlap: rank {r} has envs {a}..{b - 1}, rank {prev} has "
                f"{starts[prev]}..{starts[prev] + counts[prev] - 1}"
            )
        if a > at:
            raise ValueError(f"env ranges leave a gap: no rank has envs {at}..{a - 1} (rank {r} starts at {a})")
        at, prev = b, r
    return starts


@dataclass
class ShardEntry:
    """One shard of a manifest (see the module docstring)."""

    rank: int
    file: str
    env_offset: int
    num_envs: int
    num_steps: int | None = None
    status: str = "recording"
    host: str | None = None
    note: str | None = None

    @property
    def env_stop(self) -> int:
        return self.env_offset + self.num_envs


@dataclass
class Manifest:
    """A sharded rollout's ``manifest.json`` (see the module docstring)."""

    run_id: str
    world_size: int
    num_envs: int
    dt: float
    shards: list[ShardEntry]
    env_name: str = "unknown"
    state: str = "recording"
    num_steps: int | None = None
    fields: dict[str, dict[str, Any]] | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    rollrec_version: str = field(default_factory=lambda: _version())

    def to_json(self) -> dict[str, Any]:
        """The document, keys in the order of the spec."""
        fields = asdict(self)
        order = ("run_id", "state", "world_size", "num_envs", "num_steps", "dt", "env_name", "fields", "shards",
                 "created", "rollrec_version")
        return {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, **{k: fields[k] for k in order}}

    @classmethod
    def from_json(cls, doc: Any, where: str) -> Manifest:
        """Check ``doc`` against the spec; raises `RolloutFormatError` naming ``where`` and the key."""
        if not isinstance(doc, dict):
            raise RolloutFormatError(f"{where}: a manifest must be a JSON object")
        if doc.get("format") != MANIFEST_FORMAT:
            raise RolloutFormatError(f"{where}: 'format' must be {MANIFEST_FORMAT!r}, got {doc.get('format')!r}")
        if doc.get("format_version") != MANIFEST_VERSION:
            raise RolloutFormatError(
                f"{where}: unknown manifest version {doc.get('format_version')!r}; this rollrec reads "
                f"version {MANIFEST_VERSION}. Upgrade rollrec to read it."
            )
        _want(doc, "run_id", str, where)
        _want(doc, "world_size", int, where)
        _want(doc, "num_envs", int, where)
        _want(doc, "dt", (int, float), where)
        _want(doc, "shards", list, where)
        if doc.get("state", "recording") not in STATES:
            raise RolloutFormatError(f"{where}: 'state' must be one of {STATES}, got {doc.get('state')!r}")
        if doc.get("num_steps") is not None:
            _want(doc, "num_steps", int, where)
        if doc.get("fields") is not None:
            _want(doc, "fields", dict, where)
        shards = [_entry(s, i, where) for i, s in enumerate(doc["shards"])]
        if len(shards) != doc["world_size"]:
            raise RolloutFormatError(f"{where}: 'world_size' is {doc['world_size']} but 'shards' lists {len(shards)}")
        try:
            check_layout([s.num_envs for s in shards], [s.env_offset for s in shards])
        except ValueError as exc:
            raise RolloutFormatError(f"{where}: {exc}") from None
        total = sum(s.num_envs for s in shards)
        if total != doc["num_envs"]:
            raise RolloutFormatError(f"{where}: 'num_envs' is {doc['num_envs']} but the shards hold {total} envs")
        if total > MAX_ENVS:
            raise RolloutFormatError(f"{where}: {total:,} envs, more than any recording holds (at most {MAX_ENVS:,}); "
                                     "not a manifest rollrec wrote")
        known = {f.name for f in cls.__dataclass_fields__.values()}  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in doc.items() if k in known and k != "shards"}, shards=shards)


def _version() -> str:
    return __version__


#: Every integer of a manifest is a count or an index: at least 0 and below this (numpy's int64 holds it).
MAX_INT = 2**62
#: Most envs a sharded rollout may hold in all (a missing shard's envs read as fill values, so a
#: manifest cannot make a reader allocate more than this per step).
MAX_ENVS = 1 << 26


def _want(doc: dict, key: str, kind: Any, where: str) -> None:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RolloutFormatError(f"{where}: {key!r} is missing or not a {getattr(kind, '__name__', 'number')}: "
                                 f"{value!r:.80}")
    if isinstance(value, int) and not 0 <= value < MAX_INT:
        raise RolloutFormatError(f"{where}: {key!r} is {value:.3g}, outside 0..2**62")


def _entry(doc: Any, i: int, where: str) -> ShardEntry:
    here = f"{where}: shards[{i}]"
    if not isinstance(doc, dict):
        raise RolloutFormatError(f"{here} must be a JSON object")
    for key in ("rank", "env_offset", "num_envs"):
        _want(doc, key, int, here)
    _want(doc, "file", str, here)
    if doc["rank"] != i:
        raise RolloutFormatError(f"{here}: shards must be in rank order; this one says rank {doc['rank']}")
    file = doc["file"]
    norm = posixpath.normpath(file)
    parts = file.split("/")
    if (not file or "\\" in file or "\0" in file or posixpath.isabs(file) or norm.startswith("..") or norm != file
            or any(p in ("", ".", "..") for p in parts) or not file.endswith(".npz") or file == MANIFEST_NAME):
        raise RolloutFormatError(f"{here}: 'file' must be a plain relative path of a .npz inside the directory, "
                                 f"got {file!r:.200}")
    if doc.get("status", "recording") not in STATUSES:
        raise RolloutFormatError(f"{here}: 'status' must be one of {STATUSES}, got {doc.get('status')!r}")
    if doc.get("num_steps") is not None:
        _want(doc, "num_steps", int, here)
    known = {f for f in ShardEntry.__dataclass_fields__}
    return ShardEntry(**{k: v for k, v in doc.items() if k in known})


__all__ = [
    "MANIFEST_NAME",
    "MAX_ENVS",
    "Manifest",
    "ShardEntry",
    "check_layout",
    "rollout_dir",
    "shard_file_name",
]
