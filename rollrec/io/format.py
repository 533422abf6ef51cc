"""Rollout format v1: the specification, and the checks every reader and writer shares.

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
It may hold ``obs_layout`` (a list of ``{"name", "start", "stop", "shape"}`` when obs came as a
dict of tensors and was flattened in key order), ``extras`` (the names of the extra members),
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
file, so a reader can memory-map them (`rollrec.load` does). Compression is an option of the
writers; a compressed file is read member by member into memory.

A rollout recorded by several ranks of ``torch.distributed`` is a directory holding one such
file per rank (its envs, with ``meta["shard"]``) and a ``manifest.json`` saying which file holds
which envs; the manifest's specification is in `rollrec.io.manifest`.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec.io.errors import RolloutFormatError
from rollrec.io.model import MODEL_KEYS

FORMAT_NAME = "rollrec"
FORMAT_VERSION = 1
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
#: Trailing sizes fixed by the format.
FIXED_TRAILING: dict[str, tuple[int, ...]] = {
    "base_pos": (3,),
    "base_quat": (4,),
    "link_pos": (3,),
    "link_quat": (4,),
}
BOOL_KEYS = ("done", "truncated")


def rollrec_version() -> str:
    from rollrec import __version__

    return __version__


def make_meta(
    *,
    num_steps: int,
    num_envs: int,
    dt: float,
    env_name: str = "unknown",
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` dict of a v1 file; ``extra`` entries must be JSON-serialisable."""
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
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


def encode_meta(meta: Mapping[str, Any]) -> np.ndarray:
    """``meta`` as the 0-d unicode array stored in the file."""
    return np.array(json.dumps(meta, sort_keys=True))


def decode_meta(value: np.ndarray, where: str) -> dict[str, Any]:
    if value.dtype.kind != "U" or value.ndim != 0:
        raise RolloutFormatError(f"{where}: 'meta' must be a 0-d unicode array, got {value.dtype} {value.shape}")
    try:
        meta = json.loads(str(value[()]))
    except json.JSONDecodeError as exc:
        raise RolloutFormatError(f"{where}: 'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise RolloutFormatError(f"{where}: 'meta' must be a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise RolloutFormatError(
            f"{where}: unknown format version {version!r}; this rollrec ({rollrec_version()}) "
            f"reads version {FORMAT_VERSION}. Upgrade rollrec to read it."
        )
    return meta


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
        trailing = FIXED_TRAILING.get(key)
        if trailing is not None and tuple(shape[-len(trailing):]) != trailing:
            raise RolloutFormatError(f"{where}: {key!r} must end in {trailing}, got shape {shape}")
        if dtypes[key].kind not in "biuf":
            raise RolloutFormatError(f"{where}: {key!r} must be numeric or bool, got dtype {dtypes[key]}")
    for key in BOOL_KEYS:
        if dtypes[key] != np.bool_:
            raise RolloutFormatError(f"{where}: {key!r} must be bool, got {dtypes[key]}")
    K = shapes["rew_terms"][2]
    if "rew_term_names" not in shapes or shapes["rew_term_names"] != (K,):
        raise RolloutFormatError(f"{where}: 'rew_term_names' must have shape ({K},) to name the {K} reward terms")
    if "link_pos" in shapes:
        L = shapes["link_pos"][2]
        if shapes.get("link_quat", (None, None, L))[2] != L or shapes.get("link_names") not in (None, (L,)):
            raise RolloutFormatError(f"{where}: 'link_pos', 'link_quat' and 'link_names' disagree on the link count")
    return int(T), int(N)
