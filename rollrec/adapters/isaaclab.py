"""Isaac Lab (``isaac-sim/IsaacLab``) manager-based RL envs, 2.x and 3.0.

Follows ``source/isaaclab/isaaclab/envs/manager_based_rl_env.py`` (``ManagerBasedRLEnv.step``:
``(obs {"policy": ...}, reward, terminated, time_outs, extras)``, auto-reset inside ``step``),
``source/isaaclab/isaaclab/managers/reward_manager.py`` (``RewardManager.compute``: every term
is multiplied by ``dt`` and ``_step_reward`` holds it divided by ``dt`` again), and the asset
data of ``env.scene["robot"].data``: ``root_pos_w``, ``root_quat_w``, ``body_pos_w``,
``body_quat_w`` named by ``robot.body_names``.

- 2.x: torch tensors, quaternions wxyz; they are views of lazily refreshed buffers.
- 3.0: ``ProxyArray`` (``source/isaaclab/isaaclab/utils/warp/proxy_array.py``) whose ``.torch``
  is a cached zero-copy view of the simulator's warp array, which the next step overwrites;
  quaternions xyzw.

Either way `pose` copies the four tensors on the device (no host sync) so the recorded pose is
the one that belongs with the obs the policy saw.
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.base import QUAT_ORDERS, loaded_class
from rollrec.adapters.managers import ManagerBasedAdapter, find_manager_based
from rollrec.adapters.warp_streams import torch_waits_for_warp


def as_torch(value: Any) -> torch.Tensor:
    """A torch view of an asset data field: a tensor, a 3.0 ``ProxyArray`` (``.torch``) or a warp array.

    For Warp memory, torch's current stream first waits for Warp's (`rollrec.adapters.warp_streams`).
    """
    if isinstance(value, torch.Tensor):
        return value
    view = getattr(value, "torch", None)
    if isinstance(view, torch.Tensor):
        torch_waits_for_warp(getattr(value, "warp", None))
        return view
    wp = loaded_class("warp", "array")
    if wp is not None and isinstance(value, wp):
        import warp

        torch_waits_for_warp(value)
        return warp.to_torch(value)
    raise TypeError(f"expected a torch tensor, a ProxyArray or a warp array, got {type(value).__name__}")


class IsaacLabAdapter(ManagerBasedAdapter):
    """An Isaac Lab ``ManagerBasedRLEnv`` (usually from ``gym.make``; the wrapper chain is kept).

    Records ``obs`` (every group), per-env reward terms ``_step_reward * step_dt`` (they sum to
    ``rew``), terminations and time-outs apart, and the base and body poses of the entity
    (``"robot"`` by default) with ``body_names``. ``quat_order``: None detects it (torch data:
    2.x, wxyz; ``ProxyArray``/warp data: 3.0, xyzw); pass it to override.
    """

    key = "isaaclab"
    env_class = ("isaaclab.envs.manager_based_rl_env", "ManagerBasedRLEnv")
    reward_manager_class = ("isaaclab.managers.reward_manager", "RewardManager")

    def __init__(self, env: Any, *, entity: str | None = None, name: str | None = None, quat_order: str | None = None):
        super().__init__(env, entity=entity, name=name)
        if quat_order is not None and quat_order not in QUAT_ORDERS:
            raise ValueError(f"quat_order must be one of {QUAT_ORDERS}, got {quat_order!r}")
        if self.entity is not None:
            native = isinstance(self.entity.data.root_quat_w, torch.Tensor)
            self.quat_order = quat_order or ("wxyz" if native else "xyzw")
            self.meta["isaaclab_data"] = "torch (2.x)" if native else "ProxyArray (3.0)"

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        inner = find_manager_based(env)
        return inner is not None and not hasattr(getattr(inner, "sim", None), "mj_model")

    def term_scale(self) -> float:
        return self.dt

    def pose(self) -> dict[str, torch.Tensor]:
        if self.entity is None:
            return {}
        data = self.entity.data
        return {
            "base_pos": as_torch(data.root_pos_w).clone(),
            "base_quat": as_torch(data.root_quat_w).clone(),
            "link_pos": as_torch(data.body_pos_w).clone(),
            "link_quat": as_torch(data.body_quat_w).clone(),
        }
