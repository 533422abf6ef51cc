"""MuJoCo pose sources: ``MjModel`` with ``MjData`` (one per env), and MJX batches.

Follows MuJoCo's ``mjData`` fields (``mujoco/include/mujoco/mjdata.h``): ``qpos`` (a free joint's
7 values at ``jnt_qposadr`` are position then wxyz quaternion), ``xpos [nbody, 3]`` and ``xquat
[nbody, 4]`` (wxyz). ``mj_step`` runs the forward kinematics *before* it integrates, so after a
step ``xpos``/``xquat`` belong to the previous ``qpos``; by default the sources run the
kinematics again (``mj_kinematics``; ``mjx.kinematics`` for MJX) so link poses and base pose
describe the same state as ``qpos``, the state the next obs is made from.

rollrec never writes to the simulator's state: the kinematics run on a private ``MjData`` (the
env's ``qpos`` and mocap poses copied in), never on the env's own. Envs read ``xpos`` before they
step (Gymnasium's ``AntEnv.step`` takes ``xy_position_before`` from it), so refreshing the env's
own ``MjData`` would change their rewards. MJX data are immutable jax arrays: ``mjx.kinematics``
returns a new ``Data`` that only the source sees. The MJX source follows
``mjx/mujoco/mjx/_src/types.py`` (``Data`` of jax arrays; a ``jax.vmap`` batch has a leading
env axis) and reads them through DLPack (``torch.from_dlpack``: zero-copy, then one device copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rollrec.adapters.pose_source import PoseSource


def body_names(model: Any, ids: Sequence[int]) -> list[str]:
    """The names of bodies ``ids`` of ``model``; an unnamed body is ``body_<id>``."""
    import mujoco

    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(i)) or f"body_{int(i)}" for i in ids]


def free_joint_qpos_adr(model: Any) -> int | None:
    """``qpos`` address of the model's first free joint, or None."""
    free = np.flatnonzero(np.asarray(model.jnt_type) == 0)  # mjJNT_FREE
    return int(model.jnt_qposadr[free[0]]) if free.size else None


class MuJoCoPoses(PoseSource):
    """Poses of ``N`` MuJoCo envs: one ``MjModel`` and a list of ``MjData`` (or one ``MjData``).

    Base pose: the first free joint's ``qpos`` (else the pose of the first link); links: bodies
    ``bodies`` (default every body but the world, in body id order), wxyz. ``refresh``: compute
    the link poses of each data's ``qpos`` with ``mj_kinematics`` on a private scratch ``MjData``
    (the env's own data is only read; see the module docstring); ``refresh=False`` reads the
    env's ``xpos``/``xquat`` as they are. Returns CPU tensors of ``dtype``. ``mj_model`` and
    ``link_body_ids`` name the model and the recorded bodies.
    """

    quat_order = "wxyz"

    def __init__(self, model: Any, data: Any | Sequence[Any], *, bodies: Sequence[int] | None = None,
                 refresh: bool = True, dtype: torch.dtype = torch.float32):
        ids = list(range(1, model.nbody)) if bodies is None else [int(b) for b in bodies]
        if not ids:
            raise ValueError("MuJoCoPoses: the model has no body besides the world")
        super().__init__(body_names(model, ids), {"base": "free joint qpos"})
        self.mj_model = model
        self.link_body_ids = ids
        self.datas = list(data) if isinstance(data, (list, tuple)) else [data]
        self.refresh = refresh
        self.dtype = dtype
        self.qpos_adr = free_joint_qpos_adr(model)
        if self.qpos_adr is None:
            self.meta["base"] = f"link {self.link_names[0]!r} (the model has no free joint)"
        self._ids = np.asarray(ids)
        self._scratch: Any = None

    def _link_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """``[N, L, 3]`` positions and ``[N, L, 4]`` wxyz quaternions of the recorded bodies."""
        if not self.refresh:
            return (np.stack([d.xpos[self._ids] for d in self.datas]),
                    np.stack([d.xquat[self._ids] for d in self.datas]))
        import mujoco

        if self._scratch is None:
            self._scratch = mujoco.MjData(self.mj_model)
        scratch, model = self._scratch, self.mj_model
        pos = np.empty((len(self.datas), len(self._ids), 3))
        quat = np.empty((len(self.datas), len(self._ids), 4))
        for i, d in enumerate(self.datas):
            scratch.qpos[:] = d.qpos  # mj_kinematics reads qpos and the mocap poses only
            if model.nmocap:
                scratch.mocap_pos[:] = d.mocap_pos
                scratch.mocap_quat[:] = d.mocap_quat
            mujoco.mj_kinematics(model, scratch)
            pos[i], quat[i] = scratch.xpos[self._ids], scratch.xquat[self._ids]
        return pos, quat

    def __call__(self) -> dict[str, torch.Tensor]:
        link_pos, link_quat = self._link_poses()
        if self.qpos_adr is not None:
            a = self.qpos_adr
            base = np.stack([d.qpos[a:a + 7] for d in self.datas])
            base_pos, base_quat = base[:, :3], base[:, 3:7]
        else:
            base_pos, base_quat = link_pos[:, 0], link_quat[:, 0]
        out = {"base_pos": base_pos, "base_quat": base_quat, "link_pos": link_pos, "link_quat": link_quat}
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.dtype) for k, v in out.items()}


