"""A `RobotModel` from a MuJoCo ``MjModel``: the geoms of the recorded bodies and of the static world.

Follows ``mujoco/include/mujoco/mjmodel.h``: ``geom_type``/``geom_size``/``geom_pos``/``geom_quat``
(in the body frame), ``geom_rgba`` (or ``mat_rgba`` of ``geom_matid`` when the geom keeps the
default colour), ``geom_bodyid``, ``geom_group``, ``geom_dataid``; ``mesh_vert``/``mesh_face`` with
``mesh_vertadr``/``mesh_vertnum``/``mesh_faceadr``/``mesh_facenum`` (vertices in the mesh frame,
which ``geom_pos``/``geom_quat`` already place); ``hfield_size``/``hfield_nrow``/``hfield_ncol``/
``hfield_adr``/``hfield_data``; ``body_parentid``, ``body_jntnum``, ``body_mocapid``.

Each geom goes with the body it rides on: its own body when that body is recorded; else the
nearest recorded ancestor reached through bodies welded to their parents (no joint, not mocap),
with its pose composed at ``qpos0``; else the world (static) when the chain of welds reaches it.
Geoms of bodies that move but are not recorded (another robot of the scene) are left out and
counted in ``info["dropped_geoms"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rollrec.geometry.quaternion import quat_conj, quat_mul, quat_rotate
from rollrec.model.robot import HFIELD, MESH, RobotModel

_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0], np.float32)


def _carriers(m: Any, recorded: dict[int, int]) -> list[int | None]:
    """Per body: the recorded link it rides on (its index), -1 for the world, None when it moves alone."""
    out: list[int | None] = [None] * m.nbody
    for b in range(m.nbody):
        c = b
        while True:
            if c in recorded:
                out[b] = recorded[c]
                break
            if c == 0:
                out[b] = -1
                break
            if m.body_jntnum[c] > 0 or m.body_mocapid[c] >= 0:
                break
            c = int(m.body_parentid[c])
    return out


def model_from_mujoco(
    mj_model: Any, link_body_ids: Sequence[int] | None = None, link_names: Sequence[str] | None = None
) -> RobotModel:
    """The `RobotModel` of ``mj_model`` for a rollout whose links are bodies ``link_body_ids``.

    The body tree becomes ``link_parents`` (each link's nearest recorded ancestor).

    Args:
        mj_model: a ``mujoco.MjModel`` (MJX, Newton and Genesis MJCF models too).
        link_body_ids: the ``MjModel`` body id of each recorded link, in the rollout's
            ``link_names`` order (what rollrec's MuJoCo adapters expose as ``link_body_ids``);
            default every body but the world.
        link_names: the rollout's names for those links (default the bodies' names).

    Returns:
        The model, ready for ``Recorder(..., model=)`` or ``RolloutRecorder(env, model=)``.
    """
    import mujoco

    m = mj_model
    ids, link_names = _links(m, link_body_ids, link_names)
    recorded = {b: i for i, b in enumerate(ids)}
    carrier = _carriers(m, recorded)
    links = [carrier[b] for b in np.asarray(m.geom_bodyid)]
    keep = np.array([c is not None for c in links], bool)
    pos, quat = _geom_poses(m, ids, links, keep)
    gtype = np.asarray(m.geom_type)[keep]
    dataid = np.asarray(m.geom_dataid)[keep].astype(np.int32)
    meshes = _used(dataid, gtype == MESH)
    hfields = _used(dataid, gtype == HFIELD)
    dataid = np.where(gtype == MESH, _remap(dataid, meshes), np.where(gtype == HFIELD, _remap(dataid, hfields), -1))
    info = {"source": "mujoco", "source_version": mujoco.__version__, "dropped_geoms": int((~keep).sum())}
    return RobotModel(
        link_names=list(link_names),
        geom_type=gtype,
        geom_link=np.array([c for c in links if c is not None], np.int32),
        geom_size=np.asarray(m.geom_size)[keep],
        geom_pos=pos[keep],
        geom_quat=quat[keep],
        geom_rgba=_geom_rgba(m)[keep],
        geom_group=np.asarray(m.geom_group)[keep],
        geom_dataid=dataid,
        **_mesh_arrays(m, meshes),
        **_hfield_arrays(m, hfields),
        link_parents=_link_parents(m, ids, recorded),
        info=info,
    ).check()


def _links(m: Any, link_body_ids: Sequence[int] | None, link_names: Sequence[str] | None) -> tuple[list[int], list[str]]:
    """The recorded links' body ids and names (defaults: every body but the world, by its name),
    checked against the model."""
    import mujoco

    ids = list(range(1, m.nbody)) if link_body_ids is None else [int(b) for b in link_body_ids]
    bad = [b for b in ids if not 0 <= b < m.nbody]
    if bad:
        raise ValueError(f"link_body_ids: body {bad[0]} out of range (the model has {m.nbody} bodies)")
    if link_names is None:
        link_names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b) or f"body_{b}" for b in ids]
    if len(link_names) != len(ids):
        raise ValueError(f"{len(link_names)} link names for {len(ids)} link body ids")
    return ids, list(link_names)


def _geom_poses(m: Any, ids: list[int], links: list[int | None], keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(pos [G, 3], quat [G, 4])`` of every geom in the frame of the link it rides on: the
    model's own where that link is its body, else composed at ``qpos0`` (a body welded to it)."""
    import mujoco

    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)  # poses at qpos0, to fold welded bodies into their carrier
    body = np.asarray(m.geom_bodyid)
    pos = np.array(m.geom_pos, np.float64)
    quat = np.array(m.geom_quat, np.float64)
    for g in np.flatnonzero(keep):
        b, c = int(body[g]), links[g]
        owner = 0 if c == -1 else ids[c]
        if b == owner:
            continue
        gq = np.empty(4)
        mujoco.mju_mat2Quat(gq, d.geom_xmat[g])
        cq = np.asarray(d.xquat[owner], np.float64)
        pos[g] = quat_rotate(quat_conj(cq), d.geom_xpos[g] - d.xpos[owner])
        quat[g] = quat_mul(quat_conj(cq), gq)
    return pos, quat


