"""What Isaac Lab's and mjlab's manager-based RL envs share: the step, reward terms, resets.

Both follow the same contract (Isaac Lab ``isaaclab/envs/manager_based_rl_env.py``
``ManagerBasedRLEnv.step``; mjlab ``mjlab/envs/manager_based_rl_env.py``
``ManagerBasedRlEnv.step``): ``step(action)`` takes a torch action on ``env.device`` and returns
``(obs, reward, terminated, time_outs, extras)``; envs that finished are reset inside ``step``
(mjlab only when ``cfg.auto_reset``); ``reward_manager._step_reward [N, K]`` holds this step's
per-env, per-term reward *rates* named by ``reward_manager.active_terms``, i.e. divided by the
dt the manager multiplied the terms with (``extras["log"]`` only has means over reset envs).
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.base import BaseAdapter, Step, as_field_dict, find_instance, loaded_class, unwrap_chain

#: The name of the extra reward term that makes the terms sum to ``rew`` when a custom reward
#: manager does not add its terms up (e.g. a product of positive and negative parts).
UNATTRIBUTED = "unattributed"


def is_manager_based(env: Any) -> bool:
    rm = getattr(env, "reward_manager", None)
    return (
        rm is not None and hasattr(rm, "_step_reward") and hasattr(rm, "active_terms")
        and hasattr(env, "termination_manager") and hasattr(env, "scene") and hasattr(env, "step_dt")
    )


def find_manager_based(env: Any) -> Any:
    """The manager-based env inside ``env``'s wrapper chain, or None."""
    return next((e for e in unwrap_chain(env) if is_manager_based(e)), None)


