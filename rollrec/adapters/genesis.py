"""Genesis (``Genesis-Embodied-AI/Genesis``, package ``genesis-world``).

Genesis has no env class: users write their own around a ``gs.Scene`` (its examples, e.g.
``examples/locomotion/go2_env.py`` ``Go2Env``, follow legged_gym). Two pieces:

- `GenesisPoses(entity)`: the pose source of a rigid entity, from
  ``genesis/engine/entities/rigid_entity/rigid_entity.py`` ``RigidEntity.get_pos``,
  ``get_quat`` (wxyz), ``get_links_pos``, ``get_links_quat`` and ``links[i].name``. They return
  new tensors (``rigid_solver.py`` ``get_links_pos`` reads with ``copy=True``), so nothing is
  copied again.
- `GenesisEnvAdapter(env)`: an env in the style of Genesis' examples: ``step(actions) ->
  (obs, rew_buf, reset_buf, extras)`` with ``extras["time_outs"]``, resets inside ``step``,
  ``reset() -> obs``, ``robot`` the entity, ``dt``, ``num_envs``, and per-term reward functions
  in ``reward_functions`` weighted by ``reward_scales`` (``rew_buf = sum(func() * scale)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rollrec.adapters.base import BaseAdapter, Step, as_field_dict
from rollrec.adapters.pose_source import PoseSource


class GenesisPoses(PoseSource):
    """Poses of a Genesis ``RigidEntity`` of a scene built with ``n_envs`` envs (wxyz).

    ``links``: local link indices to record (default all, in ``entity.links`` order).
    """

    quat_order = "wxyz"

    def __init__(self, entity: Any, links: list[int] | None = None):
        all_links = list(entity.links)
        self.links = None if links is None else [int(i) for i in links]
        chosen = all_links if self.links is None else [all_links[i] for i in self.links]
        super().__init__([str(link.name) for link in chosen], {"entity": str(getattr(entity, "name", "") or "robot")})
        self.entity = entity

    def __call__(self) -> dict[str, torch.Tensor]:
        e = self.entity
        out = {
            "base_pos": e.get_pos(), "base_quat": e.get_quat(),
            "link_pos": e.get_links_pos(self.links), "link_quat": e.get_links_quat(self.links),
        }
        if out["base_pos"].dim() == 1:  # a scene built without n_envs: one env, no env axis
            out = {k: v.unsqueeze(0) for k, v in out.items()}
        return out


class GenesisEnvAdapter(BaseAdapter):
    """An env in the style of Genesis' examples (see the module docstring).

    Terms: each entry of ``env.reward_functions`` is wrapped (once, in place) to keep the value
    the env itself computed this step; the term is that value times ``env.reward_scales[name]``,
    exactly what the env added to ``rew_buf``. ``done = reset_buf``, ``truncated =
    extras["time_outs"]`` (within ``done``). Poses from `GenesisPoses` of ``env.robot``.
    """

    key = "genesis"
    duck_attributes = ("scene", "robot", "reward_functions", "reward_scales")

    def __init__(self, env: Any, *, name: str | None = None):
        super().__init__()
        self.env = env
        self.num_envs = int(env.num_envs)
        self.dt = float(env.dt)
        self.name = name or type(env).__name__
        self.poses = GenesisPoses(env.robot)
        self.link_names = self.poses.link_names
        self.quat_order = self.poses.quat_order
        self._last: dict[str, torch.Tensor] = {}
        for term, func in list(env.reward_functions.items()):
            env.reward_functions[term] = self._keep(term, func)

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        scene = getattr(env, "scene", None)
        return (type(scene).__module__.startswith("genesis") and hasattr(getattr(env, "robot", None), "get_links_pos")
                and isinstance(getattr(env, "reward_functions", None), dict))

    def _keep(self, term: str, func: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def kept() -> torch.Tensor:
            value = func()
            self._last[term] = value
            return value

        kept.__wrapped__ = func  # type: ignore[attr-defined]
        return kept

    def reset(self) -> Any:
        out = self.env.reset()
        return out[0] if isinstance(out, tuple) else out

    def pose(self) -> dict[str, torch.Tensor]:
        return self.poses()

    def step(self, action: Any) -> Step:
        self._last.clear()
        obs, rew, reset_buf, extras = self.env.step(action)
        done = reset_buf.bool().clone()
        time_outs = extras.get("time_outs") if isinstance(extras, dict) else None
        truncated = done & time_outs.bool() if time_outs is not None else torch.zeros_like(done)
        scales = self.env.reward_scales
        terms = {term: value * scales[term] for term, value in self._last.items()}
        return Step(obs, rew, done, truncated, terms)

    def record_obs(self, obs: Any) -> Any:
        return as_field_dict(obs)
