"""Rollout format v1 (and what v2 changes): the specification, and the checks every reader and writer shares.

A rollout is one ``.npz`` file (a zip archive of ``.npy`` members) that plain
``np.load(path, allow_pickle=False)`` reads: no member is an object array, ever.
Time is the first axis and the env axis is always present, N == 1 included.

Members (T steps, N envs):

==================  ===============  ========  ==============================================
key                 shape            dtype     meaning
==================  ===============  ========  ==============================================
``obs``             ``[T, N, D]``    float     observation given to the policy at step t
``act``             ``[T, N, A]``    float     action taken at step t
``rew``             ``[T, N]``       float     total reward received for step t
``done``            ``[T, N]``       bool      the episode ended after step t (terminated or
                                               truncated; the env was reset)
``truncated``       ``[T, N]``       bool      the episode ended after step t by a time limit
``base_pos``        ``[T, N, 3]``    float     floating-base position, world frame, metres
``base_quat``       ``[T, N, 4]``    float     floating-base orientation, **wxyz** (scalar first,
                                               viser's order)
``rew_terms``       ``[T, N, K]``    float32   per-env reward terms (not env means)
``rew_term_names``  ``[K]``          unicode   the names of the K terms
``link_pos``        ``[T, N, L, 3]`` float     optional: link positions, world frame
``link_quat``       ``[T, N, L, 4]`` float     optional: link orientations, wxyz
``link_names``      ``[L]``          unicode   optional, with the link poses
*any other name*    ``[T, N, ...]``  any       optional per-step extras (numeric or bool)
``meta``            ``[]``           unicode   a JSON object, see below
==================  ===============  ========  ==============================================

``meta`` (a 0-d unicode array holding JSON) has at least ``format`` ("rollrec"),
``format_version`` (1), ``num_steps`` (T), ``num_envs`` (N), ``dt`` (seconds per step),
``quat_order`` ("wxyz"), ``rollrec_version``, ``created`` (ISO 8601, UTC) and ``env_name``.
It may hold ``obs_layout`` (a list of ``{"name", "start", "stop", "shape"}``: written by rollrec
when obs came as a dict of tensors and was flattened in key order, or given by the caller in
``meta`` to name the columns of a flat obs), ``extras`` (the names of the extra members),
``video`` (recorded video files and their steps), ``model`` and ``link_parents`` (with a robot
model, below), ``legacy`` (true when converted from the
original recorder) and ``reward_terms_are_env_means`` (true for such files, whose terms are
means over envs broadcast to every env).

Optional robot model (`rollrec.model.RobotModel`; written and read by `rollrec.io.model`): the
geometry of the links whose poses the file records, and of the static world, so a replay needs
no simulator. A file has all of these members or none (then `Rollout.model` is None). G geoms,
M meshes, H height fields; conventions are MuJoCo's ``mjModel`` fields of the same names:

==========================  ==========  =======  ===============================================
key                         shape       dtype    meaning
==========================  ==========  =======  ===============================================
``model_geom_type``         ``[G]``     int8     0 plane, 1 hfield, 2 sphere, 3 capsule,
                                                 4 ellipsoid, 5 cylinder, 6 box, 7 mesh
``model_geom_link``         ``[G]``     int32    the link it rides on (index into ``link_names``),
                                                 -1: the world (static)
``model_geom_size``         ``[G, 3]``  float32  MuJoCo's ``geom_size`` (radius, half-lengths)
``model_geom_pos``          ``[G, 3]``  float32  position in its link's frame (world when static)
``model_geom_quat``         ``[G, 4]``  float32  orientation in its link's frame, wxyz
``model_geom_rgba``         ``[G, 4]``  float32  colour, [0, 1]
``model_geom_group``        ``[G]``     int8     visibility group (renderers show 0-2)
``model_geom_dataid``       ``[G]``     int32    its mesh or height field, else -1
``model_mesh_vert``         ``[V, 3]``  float32  vertices of every mesh, in the geom frame
``model_mesh_face``         ``[F, 3]``  int32    triangles, indices relative to the mesh's first vertex
``model_mesh_vertadr``,     ``[M]``     int32    each mesh's first vertex and vertex count
``model_mesh_vertnum``
``model_mesh_faceadr``,     ``[M]``     int32    each mesh's first face and face count
``model_mesh_facenum``
``model_hfield_size``       ``[H, 4]``  float32  x and y half-extent, height scale, base depth
``model_hfield_nrow``,      ``[H]``     int32    rows (along y) and columns (along x)
``model_hfield_ncol``
``model_hfield_adr``        ``[H]``     int32    first elevation in ``model_hfield_data``
``model_hfield_data``       ``[E]``     float32  elevations in [0, 1], row-major
==========================  ==========  =======  ===============================================

With a model, ``meta["model"]`` holds where it came from (``source``: ``"mujoco"`` or
``"urdf"``, ``source_version``, ``dropped_geoms``: geoms of bodies that move but are not
recorded) and ``meta["link_parents"]`` the body tree (each link's parent link, -1 for a root).
Readers check every index before following it (`rollrec.model.RobotModel.check`).

Members are stored uncompressed by default, each member's data aligned to 64 bytes in the
file, so a reader can memory-map them (`rollrec.load` does). Members need not be adjacent: a
recording stopped short of its reserved length keeps its members in place, with holes (zeros,
no disk blocks) between them, so readers locate members through the zip central directory. Compression is an option of the
writers; a compressed file is read member by member into memory.

Per-step members hold bool, signed or unsigned integers or floats (numpy's ``b i u f`` kinds;
``bfloat16``, which numpy lacks, is recorded as ``float32``, exactly). ``meta`` is plain JSON
(objects with string keys, lists, strings, numbers, booleans, null) nested at most
`MAX_META_DEPTH` deep and at most `MAX_META_BYTES` long; ``dt`` is a finite number > 0,
``num_steps`` and ``num_envs`` are integers, ``link_parents`` (when present) a list of integers.
A file breaking any rule here is refused by the reader with `RolloutFormatError`.

A rollout recorded by several ranks of ``torch.distributed`` is a directory holding one such
file per rank (its envs, with ``meta["shard"]``) and a ``manifest.json`` saying which file holds
which envs; the manifest's specification is in `rollrec.format.manifest`.

Version 2 (``meta["format_version"]`` 2; the version bump of `Recorder`'s volume control:
``envs=``, ``every=``, ``capture=``/``window=``) is specified in `rollrec.format.v2`: per-step
members may hold some envs only (``[T, len(ids), ...]``, ``meta["env_ids"]``) or the rows of
captured episodes only (``[R, ...]``, ``meta["windows"]``), one step in ``meta["every"]``, and the
file then holds an episode index (``episodes`` int64 ``[E, 7]``: env, start, stop, end, captured,
row, rows; ``episode_return`` float64 ``[E]``). Everything above holds otherwise. Writers write v1
whenever a file fits it; readers read both (`READ_VERSIONS`): a v1 file written by any rollrec
loads as before, and reads as a v2 file whose members all hold every env and every step.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec._version import __version__
from rollrec.format.errors import RolloutFormatError
from rollrec.io.model import MODEL_KEYS

FORMAT_NAME = "rollrec"
#: The newest format version written and read (versions 1 and 2 are read).
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
QUAT_ORDER = "wxyz"

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
#: Members that are not per-step (the robot model's: see `rollrec.io.model`).
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
#: Names a per-step extra may not take: members the format defines.
RESERVED_NAMES = frozenset((*REQUIRED_RANKS, *OPTIONAL_RANKS, *STATIC_KEYS, *INDEX_KEYS))
#: ``meta`` entries the writers derive from the data; a caller's ``meta`` may not set them.
DERIVED_META = ("format", "format_version", "num_steps", "num_envs", "dt", "quat_order", "extras",
                "every", "recorded_steps", "env_ids", "windows", "episode_columns", "volume")
MAX_META_DEPTH = 64
MAX_META_BYTES = 64 << 20


def rollrec_version() -> str:
    return __version__


def make_meta(
    *,
    num_steps: int,
    num_envs: int,
    dt: float,
    env_name: str = "unknown",
    version: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` dict of a v1 (or ``version``) file; ``extra`` entries must be JSON-serialisable.

    Raises ValueError when ``dt`` is not a finite number > 0 (the reader would refuse the file).
    """
    check_dt(dt)
    _check_unicode(str(env_name), "env_name")
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": int(version),
        "num_steps": int(num_steps),
        "num_envs": int(num_envs),
        "dt": float(dt),
        "env_name": str(env_name),
        "quat_order": QUAT_ORDER,
        "rollrec_version": rollrec_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    return meta