class ManagerBasedAdapter(BaseAdapter):
    """Common part of `IsaacLabAdapter` and `MjlabAdapter`.

    ``env``: the env, a ``gym.make`` wrapper chain around it, or another wrapper (e.g. an RL
    library's vec-env wrapper). A gymnasium wrapper chain is stepped as given (its wrappers keep
    working); another wrapper, whose ``step`` may not be the 5-tuple, is bypassed: the env inside
    is stepped (``meta["stepped"]`` says so). ``entity``: the scene entry whose poses are
    recorded (default ``"robot"``; else the first articulation of the scene). ``name``: the
    env's name in the file (default: the gym id, else the config class).
    """

    duck_attributes = ("reward_manager", "termination_manager", "scene", "step_dt")
    #: (module, class) of the framework's env class and of its stock reward manager.
    env_class: tuple[str, str] = ("", "")
    reward_manager_class: tuple[str, str] = ("", "")

    def __init__(self, env: Any, *, entity: str | None = None, name: str | None = None):
        super().__init__()
        real = loaded_class(*self.env_class)
        inner = find_instance(env, (real,)) if real is not None else None
        self.env = inner if inner is not None else find_manager_based(env)
        if self.env is None:
            raise TypeError(f"{type(self).__name__}: {type(env).__name__} holds no manager-based RL env "
                            f"(looked for reward_manager._step_reward, termination_manager, scene, step_dt)")
        self.rsl = is_rsl_rl_wrapper(env)
        self.stepper = env if env is self.env or _is_gym_wrapper(env) or self.rsl else self.env
        if self.stepper is not env:
            self.meta["stepped"] = f"the env inside {type(env).__name__} (its step() is not the 5-tuple API)"
        elif self.rsl:
            self.meta["stepped"] = f"{type(env).__name__} (play.py's loop: its clamp and TensorDict obs)"
        self.num_envs = int(self.env.num_envs)
        self.dt = float(self.env.step_dt)
        spec = getattr(env, "spec", None) or getattr(self.env, "spec", None)
        cfg = getattr(self.env, "cfg", None)
        self.name = name or getattr(spec, "id", None) or (type(cfg).__name__ if cfg is not None else type(self.env).__name__)
        rm = self.env.reward_manager
        self.term_names = [str(n) for n in rm.active_terms]
        stock = loaded_class(*self.reward_manager_class)
        # Without the framework loaded (a duck-typed env) only the class name can tell.
        self.adds_up = type(rm) is stock if stock is not None else type(rm).__name__ == "RewardManager"
        if not self.adds_up:
            self.meta["reward_terms_note"] = (f"{type(rm).__name__} is not the stock reward manager: the term "
                                              f"{UNATTRIBUTED!r} is rew minus the sum of the others")
        self.meta["reward_terms_scale"] = self.term_scale()
        self.entity_name, self.entity = pick_entity(self.env.scene, entity)
        self.link_names = [str(n) for n in self.entity.body_names] if self.entity is not None else None
        if self.entity_name is not None:
            self.meta["entity"] = self.entity_name
        self._obs: Any = None

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        real = loaded_class(*cls.env_class)
        return real is not None and find_instance(env, (real,)) is not None

    # ---- framework-specific parts ---------------------------------------------------------------
    def term_scale(self) -> float:
        """What ``_step_reward`` is multiplied by to give terms that sum to ``rew``."""
        raise NotImplementedError

    def pose(self) -> dict[str, Any]:
        raise NotImplementedError

    def _finish_resets(self, done: torch.Tensor, obs: Any) -> Any:
        """Reset the envs the env did not reset itself; returns the obs the policy sees next."""
        return obs

    # ---- the common step ---------------------------------------------------------------------------
    def reset(self) -> Any:
        if self.rsl:  # play.py: the wrapper reset the env when it was made; obs = env.get_observations()
            return self.stepper.get_observations()
        out = self.stepper.reset()
        self._obs = out[0] if isinstance(out, tuple) else out
        return self._obs

    def step(self, action: Any) -> Step:
        if not isinstance(action, torch.Tensor):
            action = torch.as_tensor(action)
        if self.rsl:  # (obs TensorDict, rew, dones, extras): the split is the termination manager's
            obs, rew, _dones, _extras = self.stepper.step(action)
            terminated = self.env.termination_manager.terminated.clone()
            time_outs = self.env.termination_manager.time_outs.clone()
        else:
            obs, rew, terminated, time_outs, _extras = self.stepper.step(action)
        terminated = terminated.bool()
        time_outs = time_outs.bool()
        done = terminated | time_outs
        terms = self._reward_terms(rew)
        obs = self._finish_resets(done, obs)
        return Step(obs, rew, done, time_outs, terms, act=self._applied_action())

    def _applied_action(self) -> torch.Tensor | None:
        """What the env received this step (after a wrapper's clamp): ``action_manager.action``."""
        manager = getattr(self.env, "action_manager", None)
        action = getattr(manager, "action", None)
        return action.clone() if isinstance(action, torch.Tensor) else None

    def _reward_terms(self, rew: torch.Tensor) -> dict[str, torch.Tensor]:
        # One [N, K] product (a new tensor: the manager overwrites _step_reward next step).
        scaled = self.env.reward_manager._step_reward * self.term_scale()
        terms = dict(zip(self.term_names, scaled.unbind(-1)))
        if not self.adds_up:
            terms[UNATTRIBUTED] = rew - scaled.sum(-1)
        return terms

    def record_obs(self, obs: Any) -> Any:
        return as_field_dict(obs)


def pick_entity(scene: Any, entity: str | None) -> tuple[str | None, Any]:
    """The articulation whose poses are recorded, and its name: ``scene[entity]`` when named, else
    ``scene["robot"]``, else the first of the scene's ``articulations`` (Isaac Lab) or ``entities``
    (mjlab) that has ``body_names``; ``(None, None)`` when there is none."""
    if entity is not None:
        return entity, scene[entity]
    try:
        return "robot", scene["robot"]
    except (KeyError, TypeError):
        pass
    for attr in ("articulations", "entities"):
        found = getattr(scene, attr, None)
        if isinstance(found, dict):
            for key, value in found.items():
                if hasattr(value, "body_names"):
                    return key, value
    return None, None


def is_rsl_rl_wrapper(env: Any) -> bool:
    """Isaac Lab's ``RslRlVecEnvWrapper`` (``isaaclab_rl/rsl_rl/vecenv_wrapper.py``) or one like it:
    ``get_observations()``, ``clip_actions`` and a 4-tuple ``step``."""
    return hasattr(env, "get_observations") and hasattr(env, "clip_actions") and hasattr(env, "unwrapped")


def _is_gym_wrapper(env: Any) -> bool:
    wrapper = loaded_class("gymnasium.core", "Wrapper")
    return wrapper is not None and isinstance(env, wrapper)
