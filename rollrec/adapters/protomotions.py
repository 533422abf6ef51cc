"""ProtoMotions (``NVlabs/ProtoMotions`` at 607ca7a0) envs, in the loop you choose.

Follows ``protomotions/envs/base_env/env.py``: ``BaseEnv.step(action)`` returns ``(obs_dict,
rew_buf, reset_buf, terminate_buf, extras)`` and resets nothing; ``BaseEnv.reset(env_ids,
sample_flat=..., disable_motion_resample=...)`` resets the given envs, clears ``reset_buf``/
``terminate_buf`` for them *in place* and returns ``(obs_dict, {})``;
``check_resets_and_terminations``: ``reset_buf`` = time limit (``protomotions/envs/terminations/
base.py`` ``check_max_length_term``: ``progress_buf >= max_episode_length - 1``) | control-component
resets | terminations; ``terminate_buf`` = terminations. Per-env terms are ``extras["scaled_r/<name>"]``
(and ``multiplicative_reward``; ``protomotions/envs/base_env/utils.py`` ``combine_rewards``). Poses:
``simulator.get_root_state()`` (``root_pos``, ``root_rot``), ``get_bodies_state()``
(``rigid_body_pos``, ``rigid_body_rot``), xyzw; names ``robot_config.kinematic_info.body_names``.

Two loops, chosen with ``loop=`` (no default: they record different things):

- ``"evaluator"``: ``protomotions/agents/evaluators/base_evaluator.py``
  ``BaseEvaluator.evaluate_episode`` (and ``mimic_evaluator.py`` ``MimicEvaluator``): one
  ``env.reset(env_ids, **reset_kwargs)`` (``MimicEvaluator._get_reset_kwargs``: ``sample_flat=True,
  disable_motion_resample=True``), then finished envs are *never* reset. ``done`` is recorded at
  an env's first episode end; the steps it is stepped after that are marked ``past_end``.
- ``"training"``: ``protomotions/agents/base_agent/agent.py`` ``BaseAgent.fit``: finished envs are
  reset with ``env.reset(done_indices)`` before the next step, and the agent's
  ``post_env_step_modifications`` (``model.reset_rollout_context(env_ids=done)``) runs after each.

With ``agent=`` (a ProtoMotions agent) the policy gets what the agent's own loops give its model:
``agent.obs_dict_to_tensordict(agent.add_agent_info_to_obs(obs))`` after
``agent.pre_collect_step(step)``; `agent_policy` is the evaluator's ``_policy_action``.
``truncated`` is the time limit only; ``end_reason`` (per env, per step) says why an episode ended:
`END_REASONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rollrec.adapters.base import BaseAdapter, Step, as_field_dict, loaded_class

SCALED = "scaled_r/"
LOOPS = ("evaluator", "training")
#: ``end_reason`` codes: 0 the episode goes on, 1 terminated, 2 time limit, 3 another reset
#: (a control component's, a user reset).
END_REASONS = {0: "running", 1: "terminated", 2: "time limit", 3: "other reset"}
MIMIC_RESET_KWARGS = {"sample_flat": True, "disable_motion_resample": True}


def end_reasons(done: torch.Tensor, terminated: torch.Tensor, time_limit: torch.Tensor) -> torch.Tensor:
    """``[N]`` uint8 `END_REASONS` codes: termination first, then the time limit, else another reset."""
    reason = torch.where(time_limit, 2, 3).to(torch.uint8)
    reason = torch.where(terminated, torch.ones_like(reason), reason)
    return torch.where(done, reason, torch.zeros_like(reason))


def agent_policy(agent: Any) -> Callable[[Any], torch.Tensor]:
    """The evaluator's action choice (``BaseEvaluator._policy_action``): ``agent.model(obs_td)``'s
    ``"mean_action"`` when present, else its ``"action"``."""

    def policy(obs_td: Any) -> torch.Tensor:
        out = agent.model(obs_td)
        return out["mean_action"] if "mean_action" in out else out["action"]

    return policy


class ProtoMotionsAdapter(BaseAdapter):
    """A ProtoMotions ``BaseEnv`` (or subclass), in the ``loop`` you choose (module docstring).

    ``agent``: the ProtoMotions agent whose obs preparation the policy input follows (optional);
    ``reset_kwargs``: the evaluator loop's reset arguments (default ``MIMIC_RESET_KWARGS`` when the
    env has a motion manager, else none). ``done`` and ``terminated`` are copied before any reset
    (the env clears its buffers in place). Poses are copied on the device (a simulator backend may
    return views of its state, e.g. Newton's ``wp.to_torch``).
    """

    key = "protomotions"
    quat_order = "xyzw"
    duck_attributes = ("get_obs", "simulator", "reset_buf", "terminate_buf")

    def __init__(self, env: Any, *, loop: str | None = None, agent: Any = None,
                 reset_kwargs: dict[str, Any] | None = None, name: str | None = None):
        super().__init__()
        if loop not in LOOPS:
            raise ValueError(
                f"ProtoMotions: choose the loop to record, adapter_options={{'loop': 'evaluator'}} (BaseEvaluator."
                f"evaluate_episode: one reset, finished envs never reset) or {{'loop': 'training'}} (BaseAgent.fit: "
                f"finished envs reset before the next step); got {loop!r}")
        self.env, self.loop, self.agent = env, loop, agent
        self.simulator = env.simulator
        self.num_envs = int(env.num_envs)
        self.dt = float(env.dt)
        self.name = name or type(env).__name__
        robot_config = getattr(env, "robot_config", None) or getattr(self.simulator, "robot_config", None)
        names = getattr(getattr(robot_config, "kinematic_info", None), "body_names", None)
        self.link_names = [str(n) for n in names] if names is not None else None
        if reset_kwargs is None:
            reset_kwargs = dict(MIMIC_RESET_KWARGS) if getattr(env, "motion_manager", None) is not None else {}
        self.reset_kwargs = dict(reset_kwargs) if loop == "evaluator" else {}
        self.meta.update(loop=loop, end_reasons={str(k): v for k, v in END_REASONS.items()}, reset_kwargs=self.reset_kwargs,
                         policy_input="agent.obs_dict_to_tensordict(agent.add_agent_info_to_obs(obs))" if agent is not None
                         else "the env's obs dict")
        self.term_names: list[str] | None = None
        self._ended = torch.zeros(self.num_envs, dtype=torch.bool)

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        real = loaded_class("protomotions.envs.base_env.env", "BaseEnv")
        return real is not None and isinstance(env, real) and not hasattr(env, "self_obs_cb")

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        return all(hasattr(env, a) for a in cls.duck_attributes) and not hasattr(env, "self_obs_cb")

    def reset(self) -> Any:
        env_ids = torch.arange(self.num_envs, device=self.env.reset_buf.device)
        obs, _ = self.env.reset(env_ids, **self.reset_kwargs)
        self._ended = torch.zeros(self.num_envs, dtype=torch.bool, device=self.env.reset_buf.device)
        return obs

    def policy_input(self, obs: Any, step: int) -> Any:
        """What the agent's loops hand the model at ``step`` (``pre_collect_step`` runs once per step)."""
        if self.agent is None:
            return obs
        self.agent.pre_collect_step(step)
        return self.agent.obs_dict_to_tensordict(self.agent.add_agent_info_to_obs(obs))

    def pose(self) -> dict[str, torch.Tensor]:
        root = self.simulator.get_root_state()
        bodies = self.simulator.get_bodies_state()
        return {
            "base_pos": root.root_pos.clone(), "base_quat": root.root_rot.clone(),
            "link_pos": bodies.rigid_body_pos.clone(), "link_quat": bodies.rigid_body_rot.clone(),
        }

    def _time_limit(self) -> torch.Tensor:
        return self.env.progress_buf >= self.env.max_episode_length - 1  # check_max_length_term

    def step(self, action: Any) -> Step:
        obs, rew, reset_buf, terminate_buf, extras = self.env.step(action)
        done = reset_buf.bool().clone()
        terminated = terminate_buf.bool().clone()
        time_limit = done & ~terminated & self._time_limit()
        terms = self._reward_terms(extras)
        reason = end_reasons(done, terminated, time_limit)
        if self.loop == "evaluator":  # never reset: record the first end of each env, mark what follows
            past_end = self._ended.clone()
            first = done & ~self._ended
            self._ended |= done
            reason = torch.where(first, reason, torch.zeros_like(reason))
            return Step(obs, rew, first, time_limit & first, terms, {"end_reason": reason, "past_end": past_end})
        if self.agent is not None and hasattr(self.agent, "post_env_step_modifications"):
            self.agent.post_env_step_modifications(done, terminated, extras)  # model.reset_rollout_context(env_ids=done)
        done_indices = done.nonzero(as_tuple=False).squeeze(-1)
        if done_indices.numel() > 0:
            obs, _ = self.env.reset(done_indices)
        return Step(obs, rew, done, time_limit, terms, {"end_reason": reason})

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