class MjxPoses(PoseSource):
    """Poses of an MJX batch: call it with a ``jax.vmap``-batched ``mjx.Data`` (``[N, ...]``).

    ``model``: the ``MjModel`` (names, free joint); ``mjx_model``: its ``mjx.put_model`` copy,
    needed when ``refresh`` runs ``mjx.kinematics`` (jitted and vmapped once, on first call).
    Returns torch tensors on the jax arrays' device (DLPack, then one device copy each).
    """

    quat_order = "wxyz"

    def __init__(self, model: Any, mjx_model: Any = None, *, bodies: Sequence[int] | None = None, refresh: bool = True):
        ids = list(range(1, model.nbody)) if bodies is None else [int(b) for b in bodies]
        super().__init__(body_names(model, ids), {"base": "free joint qpos"})
        if refresh and mjx_model is None:
            raise ValueError("MjxPoses: refresh=True needs mjx_model (the mjx.put_model of the model)")
        self.mj_model = model
        self.mjx_model = mjx_model
        self.link_body_ids = ids
        self.refresh = refresh
        self.qpos_adr = free_joint_qpos_adr(model)
        if self.qpos_adr is None:
            self.meta["base"] = f"link {self.link_names[0]!r} (the model has no free joint)"
        self._ids: torch.Tensor | None = None
        self._kinematics = None

    def __call__(self, data: Any) -> dict[str, torch.Tensor]:
        qpos = data.qpos  # the base as the simulator holds it (mjx.kinematics returns qpos quaternions normalized)
        if self.refresh:
            if self._kinematics is None:
                import jax
                from mujoco import mjx

                self._kinematics = jax.jit(jax.vmap(mjx.kinematics, in_axes=(None, 0)))
            data = self._kinematics(self.mjx_model, data)
        xpos, xquat = torch.from_dlpack(data.xpos), torch.from_dlpack(data.xquat)
        if xpos.dim() != 3:
            raise ValueError(f"MjxPoses: expected a batched mjx.Data (xpos [N, nbody, 3]), got xpos {tuple(xpos.shape)}")
        if self._ids is None or self._ids.device != xpos.device:
            self._ids = torch.as_tensor(self.link_body_ids, device=xpos.device)
        link_pos, link_quat = xpos.index_select(1, self._ids), xquat.index_select(1, self._ids)  # new tensors
        if self.qpos_adr is not None:
            a = self.qpos_adr
            base = torch.from_dlpack(qpos)[:, a:a + 7].clone()
            base_pos, base_quat = base[:, :3], base[:, 3:7]
        else:
            base_pos, base_quat = link_pos[:, 0], link_quat[:, 0]
        return {"base_pos": base_pos, "base_quat": base_quat, "link_pos": link_pos, "link_quat": link_quat}
