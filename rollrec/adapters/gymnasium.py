"""Gymnasium vector envs (``Farama-Foundation/Gymnasium``), MuJoCo ones with poses.

Follows ``gymnasium/vector/vector_env.py`` (``VectorEnv.step -> (obs, rewards, terminations,
truncations, infos)`` of numpy arrays; ``infos`` holds per-env arrays plus ``_<key>`` masks;
``metadata["autoreset_mode"]``) and ``gymnasium/vector/sync_vector_env.py`` (``SyncVectorEnv.envs``).
The MuJoCo envs (``gymnasium/envs/mujoco/*_v5.py``, e.g. ``AntEnv.step``) put their reward terms
in ``info["reward_<name>"]`` (they sum to the reward) and keep ``model``/``data`` on the
unwrapped env; their base pose is the free joint's ``qpos``.

Autoreset modes: ``SAME_STEP`` returns the reset obs in the step that ended the episode, and
moves the finished sub-env's info to ``info["final_info"]`` (masked by ``info["_final_info"]``)
while ``info`` holds the reset's: the terms of that last step are read from ``final_info``;
``NEXT_STEP`` (Gymnasium's default) resets an env on the *next* call, ignoring its action and
returning reward 0: such steps are recorded with the extra field ``autoreset`` set for that env;
``DISABLED``: the adapter resets finished envs itself (``reset(options={"reset_mask": done})``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rollrec.adapters.base import BaseAdapter, Step, loaded_class
from rollrec.adapters.mujoco import MuJoCoPoses


def autoreset_mode(env: Any) -> str:
    mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode")
    return str(getattr(mode, "value", mode or "NextStep"))


class GymVectorAdapter(BaseAdapter):
    """A Gymnasium ``VectorEnv`` (numpy in, numpy out).

    Terms: ``info["reward_<name>"]`` ``[N]`` arrays (float32 in the file). Actions may be torch
    tensors (moved to numpy). Poses: for a ``SyncVectorEnv`` of MuJoCo envs, `MuJoCoPoses` of the
    sub-envs' ``model``/``data`` (base = free joint, every body with its name; ``mj_model`` and
    ``link_body_ids`` for the model); none otherwise (the file keeps the format's constant base).
    """

    key = "gymnasium"
    duck_attributes = ("num_envs", "single_action_space", "step", "reset")

    def __init__(self, env: Any, *, name: str | None = None, poses: bool = True):
        super().__init__()
        self.env = env
        self.num_envs = int(env.num_envs)
        self.dt = _dt(env)
        spec = getattr(env, "spec", None)
        self.name = name or getattr(spec, "id", None) or type(env).__name__
        self.autoreset = autoreset_mode(env)
        self.meta = {"autoreset_mode": self.autoreset}
        self.poses = _mujoco_poses(env) if poses else None
        if self.poses is not None:
            self.link_names = self.poses.link_names
            self.mj_model = self.poses.mj_model
            self.link_body_ids = self.poses.link_body_ids
            self.meta.update(self.poses.meta)
        self._pending = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: resets the next step does
        self.term_names: list[str] | None = None

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        real = loaded_class("gymnasium.vector.vector_env", "VectorEnv")
        return real is not None and isinstance(env, real)

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        return all(hasattr(env, a) for a in cls.duck_attributes)

    def reset(self) -> Any:
        out = self.env.reset()
        self._pending[:] = False
        return out[0] if isinstance(out, tuple) else out

    def pose(self) -> dict[str, torch.Tensor]:
        return self.poses() if self.poses is not None else {}

    def step(self, action: Any) -> Step:
        if isinstance(action, torch.Tensor):
            action = action.detach().cpu().numpy()
        obs, rew, terminated, truncated, info = self.env.step(action)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        done = terminated | truncated
        terms = self._reward_terms(info or {})
        extras = {}
        if self.autoreset == "NextStep":
            extras["autoreset"] = self._pending.copy()
            self._pending = done.copy()
        elif self.autoreset == "Disabled" and done.any():
            out = self.env.reset(options={"reset_mask": done})
            obs = out[0] if isinstance(out, tuple) else out
        return Step(obs, np.asarray(rew), done, truncated, terms, extras)

    def _reward_terms(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        """``info["reward_<name>"]`` per env. An env whose episode ended this step under SAME_STEP
        has its step's info in ``info["final_info"]`` (the top level holds the reset's); an env
        neither covers (its ``_reward_<name>`` masks are False, e.g. a NEXT_STEP reset step) gets
        0, as its reward is. The names are fixed by the first step."""
        terms = _masked_terms(info, self.num_envs)
        final = info.get("final_info")
        if isinstance(final, dict):
            for name, (value, mask) in _masked_terms(final, self.num_envs).items():
                value0, mask0 = terms.get(name, (np.zeros(self.num_envs, np.float32), np.zeros(self.num_envs, bool)))
                terms[name] = (np.where(mask0, value0, value).astype(np.float32), mask0 | mask)
        terms = {name: np.where(mask, value, 0.0).astype(np.float32) for name, (value, mask) in terms.items()}
        if self.term_names is None:
            self.term_names = list(terms)
        zeros = np.zeros(self.num_envs, np.float32)
        return {name: terms.get(name, zeros) for name in self.term_names}


def _masked_terms(info: dict[str, Any], num_envs: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (value [N] float32, mask [N] bool)}`` of the ``reward_<name>`` entries of a
    vector info (``_reward_<name>`` is the mask; all True when absent)."""
    terms = {}
    for key, value in info.items():
        arr = np.asarray(value)
        if key.startswith("reward_") and arr.shape == (num_envs,) and arr.dtype.kind in "biuf":
            mask = info.get("_" + key)
            mask = np.ones(num_envs, bool) if mask is None else np.asarray(mask, dtype=bool)
            terms[key[len("reward_"):]] = (arr.astype(np.float32), mask)
    return terms


def _dt(env: Any) -> float:
    try:
        values = env.get_attr("dt")
        return float(values[0])
    except (AttributeError, IndexError, NotImplementedError, TypeError, ValueError):  # not every vector env forwards attributes
        fps = (getattr(env, "metadata", None) or {}).get("render_fps")
        return float(getattr(env, "dt", None) or (1.0 / fps if fps else 1 / 30))


def _mujoco_poses(env: Any) -> MuJoCoPoses | None:
    subs = getattr(env, "envs", None)
    if not subs:
        return None
    inner = [getattr(e, "unwrapped", e) for e in subs]
    models = [getattr(e, "model", None) for e in inner]
    datas = [getattr(e, "data", None) for e in inner]
    if any(m is None or d is None for m, d in zip(models, datas)) or type(models[0]).__name__ != "MjModel":
        return None
    return MuJoCoPoses(models[0], datas)
