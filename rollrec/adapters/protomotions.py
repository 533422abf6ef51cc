"""ProtoMotions (``NVlabs/ProtoMotions``) envs.

Follows ``protomotions/envs/base_env/env.py``: ``BaseEnv.step(action)`` returns ``(obs_dict,
rew_buf, reset_buf, terminate_buf, extras)`` and does not reset anything; ``BaseEnv.reset(env_ids)``
resets the given envs, clears ``reset_buf``/``terminate_buf`` for them *in place* and returns
``(obs_dict, {})``. ``reset_buf`` is set by time-outs and terminations, ``terminate_buf`` by
terminations only (``check_resets_and_terminations``). Per-env terms are in ``extras`` as
``raw_r/<name>`` and, weighted and clamped, ``scaled_r/<name>``, plus ``multiplicative_reward``
when a term is multiplicative (``protomotions/envs/base_env/utils.py``, ``combine_rewards``:
``rew = sum(scaled_r/*) + multiplicative_reward``). The agent
(``protomotions/agents/base_agent/agent.py``, the collection loop of ``fit``) calls
``env.reset(done_indices)`` with ``done_indices = dones.nonzero()`` before every step. Poses from
``simulator.get_root_state()`` (``root_pos``, ``root_rot``) and ``simulator.get_bodies_state()``
(``rigid_body_pos``, ``rigid_body_rot``), quaternions xyzw
(``protomotions/simulator/base_simulator/simulator.py``); body names at
``robot_config.kinematic_info.body_names``.
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.base import BaseAdapter, Step, as_field_dict, loaded_class

SCALED = "scaled_r/"


class ProtoMotionsAdapter(BaseAdapter):
    """A ProtoMotions ``BaseEnv`` (or subclass).

    ``done = reset_buf``, ``truncated = reset_buf & ~terminate_buf``, terms from
    ``extras["scaled_r/<name>"]`` (and ``multiplicative`` when present), link poses of every body
    with its name, xyzw. After each step the adapter resets the finished envs the way the
    ProtoMotions agent does (``env.reset(done_indices)``: one host sync for the indices, as in the
    agent), so ``Step.obs`` is the obs after those resets; ``done``/``truncated`` are copied first
    because the reset clears the env's buffers. Poses are copied on the device (a simulator
    backend may return views of its state, e.g. Newton's ``wp.to_torch``).
    """

    key = "protomotions"
    quat_order = "xyzw"
    duck_attributes = ("get_obs", "simulator", "reset_buf", "terminate_buf")

    def __init__(self, env: Any, *, name: str | None = None):
        super().__init__()
        self.env = env
        self.simulator = env.simulator
        self.num_envs = int(env.num_envs)
        self.dt = float(env.dt)
        self.name = name or type(env).__name__
        robot_config = getattr(env, "robot_config", None) or getattr(self.simulator, "robot_config", None)
        names = getattr(getattr(robot_config, "kinematic_info", None), "body_names", None)
        self.link_names = [str(n) for n in names] if names is not None else None
        self.term_names: list[str] | None = None

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        real = loaded_class("protomotions.envs.base_env.env", "BaseEnv")
        return real is not None and isinstance(env, real)

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        return all(hasattr(env, a) for a in cls.duck_attributes)

    def reset(self) -> Any:
        obs, _ = self.env.reset()
        return obs

    def pose(self) -> dict[str, torch.Tensor]:
        root = self.simulator.get_root_state()
        bodies = self.simulator.get_bodies_state()
        return {
            "base_pos": root.root_pos.clone(), "base_quat": root.root_rot.clone(),
            "link_pos": bodies.rigid_body_pos.clone(), "link_quat": bodies.rigid_body_rot.clone(),
        }

    def step(self, action: Any) -> Step:
        obs, rew, reset_buf, terminate_buf, extras = self.env.step(action)
        done = reset_buf.bool().clone()
        truncated = done & ~terminate_buf.bool()
        terms = self._reward_terms(extras)
        done_indices = done.nonzero(as_tuple=False).squeeze(-1)
        if done_indices.numel() > 0:
            obs, _ = self.env.reset(done_indices)
        return Step(obs, rew, done, truncated, terms)

    def _reward_terms(self, extras: dict[str, Any]) -> dict[str, torch.Tensor]:
        terms = {key[len(SCALED):]: value for key, value in extras.items() if key.startswith(SCALED)}
        if "multiplicative_reward" in extras:
            terms["multiplicative"] = extras["multiplicative_reward"]
        if self.term_names is None:
            self.term_names = list(terms)
            if not terms:
                self.meta["reward_terms_note"] = "the env's extras held no scaled_r/<name> entries"
        return terms

    def record_obs(self, obs: Any) -> Any:
        return as_field_dict(obs)
