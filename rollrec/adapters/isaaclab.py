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

from rollrec.adapters.base import QUAT_ORDERS, BaseAdapter, Step, as_field_dict, loaded_class, unwrap_chain
from rollrec.adapters.managers import ManagerBasedAdapter, find_manager_based, is_rsl_rl_wrapper, pick_entity
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
        """The robot's data as the obs were computed from it (2.x: after ``sim.forward()`` on reset;
        the newest step skips it, so a reset env's body poses are what the asset data held then)."""
        return _entity_pose(self.entity)


def find_direct(env: Any) -> Any:
    """The ``DirectRLEnv`` inside ``env``'s wrapper chain (by class, else by its buffers), or None."""
    real = loaded_class("isaaclab.envs.direct_rl_env", "DirectRLEnv")
    chain = unwrap_chain(env)
    if real is not None:
        found = next((e for e in chain if isinstance(e, real)), None)
        if found is not None:
            return found
    return next((e for e in chain if all(hasattr(e, a) for a in IsaacLabDirectAdapter.duck_attributes)
                 and not hasattr(e, "reward_manager")), None)


class IsaacLabDirectAdapter(BaseAdapter):
    """An Isaac Lab ``DirectRLEnv`` (``source/isaaclab/isaaclab/envs/direct_rl_env.py``), stepped
    through what the user holds: a ``gym.make`` chain, or ``RslRlVecEnvWrapper`` as in
    ``scripts/reinforcement_learning/rsl_rl/play.py`` (first obs ``env.get_observations()``, its
    ``torch.clamp`` of the actions, its TensorDict obs handed to the policy).

    ``DirectRLEnv.step`` starts with ``action = action.to(self.device)``: actions stay torch tensors.
    ``rew`` = ``reward_buf``; ``done`` = ``reset_terminated | reset_time_outs`` (read after the step,
    before anything resets them), ``truncated`` = ``reset_time_outs``. A direct env has no reward
    manager: its tasks log only means in ``extras["log"]``, so no per-env terms are recorded
    (``meta["reward_terms_note"]``). The action recorded is the one the env received (the
    wrapper's clamp applied). Poses as `IsaacLabAdapter`, from ``env.scene`` (``"robot"`` or the
    first articulation).
    """

    key = "isaaclab_direct"
    duck_attributes = ("reset_terminated", "reset_time_outs", "reward_buf", "scene", "step_dt")

    def __init__(self, env: Any, *, entity: str | None = None, name: str | None = None, quat_order: str | None = None):
        super().__init__()
        self.env = find_direct(env)
        if self.env is None:
            raise TypeError(f"IsaacLabDirectAdapter: {type(env).__name__} holds no DirectRLEnv "
                            f"(looked for {', '.join(self.duck_attributes)})")
        self.stepper, self.rsl = env, is_rsl_rl_wrapper(env)
        self.clip = getattr(env, "clip_actions", None) if self.rsl else None
        self.num_envs = int(self.env.num_envs)
        self.dt = float(self.env.step_dt)
        cfg = getattr(self.env, "cfg", None)
        spec = getattr(env, "spec", None) or getattr(self.env, "spec", None)
        self.name = name or getattr(spec, "id", None) or (type(cfg).__name__ if cfg is not None else type(self.env).__name__)
        self.entity_name, self.entity = pick_entity(self.env.scene, entity)
        self.link_names = [str(n) for n in self.entity.body_names] if self.entity is not None else None
        if self.entity is not None:
            native = isinstance(self.entity.data.root_quat_w, torch.Tensor)
            self.quat_order = quat_order or ("wxyz" if native else "xyzw")
        self.meta.update(entity=self.entity_name, stepped=type(env).__name__,
                         reward_terms_note="DirectRLEnv has no reward manager: extras['log'] holds means only")

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        real = loaded_class("isaaclab.envs.direct_rl_env", "DirectRLEnv")
        return real is not None and any(isinstance(e, real) for e in unwrap_chain(env))

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        return find_direct(env) is not None

    def reset(self) -> Any:
        if self.rsl:
            return self.stepper.get_observations()
        out = self.stepper.reset()
        return out[0] if isinstance(out, tuple) else out

    def pose(self) -> dict[str, torch.Tensor]:
        return _entity_pose(self.entity)

    def step(self, action: Any) -> Step:
        if not isinstance(action, torch.Tensor):
            action = torch.as_tensor(action)
        applied = torch.clamp(action, -self.clip, self.clip) if self.clip is not None else None
        out = self.stepper.step(action)
        obs, rew = out[0], out[1]
        terminated = self.env.reset_terminated.bool().clone()
        time_outs = self.env.reset_time_outs.bool().clone()
        return Step(obs, rew, terminated | time_outs, time_outs, {}, act=applied)

    def record_obs(self, obs: Any) -> Any:
        return as_field_dict(obs)


def _entity_pose(entity: Any) -> dict[str, torch.Tensor]:
    if entity is None:
        return {}
    data = entity.data
    return {"base_pos": as_torch(data.root_pos_w).clone(), "base_quat": as_torch(data.root_quat_w).clone(),
            "link_pos": as_torch(data.body_pos_w).clone(), "link_quat": as_torch(data.body_quat_w).clone()}