def check_dt(dt: Any) -> float:
    """``dt`` as a float; ValueError unless it is a finite number > 0."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)):
        raise ValueError(f"dt must be a number of seconds per step, got {type(dt).__name__} {dt!r}")
    if not (math.isfinite(float(dt)) and float(dt) > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    return float(dt)


def encode_meta(meta: Mapping[str, Any]) -> np.ndarray:
    """``meta`` as the 0-d unicode array stored in the file."""
    return np.array(json.dumps(meta, sort_keys=True))


# ---- meta given by callers: made plain JSON when given, never at close --------------------------
def to_json(value: Any, where: str = "meta", depth: int = 0) -> Any:
    """A copy of ``value`` made of plain JSON types, or ValueError naming the entry.

    numpy scalars become Python numbers, numpy arrays nested lists, paths strings, tuples lists.
    Refused: dict keys that are not strings, other objects (tensors: call ``.tolist()``),
    strings that are not valid unicode, nesting deeper than `MAX_META_DEPTH`.
    """
    if depth > MAX_META_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_META_DEPTH} levels")
    if value is None or isinstance(value, (bool, int)):
        return value if type(value) in (bool, int) or value is None else int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        _check_unicode(value, where)
        return str(value)
    if isinstance(value, np.generic):
        if value.dtype.kind in "biufU":
            return to_json(value.item(), where, depth)
        raise ValueError(f"{where}: numpy {value.dtype} is not a JSON value")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU":
            raise ValueError(f"{where}: numpy array of {value.dtype} is not a JSON value")
        return to_json(value.tolist(), where, depth)
    if isinstance(value, os.PathLike):
        return to_json(os.fspath(value), where, depth)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is a {type(key).__name__}; meta keys must be strings")
            _check_unicode(key, where)
            out[str(key)] = to_json(item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    hint = " (convert it with .tolist() or .item())" if type(value).__module__.startswith("torch") else ""
    raise ValueError(f"{where}: a {type(value).__module__}.{type(value).__name__} is not a JSON value{hint}")


def _check_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: string {text[:40]!r} is not valid unicode (lone surrogate)") from None


def user_meta(entries: Mapping[str, Any], *, derived: Mapping[str, Any] | None = None,
              where: str = "meta") -> dict[str, Any]:
    """Check and copy a caller's ``meta`` entries (see `to_json`) so the finished file reads back.

    Entries in `DERIVED_META` are refused: the writer sets them from the data. With ``derived``
    (the values the writer computed), an entry equal to its derived value is accepted, so a
    loaded rollout's ``meta`` can be saved again. ``link_parents`` must be a list of integers.
    """
    out = to_json(dict(entries), where)
    for key in DERIVED_META:
        if key not in out or (derived is not None and key in derived and out[key] == derived[key]):
            continue
        hint = {"dt": " (pass dt=...)", "num_envs": " (pass num_envs)"}.get(key, "")
        raise ValueError(f"{where}[{key!r}]: set by rollrec from the recording{hint}; it may not be given")
    _check_link_parents(out, where)
    if "obs_layout" in out:
        check_obs_layout(out["obs_layout"], None, where)
    if len(json.dumps(out)) > MAX_META_BYTES // 4:
        raise ValueError(f"{where}: more than {MAX_META_BYTES // 4 >> 20} M characters of JSON")
    return out


def check_obs_layout(layout: Any, obs_dim: int | None, where: str) -> None:
    """ValueError unless ``layout`` is a list of ``{"name": str, "start": int, "stop": int,
    "shape": [int, ...]}`` with ``0 <= start < stop <= obs_dim`` (when ``obs_dim`` is known) and
    ``prod(shape) == stop - start``: how a flat ``obs [T, N, D]`` splits into named parts."""
    if not isinstance(layout, list):
        raise ValueError(f"{where}['obs_layout'] must be a list of {{name, start, stop, shape}}, got {type(layout).__name__}")
    for i, entry in enumerate(layout):
        ok = (
            isinstance(entry, dict) and isinstance(entry.get("name"), str)
            and type(entry.get("start")) is int and type(entry.get("stop")) is int
            and isinstance(entry.get("shape"), list) and all(type(s) is int and s >= 0 for s in entry["shape"])
        )
        if not ok:
            raise ValueError(f"{where}['obs_layout'][{i}] must be {{name: str, start: int, stop: int, shape: [int]}}, "
                             f"got {entry!r:.80}")
        start, stop = entry["start"], entry["stop"]
        if not 0 <= start < stop or (obs_dim is not None and stop > obs_dim):
            raise ValueError(f"{where}['obs_layout'][{i}] ({entry['name']!r}): columns {start}..{stop} do not fit "
                             f"obs of {obs_dim if obs_dim is not None else 'its'} dimensions")
        if int(np.prod(entry["shape"], dtype=np.int64)) != stop - start:
            raise ValueError(f"{where}['obs_layout'][{i}] ({entry['name']!r}): shape {entry['shape']} does not hold "
                             f"{stop - start} values")


def _check_link_parents(meta: Mapping[str, Any], where: str) -> None:
    parents = meta.get("link_parents")
    if parents is None:
        return
    if not isinstance(parents, list) or not all(type(p) is int for p in parents):
        raise ValueError(f"{where}['link_parents'] must be a list of integers (-1 for a root), got {parents!r:.80}")


# ---- meta read from a file ----------------------------------------------------------------------
def decode_meta(value: np.ndarray, where: str) -> dict[str, Any]:
    """The ``meta`` dict of a file; `RolloutFormatError` (naming ``where``) unless it follows the spec."""
    if value.dtype.kind != "U" or value.ndim != 0:
        raise RolloutFormatError(f"{where}: 'meta' must be a 0-d unicode array, got {value.dtype} {value.shape}")
    if value.dtype.itemsize > MAX_META_BYTES:
        raise RolloutFormatError(f"{where}: 'meta' is {value.dtype.itemsize >> 20} MB; at most {MAX_META_BYTES >> 20} MB is read")
    check_unicode_array(value, "meta", where)
    try:
        meta = json.loads(str(value[()]))
    except json.JSONDecodeError as exc:
        raise RolloutFormatError(f"{where}: 'meta' is not valid JSON ({exc})") from None
    except RecursionError:
        raise RolloutFormatError(f"{where}: 'meta' is nested too deeply") from None
    if not isinstance(meta, dict):
        raise RolloutFormatError(f"{where}: 'meta' must be a JSON object")
    _check_meta_tree(meta, where)
    version = meta.get("format_version")
    if version not in READ_VERSIONS or type(version) is not int:
        raise RolloutFormatError(
            f"{where}: unknown format version {version!r}; this rollrec ({rollrec_version()}) "
            f"reads versions {', '.join(map(str, READ_VERSIONS))}. Upgrade rollrec to read it."
        )
    for key in ("num_steps", "num_envs"):
        if type(meta.get(key)) is not int or meta[key] < 0:
            raise RolloutFormatError(f"{where}: meta {key!r} must be an integer >= 0, got {meta.get(key)!r:.40}")
    if "dt" not in meta:
        raise RolloutFormatError(f"{where}: meta has no 'dt' (seconds per step)")
    try:
        check_dt(meta["dt"])
    except ValueError as exc:
        raise RolloutFormatError(f"{where}: meta 'dt': {exc}") from None
    if meta.get("quat_order", QUAT_ORDER) != QUAT_ORDER:
        raise RolloutFormatError(f"{where}: meta 'quat_order' is {meta['quat_order']!r:.40}; format v1 is {QUAT_ORDER!r}")
    try:
        _check_link_parents(meta, "meta")
    except ValueError as exc:
        raise RolloutFormatError(f"{where}: {exc}") from None
    return meta


def _check_meta_tree(meta: dict, where: str) -> None:
    """Depth at most `MAX_META_DEPTH` and every string valid unicode (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(meta, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_META_DEPTH:
            raise RolloutFormatError(f"{where}: 'meta' is nested deeper than {MAX_META_DEPTH} levels")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            for text in (key, item):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise RolloutFormatError(f"{where}: 'meta' holds a string that is not valid unicode") from None
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))


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
