"""mjlab (``mujocolab/mjlab``): manager-based RL envs on MuJoCo Warp.

Follows ``mjlab/envs/manager_based_rl_env.py`` (``ManagerBasedRlEnv.step``, ``reset``,
``step_dt``, ``cfg.auto_reset``), ``mjlab/managers/reward_manager.py`` (``RewardManager.compute``:
``_step_reward`` is the term divided by ``dt`` when ``scale_by_dt``, the default), and
``mjlab/entity/data.py`` (``EntityData.root_link_pose_w [N, 7]`` and ``body_link_pose_w
[N, B, 7]``: position then wxyz quaternion, each a new tensor built by ``torch.cat``).
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.managers import ManagerBasedAdapter, find_manager_based


class MjlabAdapter(ManagerBasedAdapter):
    """An mjlab ``ManagerBasedRlEnv`` (or a wrapper around one).

    Records obs (every group: ``actor``, ``critic``, ...), per-env reward terms scaled the way
    the env summed them (times ``step_dt`` when ``scale_rewards_by_dt``) so they add up to
    ``rew``, terminations and time-outs apart, and the pose of every body of the entity
    (``"robot"`` by default) with its name, wxyz. With ``cfg.auto_reset=False`` the adapter
    resets finished envs itself after the step (``env.reset(env_ids=...)``, one host sync for
    the indices, as mjlab's own step does) so the next obs is the reset one.

    For the model: ``mj_model`` (the scene's ``MjModel``) and ``link_body_ids`` (the ``MjModel``
    body id of each name in ``link_names``).
    """

    key = "mjlab"
    env_class = ("mjlab.envs.manager_based_rl_env", "ManagerBasedRlEnv")
    reward_manager_class = ("mjlab.managers.reward_manager", "RewardManager")

    def __init__(self, env: Any, *, entity: str | None = None, name: str | None = None):
        super().__init__(env, entity=entity, name=name)
        if self.entity is None:
            raise TypeError(f"MjlabAdapter: the scene of {type(self.env).__name__} has no entity with bodies to record")
        self.mj_model = self.env.sim.mj_model
        self.link_body_ids = [int(i) for i in self.entity.indexing.body_ids.tolist()]
        self.auto_reset = bool(getattr(self.env.cfg, "auto_reset", True))
        self.meta["auto_reset"] = self.auto_reset

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        inner = find_manager_based(env)
        return inner is not None and hasattr(getattr(inner, "sim", None), "mj_model")

    def term_scale(self) -> float:
        return self.dt if getattr(self.env.reward_manager, "_scale_by_dt", True) else 1.0

    def pose(self) -> dict[str, torch.Tensor]:
        data = self.entity.data
        root = data.root_link_pose_w  # [N, 7], a new tensor each read
        bodies = data.body_link_pose_w  # [N, B, 7]
        return {"base_pos": root[:, :3], "base_quat": root[:, 3:7],
                "link_pos": bodies[..., :3], "link_quat": bodies[..., 3:7]}

    def _finish_resets(self, done: torch.Tensor, obs: Any) -> Any:
        if self.auto_reset:
            return obs
        env_ids = done.nonzero(as_tuple=False).squeeze(-1)
        if env_ids.numel() == 0:
            return obs
        out = self.env.reset(env_ids=env_ids)
        return out[0] if isinstance(out, tuple) else out
