"""The built-in `WalkerEnv` (rollrec's own demo env)."""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.base import BaseAdapter, Step
from rollrec.envs.walker import WalkerEnv


class WalkerAdapter(BaseAdapter):
    """`WalkerEnv`: base pose, link poses (wxyz) and the per-env terms of ``info["reward_terms"]``.

    The walker replaces its state tensors every step (it never writes into them), so `pose`
    hands them over without a copy.
    """

    key = "walker"
    duck_attributes = ("link_poses", "link_parents", "base_pos", "base_quat")

    def __init__(self, env: WalkerEnv):
        super().__init__()
        self.env = env
        self.num_envs = env.num_envs
        self.dt = env.dt
        self.name = env.name
        self.link_names = list(env.link_names)
        self.meta = {"link_parents": list(env.link_parents), "seed": env.seed}

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        return isinstance(env, WalkerEnv)

    def reset(self) -> torch.Tensor:
        return self.env.reset()

    def pose(self) -> dict[str, torch.Tensor]:
        link_pos, link_quat = self.env.link_poses()
        return {"base_pos": self.env.base_pos, "base_quat": self.env.base_quat, "link_pos": link_pos, "link_quat": link_quat}

    def step(self, action: torch.Tensor) -> Step:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return Step(obs, rew, terminated | truncated, truncated, info["reward_terms"])
