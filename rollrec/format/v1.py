"""Format version 1: the members of a rollout file and its ``meta``, and the checks every reader and
writer shares (what versions 1 and 2 are, and which one a writer picks: `rollrec.format`).

A rollout is one ``.npz`` file (a zip archive of ``.npy`` members) that plain
``np.load(path, allow_pickle=False)`` reads: no member is an object array, ever.
Time is the first axis and the env axis is always present, N == 1 included.

Members (T steps, N envs):

==================  ================  ========  ==============================================
key                 shape             dtype     meaning
==================  ================  ========  ==============================================
``obs``             ``[T, N, D]``     float     observation given to the policy at step t
``act``             ``[T, N, A]``     float     action taken at step t
``rew``             ``[T, N]``        float     total reward received for step t
``done``            ``[T, N]``        bool      the episode ended after step t (terminated or
                                                truncated; the env was reset)
``truncated``       ``[T, N]``        bool      the episode ended after step t by a time limit
``base_pos``        ``[T, N, 3]``     float     floating-base position, world frame, metres
``base_quat``       ``[T, N, 4]``     float     floating-base orientation, **wxyz** (scalar first,
                                                viser's order)
``rew_terms``       ``[T, N, K]``     float32   per-env reward terms (not env means)
``rew_term_names``  ``[K]``           unicode   the names of the K terms
``link_pos``        ``[T, N, L, 3]``  float     optional: link positions, world frame
``link_quat``       ``[T, N, L, 4]``  float     optional: link orientations, wxyz
``link_names``      ``[L]``           unicode   optional, with the link poses
*any other name*    ``[T, N, ...]``   any       optional per-step extras (numeric or bool)
``meta``            ``[]``            unicode   a JSON object, see below
==================  ================  ========  ==============================================

``meta`` (a 0-d unicode array holding JSON) has at least ``format`` ("rollrec"),
``format_version`` (1), ``num_steps`` (T), ``num_envs`` (N), ``dt`` (seconds per step),
``quat_order`` ("wxyz"), ``rollrec_version``, ``created`` (ISO 8601, UTC) and ``env_name``.
It may hold ``obs_layout`` (a list of ``{"name", "start", "stop", "shape"}``: written by rollrec
when obs came as a dict of tensors and was flattened in key order, or given by the caller in
``meta`` to name the columns of a flat obs), ``extras`` (the names of the extra members),
``video`` (recorded video files and their steps), ``model`` and ``link_parents`` (with a robot
model, below), ``legacy`` (true when converted from the original recorder) and
``reward_terms_are_env_means`` (true for such files, whose terms are means over envs broadcast
to every env).

Optional robot model: the ``model_*`` members, all or none, specified in `rollrec.format.model`
(`Rollout.model` is None without them).

Members are stored uncompressed by default, each member's data aligned to 64 bytes in the
file, so a reader can memory-map them (`rollrec.load` does). Members need not be adjacent: a
recording stopped short of its reserved length keeps its members in place, with holes (zeros,
no disk blocks) between them, so readers locate members through the zip central directory.
Compression is an option of the writers; a compressed file is read member by member into memory.

Per-step members hold bool, signed or unsigned integers or floats (numpy's ``b i u f`` kinds;
``bfloat16``, which numpy lacks, is recorded as ``float32``, exactly). ``meta`` is plain JSON
(objects with string keys, lists, strings, numbers, booleans, null) nested at most
`MAX_META_DEPTH` deep and at most `MAX_META_BYTES` long (`rollrec.format.meta`); ``dt`` is a finite number > 0,
``num_steps`` and ``num_envs`` are integers, ``link_parents`` (when present) a list of integers.
A file breaking any rule here is refused by the reader with `RolloutFormatError`.

A rollout recorded by several ranks of ``torch.distributed`` is a directory holding one such
file per rank (its envs, with ``meta["shard"]``) and a ``manifest.json`` saying which file holds
which envs; the manifest's specification is in `rollrec.format.manifest`.

Version 2 (`rollrec.format.v2`) lets per-step members hold some envs only, the rows of captured
episodes only, or one step in k, with an episode index; everything above holds otherwise, and
every v1 file reads as a v2 file whose members all hold every env and every step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.model import MODEL_KEYS

#: Per-step members every v1 file has, with the rank each must have (T and N included).
REQUIRED_RANKS: dict[str, int] = {
    "obs": 3,
    "act": 3,
    "rew": 2,
    "done": 2,
    "truncated": 2,
    "base_pos": 3,
    "base_quat": 3,
    "rew_terms": 3,
}
#: Optional per-step members with a fixed rank.
OPTIONAL_RANKS: dict[str, int] = {"link_pos": 4, "link_quat": 4}
#: Members that are not per-step (with the robot model's, see `rollrec.format.model`).
STATIC_KEYS = ("meta", "rew_term_names", "link_names", *MODEL_KEYS)
#: The episode index of a v2 file (see `rollrec.format.v2`).
INDEX_KEYS = ("episodes", "episode_return")
#: Trailing sizes fixed by the format.
FIXED_TRAILING: dict[str, tuple[int, ...]] = {
    "base_pos": (3,),
    "base_quat": (4,),
    "link_pos": (3,),
    "link_quat": (4,),
}
BOOL_KEYS = ("done", "truncated")
#: Names a per-step extra may not take (members the format defines).
RESERVED_NAMES = frozenset((*REQUIRED_RANKS, *OPTIONAL_RANKS, *STATIC_KEYS, *INDEX_KEYS))


def check_unicode_array(value: np.ndarray, name: str, where: str) -> None:
    """`RolloutFormatError` unless every character of the unicode array ``value`` is a valid code point."""
    if value.dtype.itemsize == 0 or value.size == 0:
        return
    codes = np.ascontiguousarray(value).view(np.uint32) if value.dtype.byteorder != ">" else \
        np.ascontiguousarray(value).view(">u4")
    if bool(((codes > 0x10FFFF) | ((codes >= 0xD800) & (codes <= 0xDFFF))).any()):
        raise RolloutFormatError(f"{where}: member {name!r} holds characters that are not valid unicode")


def check_fields(shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, np.dtype], where: str) -> tuple[int, int]:
    """Check member shapes/dtypes against the spec; returns ``(T, N)``.

    Raises `RolloutFormatError` naming the first problem: a missing required key, a wrong rank,
    a T or N that differs between keys, a wrong trailing size or dtype.
    """
    for key in REQUIRED_RANKS:
        if key not in shapes:
            raise RolloutFormatError(f"{where}: missing required key {key!r}")
    T, N = shapes["obs"][:2] if len(shapes["obs"]) >= 2 else (None, None)
    for key, shape in shapes.items():
        if key in STATIC_KEYS:
            continue
        rank = REQUIRED_RANKS.get(key, OPTIONAL_RANKS.get(key))
        if rank is not None and len(shape) != rank:
            raise RolloutFormatError(f"{where}: {key!r} must have rank {rank}, got shape {shape}")
        if len(shape) < 2:
            raise RolloutFormatError(f"{where}: {key!r} must be per-step [T, N, ...], got shape {shape}")
        if shape[0] != T:
            raise RolloutFormatError(f"{where}: mismatched T: {key!r} has {shape[0]} steps, 'obs' has {T}")
        if shape[1] != N:
            raise RolloutFormatError(f"{where}: mismatched N: {key!r} has {shape[1]} envs, 'obs' has {N}")
        check_member_rows(key, shape, dtypes[key], where)
    check_named_members(shapes, dtypes, shapes["rew_terms"][2], where)
    return int(T), int(N)


def check_member_rows(key: str, shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    """A per-step member's rows: its fixed trailing size (``base_pos`` ends in 3, ...) and a
    numeric or bool dtype (v1 and v2 alike; the leading axes are each version's own)."""
    trailing = FIXED_TRAILING.get(key)
    if trailing is not None and tuple(shape[-len(trailing):]) != trailing:
        raise RolloutFormatError(f"{where}: {key!r} must end in {trailing}, got shape {shape}")
    if dtype.kind not in "biuf":
        raise RolloutFormatError(f"{where}: {key!r} must be numeric or bool, got dtype {dtype}")


def check_named_members(shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, np.dtype], K: int, where: str) -> None:
    """What members say of each other (v1 and v2 alike): bool flags, ``K`` reward-term names,
    unicode name arrays, one link count for ``link_pos``, ``link_quat`` and ``link_names``."""
    for key in BOOL_KEYS:
        if dtypes[key] != np.bool_:
            raise RolloutFormatError(f"{where}: {key!r} must be bool, got {dtypes[key]}")
    if "rew_term_names" not in shapes or shapes["rew_term_names"] != (K,):
        raise RolloutFormatError(f"{where}: 'rew_term_names' must have shape ({K},) to name the {K} reward terms")
    for key in ("rew_term_names", "link_names"):
        if key in dtypes and dtypes[key].kind != "U":
            raise RolloutFormatError(f"{where}: {key!r} must be a unicode array, got dtype {dtypes[key]}")
    if "link_pos" in shapes:  # [..., L, 3] in every layout
        L = shapes["link_pos"][-2]
        if shapes.get("link_quat", (L, 4))[-2] != L or shapes.get("link_names") not in (None, (L,)):
            raise RolloutFormatError(f"{where}: 'link_pos', 'link_quat' and 'link_names' disagree on the link count")
