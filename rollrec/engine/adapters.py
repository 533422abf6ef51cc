"""Env adapters: one small class per family of env, all giving `RolloutRecorder` the same view.

An adapter exposes ``num_envs``, ``dt``, ``name``, ``quat_order``, ``link_names``, ``meta`` and:

- ``reset() -> obs``;
- ``pose() -> dict`` of the pose fields of the current state (``base_pos``, ``base_quat``,
  ``link_pos``, ``link_quat``; any may be missing);
- ``step(action) -> Step`` with the next obs, ``rew [N]``, ``done [N]``, ``truncated [N]`` and
  ``reward_terms {name: [N]}``.

`adapt` picks the adapter for an env: the built-in `WalkerEnv`, a ProtoMotions-style env
(``get_obs()``, ``step() -> (obs, rew, done, info)`` or a 5-tuple, ``simulator``), or a
Gymnasium vector env (numpy, ``reward_*`` entries of ``info`` as terms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rollrec.envs.walker import WalkerEnv


@dataclass
class Step:
    obs: Any
    rew: Any
    done: Any
    truncated: Any
    reward_terms: dict[str, Any] = field(default_factory=dict)


class WalkerAdapter:
    """The built-in `WalkerEnv`: full pose, link poses and per-env reward terms."""

    quat_order = "wxyz"

    def __init__(self, env: WalkerEnv):
        self.env = env
        self.num_envs = env.num_envs
        self.dt = env.dt
        self.name = env.name
        self.link_names = list(env.link_names)
        self.meta = {"link_parents": list(env.link_parents)}

    def reset(self) -> torch.Tensor:
        return self.env.reset()

    def pose(self) -> dict[str, torch.Tensor]:
        link_pos, link_quat = self.env.link_poses()
        return {"base_pos": self.env.base_pos, "base_quat": self.env.base_quat, "link_pos": link_pos, "link_quat": link_quat}

    def step(self, action: torch.Tensor) -> Step:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return Step(obs, rew, terminated | truncated, truncated, info["reward_terms"])


class ProtoMotionsAdapter:
    """A ProtoMotions-style env.

    Obs from ``get_obs()`` (a tensor or a dict); ``step(action)`` returns ``(obs, rew, done, info)``
    or ``(obs, rew, done, truncated, info)``; without a truncated entry, ``info["time_outs"]`` or
    ``info["truncated"]`` is used. Reward terms are the ``[N]`` tensors of ``info["to_log"]``
    (or ``info["log_dict"]``, ``env.log_dict``); scalar entries there are env means, broadcast to
    every env and flagged in ``meta``. Base pose from ``simulator.get_root_state()``
    (``root_pos``, ``root_rot`` xyzw), links from ``simulator.get_bodies_state()``
    (``rigid_body_pos``, ``rigid_body_rot``).
    """

    quat_order = "xyzw"

    def __init__(self, env: Any):
        self.env = env
        self.num_envs = int(getattr(env, "num_envs", 0) or _first_dim(env.get_obs()))
        self.dt = float(getattr(env, "dt", None) or getattr(getattr(env, "config", None), "dt", None) or 1 / 30)
        self.name = type(env).__name__
        sim = getattr(env, "simulator", None)
        self.link_names = None
        if sim is not None and hasattr(sim, "get_bodies_state"):
            names = getattr(sim, "body_names", None) or getattr(getattr(sim, "robot_config", None), "body_names", None)
            self.link_names = list(names) if names else None
        self.meta: dict[str, Any] = {}

    def reset(self) -> Any:
        out = self.env.reset() if hasattr(self.env, "reset") else None
        return self.env.get_obs() if hasattr(self.env, "get_obs") else out

    def pose(self) -> dict[str, Any]:
        sim = getattr(self.env, "simulator", None)
        if sim is None:
            return {}
        out: dict[str, Any] = {}
        if hasattr(sim, "get_root_state"):
            root = sim.get_root_state()
            out["base_pos"], out["base_quat"] = _attr_or_key(root, "root_pos"), _attr_or_key(root, "root_rot")
        if hasattr(sim, "get_bodies_state"):
            bodies = sim.get_bodies_state()
            out["link_pos"], out["link_quat"] = _attr_or_key(bodies, "rigid_body_pos"), _attr_or_key(bodies, "rigid_body_rot")
        return out

    def step(self, action: Any) -> Step:
        result = self.env.step(action)
        if len(result) == 5:
            obs, rew, done, truncated, info = result
        else:
            obs, rew, done, info = result
            truncated = info.get("truncated", info.get("time_outs")) if isinstance(info, Mapping) else None
        if truncated is None:
            truncated = torch.zeros_like(torch.as_tensor(done), dtype=torch.bool)
        done = torch.as_tensor(done).bool() | torch.as_tensor(truncated).bool()
        logs = {}
        if isinstance(info, Mapping):
            logs = info.get("to_log") or info.get("log_dict") or {}
        logs = logs or getattr(self.env, "log_dict", {}) or {}
        terms = {}
        n = self.num_envs
        for key, value in logs.items():
            t = torch.as_tensor(value)
            if t.ndim == 1 and t.shape[0] == n:
                terms[key] = t
            elif t.numel() == 1:
                self.meta["reward_terms_are_env_means"] = True
                terms[key] = t.reshape(()).expand(n).to(done.device)
        return Step(obs, rew, done, truncated, terms)


class GymVectorAdapter:
    """A Gymnasium vector env: numpy obs (or dict), ``reset() -> (obs, info)``,
    ``step() -> (obs, rew, terminated, truncated, info)``; ``info["reward_<name>"]`` ``[N]`` arrays
    become reward terms. No pose: the file holds the format's constant base pose."""

    quat_order = "wxyz"

    def __init__(self, env: Any):
        self.env = env
        self.num_envs = int(env.num_envs)
        fps = (getattr(env, "metadata", None) or {}).get("render_fps")
        self.dt = float(getattr(env, "dt", None) or (1.0 / fps if fps else 1 / 30))
        spec = getattr(env, "spec", None)
        self.name = getattr(spec, "id", None) or type(env).__name__
        self.link_names = None
        self.meta: dict[str, Any] = {}

    def reset(self) -> Any:
        out = self.env.reset()
        return out[0] if isinstance(out, tuple) else out

    def pose(self) -> dict[str, Any]:
        return {}

    def step(self, action: Any) -> Step:
        if isinstance(action, torch.Tensor):
            action = action.detach().cpu().numpy()
        obs, rew, terminated, truncated, info = self.env.step(action)
        terms = {}
        for key, value in (info or {}).items():
            if key.startswith("reward_"):
                arr = np.asarray(value)
                if arr.shape == (self.num_envs,) and arr.dtype.kind in "biuf":
                    terms[key[len("reward_"):]] = arr.astype(np.float32)
        done = np.logical_or(terminated, truncated)
        return Step(obs, np.asarray(rew), done, np.asarray(truncated, dtype=bool), terms)


def adapt(env: Any):
    """The adapter for ``env`` (an adapter passes through)."""
    if hasattr(env, "pose") and hasattr(env, "quat_order") and hasattr(env, "step"):
        return env
    if isinstance(env, WalkerEnv):
        return WalkerAdapter(env)
    if hasattr(env, "get_obs") or hasattr(env, "simulator"):
        return ProtoMotionsAdapter(env)
    if hasattr(env, "num_envs") and hasattr(env, "single_action_space"):
        return GymVectorAdapter(env)
    raise TypeError(
        f"no adapter for {type(env).__name__}: expected rollrec's WalkerEnv, a ProtoMotions-style env "
        "(get_obs/step/simulator) or a Gymnasium vector env (num_envs, single_action_space)"
    )


def _first_dim(obs: Any) -> int:
    if isinstance(obs, Mapping):
        obs = next(iter(obs.values()))
    return int(obs.shape[0])


def _attr_or_key(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
