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
from pathlib import Path
from typing import Any

import torch

from rollrec.adapters.base import BaseAdapter, Step, as_field_dict
from rollrec.adapters.pose_source import PoseSource


class GenesisPoses(PoseSource):
    """Poses of a Genesis ``RigidEntity`` of a scene built with ``n_envs`` envs (wxyz).

    ``links``: local link indices to record (default all, in ``entity.links`` order).

    The pose is that of the entity's joint coordinates, ``entity.get_qpos()``: Genesis' link state
    is only brought up to date by ``scene.step``, so after ``set_qpos(..., skip_forward=True)``
    (``examples/locomotion/go2_env.py`` ``Go2Env._reset_idx``; ``genesis/engine/solvers/rigid/
    rigid_solver.py`` ``RigidSolver.set_qpos`` writes ``qpos`` alone) ``get_pos``/``get_links_pos``
    still return the pre-reset pose while the obs already describe the reset one. Genesis' own
    query (``KinematicSolver.forward_kinematics_query``) writes the solver's link state, which
    rollrec never does. So: the base is the free joint's 7 coordinates, and for an entity loaded
    from a URDF the links come from `rollrec.model.urdf_kinematics.UrdfKinematics` of that URDF
    and the coordinates; the robot's model is stored from the same URDF (`recorder_kwargs`).
    For other entities the links are Genesis' link state (``meta["links"]`` says so).
    """

    quat_order = "wxyz"

    def __init__(self, entity: Any, links: list[int] | None = None):
        all_links = list(entity.links)
        self.links = None if links is None else [int(i) for i in links]
        chosen = all_links if self.links is None else [all_links[i] for i in self.links]
        super().__init__([str(link.name) for link in chosen], {"entity": str(getattr(entity, "name", "") or "robot")})
        self.entity = entity
        joints = [j for link in all_links for j in getattr(link, "joints", ())]
        q_start = int(getattr(entity, "q_start", 0))
        self.free = bool(joints) and _joint_type(joints[0]) == "FREE"
        self.urdf = _urdf_file(entity)
        self.kinematics = None
        if self.urdf is not None and self.free:
            from rollrec.model.urdf_kinematics import UrdfKinematics

            moving = [j for j in joints if _joint_type(j) in ("REVOLUTE", "PRISMATIC")]
            self._q_cols = [int(j.q_start) - q_start for j in moving]
            self.kinematics = UrdfKinematics(self.urdf, self.link_names, [str(j.name) for j in moving])
            self.meta["links"] = f"forward kinematics of {self.urdf.name} at the entity's qpos"
        else:
            self.meta["links"] = "Genesis' link state (stale after set_qpos(skip_forward=True) until the next step)"
        self.meta["base"] = "free joint qpos" if self.free else "Genesis' base link state"

    def __call__(self) -> dict[str, torch.Tensor]:
        e = self.entity
        if self.free:
            qpos = e.get_qpos()
            qpos = qpos.unsqueeze(0) if qpos.dim() == 1 else qpos  # a scene built without n_envs: one env
            base_pos = qpos[:, :3].clone()
            base_quat = qpos[:, 3:7] / qpos[:, 3:7].norm(dim=-1, keepdim=True)  # normalised, as Genesis' kinematics
        else:
            base_pos, base_quat = _batched(e.get_pos(), 2), _batched(e.get_quat(), 2)
        if self.kinematics is not None:
            link_pos, link_quat = self.kinematics(base_pos, base_quat, qpos[:, self._q_cols])
        else:
            link_pos, link_quat = _batched(e.get_links_pos(self.links), 3), _batched(e.get_links_quat(self.links), 3)
        return {"base_pos": base_pos, "base_quat": base_quat, "link_pos": link_pos, "link_quat": link_quat}

    def robot_model(self) -> Any:
        """The `RobotModel` of the entity's URDF for the recorded links, or None (not a URDF)."""
        if self.urdf is None:
            return None
        from rollrec.model.urdf import model_from_urdf

        return model_from_urdf(self.urdf, link_names=self.link_names)

    def recorder_kwargs(self) -> dict[str, Any]:
        """As `PoseSource.recorder_kwargs`, plus the robot's ``model`` from its URDF when it has one."""
        kwargs = super().recorder_kwargs()
        model = self.robot_model()
        if model is not None:
            kwargs["model"] = model
        return kwargs


def _batched(t: torch.Tensor, dims: int) -> torch.Tensor:
    return t.unsqueeze(0) if t.dim() == dims - 1 else t


def _joint_type(joint: Any) -> str:
    kind = getattr(joint, "type", None)
    return str(getattr(kind, "name", kind)).upper().rsplit(".", 1)[-1]


def _urdf_file(entity: Any) -> Path | None:
    """The URDF the entity was loaded from (Genesis resolves asset paths against its assets folder)."""
    file = getattr(getattr(entity, "morph", None), "file", None)
    if not file or not str(file).lower().endswith(".urdf"):
        return None
    path = Path(file)
    if not path.is_absolute() and not path.exists():
        try:
            from genesis.utils.misc import get_assets_dir

            path = Path(get_assets_dir()) / path
        except ImportError:
            return None
    return path if path.exists() else None


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
        self.meta.update(self.poses.meta)
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

    def robot_model(self) -> Any:
        return self.poses.robot_model()

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
