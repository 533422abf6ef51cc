"""The ProtoMotions-Genesis fork (``hshintree/ProtoMotions-Genesis`` at 80d20e3): the original tool's framework.

Its contract differs from NVlabs' current ProtoMotions (`rollrec.adapters.protomotions`):

- ``protomotions/envs/base_env/env.py`` ``BaseEnv.step(actions)`` returns 4 values ``(obs, rew_buf,
  reset_buf, extras)`` with ``extras["terminate"]`` (= ``terminate_buf``) and ``extras["to_log"]``
  (``log_dict``, means over envs); ``BaseEnv.reset(env_ids)`` returns the obs only; ``get_obs()``
  the current obs. ``compute_humanoid_reset`` (``env_utils/humanoid_utils.py``): ``reset`` = time
  limit (``progress_buf >= max_episode_length - 1``) | terminated.
- ``protomotions/agents/ppo/agent.py``: ``handle_reset(done_indices)`` = ``env.reset(done_indices)``
  before each step, ``env_step`` reads ``extras["terminate"]``.
- Reward terms exist only as env means: mimic envs (``envs/mimic/env.py`` ``compute_reward``) log
  ``log_dict["scaled/<name>_mean"]`` and ``["raw/<name>_mean"]``. Per-env terms are recorded where
  the env keeps them (``env.last_scaled_rewards``: ``{name: [N]}``), else the scaled means (the raw
  ones where no scaled ones exist), broadcast to every env and marked ``reward_terms_are_env_means``.
- Poses: ``env.simulator.get_root_state()`` (``root_pos``, ``root_rot``) and ``get_bodies_state()``
  (``rigid_body_pos``, ``rigid_body_rot``), xyzw (``simulator/base_simulator/robot_state.py``
  ``convert_to_common``); names ``env.simulator.robot_config.body_names``.
- The original recorder (``extras/rollout_recorder.py``) started from ``env.get_obs()`` and called
  ``policy(obs_dict, deterministic=True)``: so does this adapter (``policy_kwargs``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from rollrec.adapters.base import BaseAdapter, Step, as_field_dict
from rollrec.adapters.protomotions import END_REASONS, end_reasons


class ProtoMotionsGenesisAdapter(BaseAdapter):
    """An env of the ProtoMotions-Genesis fork, in its agent's loop (finished envs reset before the
    next step, ``env.reset(done_indices)``); see the module docstring."""

    key = "protomotions_genesis"
    quat_order = "xyzw"
    duck_attributes = ("get_obs", "simulator", "reset_buf", "terminate_buf", "self_obs_cb")
    policy_kwargs: ClassVar[dict[str, Any]] = {"deterministic": True}

    def __init__(self, env: Any, *, name: str | None = None):
        super().__init__()
        self.env, self.simulator = env, env.simulator
        self.num_envs = int(env.num_envs)
        self.dt = float(env.dt)
        self.name = name or type(env).__name__
        names = getattr(getattr(self.simulator, "robot_config", None), "body_names", None)
        self.link_names = [str(n) for n in names] if names is not None else None
        self.term_names: list[str] | None = None
        self.meta.update(loop="training (agent.handle_reset before each step)",
                         end_reasons={str(k): v for k, v in END_REASONS.items()})

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        return all(hasattr(env, a) for a in cls.duck_attributes)

    def reset(self) -> Any:
        return self.env.get_obs()

    def pose(self) -> dict[str, torch.Tensor]:
        root = self.simulator.get_root_state()
        bodies = self.simulator.get_bodies_state()
        return {"base_pos": root.root_pos.clone(), "base_quat": root.root_rot.clone(),
                "link_pos": bodies.rigid_body_pos.clone(), "link_quat": bodies.rigid_body_rot.clone()}

    def step(self, action: Any) -> Step:
        obs, rew, reset_buf, extras = self.env.step(action)
        done = reset_buf.bool().clone()
        terminated = torch.as_tensor(extras["terminate"]).bool().clone() & done
        time_limit = done & ~terminated & (self.env.progress_buf >= self.env.config.max_episode_length - 1)
        terms = self._reward_terms(extras.get("to_log", {}), rew)
        done_indices = done.nonzero(as_tuple=False).squeeze(-1)
        if done_indices.numel() > 0:
            obs = self.env.reset(done_indices)
        return Step(obs, rew, done, time_limit, terms, {"end_reason": end_reasons(done, terminated, time_limit)})

    def _reward_terms(self, log: dict[str, Any], rew: torch.Tensor) -> dict[str, torch.Tensor]:
        per_env = getattr(self.env, "last_scaled_rewards", None)
        if isinstance(per_env, dict) and per_env:
            self.meta.setdefault("reward_terms", "per env: env.last_scaled_rewards")
            return {str(k): torch.as_tensor(v) for k, v in per_env.items()}
        prefix = "scaled/" if any(k.startswith("scaled/") and k.endswith("_mean") for k in log) else "raw/"
        terms = {k[len(prefix):-len("_mean")]: torch.as_tensor(v, dtype=torch.float32, device=rew.device).expand(self.num_envs)
                 for k, v in log.items() if k.startswith(prefix) and k.endswith("_mean")}
        if terms:
            self.meta.update(reward_terms_are_env_means=True, reward_terms=f"log_dict['{prefix}<name>_mean'] broadcast to every env")
        return terms

    def record_obs(self, obs: Any) -> Any:
        return as_field_dict(obs)