def _geom_rgba(m: Any) -> np.ndarray:
    """``[G, 4]`` float32 colour of every geom: its material's where it keeps the default colour."""
    rgba = np.array(m.geom_rgba, np.float32)
    matid = np.asarray(m.geom_matid)
    use_mat = (matid >= 0) & np.all(rgba == _DEFAULT_RGBA, axis=1)
    if use_mat.any():
        rgba[use_mat] = np.asarray(m.mat_rgba)[matid[use_mat]]
    return rgba


def _mesh_arrays(m: Any, meshes: list[int]) -> dict[str, Any]:
    """The `RobotModel` mesh fields of the model's meshes ``meshes``, renumbered from 0."""
    verts, faces, vadr, vnum, fadr, fnum = [], [], [], [], [], []
    for i in meshes:
        va, vn, fa, fn = (int(x[i]) for x in (m.mesh_vertadr, m.mesh_vertnum, m.mesh_faceadr, m.mesh_facenum))
        vadr.append(sum(len(v) for v in verts))
        fadr.append(sum(len(f) for f in faces))
        verts.append(np.asarray(m.mesh_vert[va : va + vn]))
        faces.append(np.asarray(m.mesh_face[fa : fa + fn]))
        vnum.append(vn)
        fnum.append(fn)
    return {"mesh_vert": np.concatenate(verts) if verts else np.zeros((0, 3)),
            "mesh_face": np.concatenate(faces) if faces else np.zeros((0, 3)),
            "mesh_vertadr": vadr, "mesh_vertnum": vnum, "mesh_faceadr": fadr, "mesh_facenum": fnum}


def _hfield_arrays(m: Any, hfields: list[int]) -> dict[str, Any]:
    """The `RobotModel` height-field fields of the model's height fields ``hfields``, renumbered from 0."""
    hdata, hadr = [], []
    for i in hfields:
        n = int(m.hfield_nrow[i]) * int(m.hfield_ncol[i])
        hadr.append(sum(len(h) for h in hdata))
        hdata.append(np.asarray(m.hfield_data[int(m.hfield_adr[i]) : int(m.hfield_adr[i]) + n]))
    return {"hfield_size": np.asarray(m.hfield_size)[hfields].reshape(-1, 4),
            "hfield_nrow": np.asarray(m.hfield_nrow)[hfields], "hfield_ncol": np.asarray(m.hfield_ncol)[hfields],
            "hfield_adr": hadr, "hfield_data": np.concatenate(hdata) if hdata else np.zeros(0)}


def _link_parents(m: Any, ids: list[int], recorded: dict[int, int]) -> list[int]:
    """Per recorded link: the index of the nearest recorded ancestor body, -1 for none."""
    parents = []
    for b in ids:
        p = int(m.body_parentid[b]) if b != 0 else -1
        while p > 0 and p not in recorded:
            p = int(m.body_parentid[p])
        parents.append(recorded.get(p, -1) if p >= 0 else -1)
    return parents


def _used(dataid: np.ndarray, sel: np.ndarray) -> list[int]:
    return sorted({int(i) for i in dataid[sel] if i >= 0})


def _remap(dataid: np.ndarray, used: list[int]) -> np.ndarray:
    table = {old: new for new, old in enumerate(used)}
    return np.array([table.get(int(i), -1) for i in dataid], np.int32)
