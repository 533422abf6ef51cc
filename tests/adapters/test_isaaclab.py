"""Isaac Lab (does not install here): doubles of ``ManagerBasedRLEnv`` 2.x and 3.0.

Sources followed (isaac-sim/IsaacLab, ``source/isaaclab/isaaclab/``):
- ``envs/manager_based_rl_env.py`` ``ManagerBasedRLEnv.step``: ``action.to(self.device)``;
  ``reset_buf = termination_manager.compute()``; ``reward_buf = reward_manager.compute(dt=step_dt)``;
  resets ``reset_buf.nonzero()`` envs inside the step; returns ``(obs_buf, reward_buf,
  reset_terminated, reset_time_outs, extras)``; ``gym.make`` wraps it (``env.unwrapped``).
- ``managers/reward_manager.py`` ``RewardManager.compute``: ``value = func * weight * dt``,
  ``_reward_buf += value``, ``_step_reward[:, i] = value / dt``; names in ``active_terms``.
- 2.x asset data: ``root_pos_w``, ``root_quat_w`` (wxyz), ``body_pos_w``, ``body_quat_w`` torch
  tensors; 3.0: ``utils/warp/proxy_array.py`` ``ProxyArray.torch`` is a cached zero-copy view of
  the simulator's array, which the next step overwrites; quaternions xyzw.
"""

from __future__ import annotations

import sys
import types

import gymnasium as gym
import numpy as np
import pytest
import torch

import rollrec
from rollrec.adapters import IsaacLabAdapter, adapt

BODIES = ["base", "FL_foot", "FR_foot"]
TERMS = ["track_vel", "torques", "zero_weight"]


class ProxyArray:
    """As Isaac Lab 3.0: ``.torch`` is a cached view of the wrapped buffer."""

    def __init__(self, buffer):
        self._buffer = buffer

    @property
    def torch(self):
        return self._buffer


class RewardManager:
    def __init__(self, env):
        self._env, self.weights = env, {"track_vel": 1.5, "torques": -0.2, "zero_weight": 0.0}
        self._step_reward = torch.zeros(env.num_envs, len(TERMS))
        self._reward_buf = torch.zeros(env.num_envs)

    @property
    def active_terms(self):
        return list(TERMS)

    def compute(self, dt):
        self._reward_buf[:] = 0.0
        raw = {"track_vel": torch.exp(-self._env.pos[:, 0, 0].abs()), "torques": self._env.last_action.square().sum(-1),
               "zero_weight": torch.ones(self._env.num_envs)}
        for i, name in enumerate(TERMS):
            if self.weights[name] == 0.0:
                self._step_reward[:, i] = 0.0
                continue
            value = raw[name] * self.weights[name] * dt
            self._reward_buf += value
            self._step_reward[:, i] = value / dt
        return self._reward_buf


class TerminationManager:
    def __init__(self, env):
        self._env = env
        self.terminated = torch.zeros(env.num_envs, dtype=torch.bool)
        self.time_outs = torch.zeros(env.num_envs, dtype=torch.bool)

    def compute(self):
        self.time_outs[:] = self._env.episode_length_buf >= 6
        self.terminated[:] = self._env.last_action[:, 0] > 0.9
        return self.terminated | self.time_outs


class ManagerBasedRLEnv:
    """The step contract of Isaac Lab's env; pose buffers written in place each step."""

    def __init__(self, n=5, version=2):
        self.num_envs, self.device, self.step_dt, self.version = n, torch.device("cpu"), 0.02, version
        self.pos = torch.zeros(n, len(BODIES), 3)
        self.quat = torch.zeros(n, len(BODIES), 4)
        self.quat[..., 0 if version == 2 else 3] = 1.0
        self.last_action = torch.zeros(n, 2)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.reward_manager = RewardManager(self)
        self.termination_manager = TerminationManager(self)
        wrap = (lambda t: t) if version == 2 else ProxyArray
        data = types.SimpleNamespace(root_pos_w=wrap(self.pos[:, 0]), root_quat_w=wrap(self.quat[:, 0]),
                                     body_pos_w=wrap(self.pos), body_quat_w=wrap(self.quat))
        self.scene = {"robot": types.SimpleNamespace(body_names=list(BODIES), data=data)}
        self.cfg = types.SimpleNamespace()

    def reset(self, seed=None, options=None):
        self._reset_idx(torch.arange(self.num_envs))
        return self._obs(), {}

    def _obs(self):
        return {"policy": torch.cat([self.pos.reshape(self.num_envs, -1), self.episode_length_buf[:, None].float()], -1)}

    def _reset_idx(self, ids):
        self.pos[ids] = 0.0
        self.episode_length_buf[ids] = 0

    def step(self, action):
        action = action.to(self.device)
        self.last_action = action.clone()
        self.pos += 0.05 * action[:, None, :1] + 0.01
        angle = self.pos[..., :1]
        if self.version == 2:
            self.quat.copy_(torch.cat([torch.cos(angle), torch.sin(angle), torch.zeros_like(angle).expand(-1, -1, 2)], -1))
        else:
            self.quat.copy_(torch.cat([torch.sin(angle), torch.zeros_like(angle).expand(-1, -1, 2), torch.cos(angle)], -1))
        self.episode_length_buf += 1
        reset_buf = self.termination_manager.compute()
        reward = self.reward_manager.compute(dt=self.step_dt)
        ids = reset_buf.nonzero(as_tuple=False).squeeze(-1)
        if len(ids) > 0:
            self._reset_idx(ids)
        return self._obs(), reward, self.termination_manager.terminated, self.termination_manager.time_outs, {"log": {}}


class GymWrapper(gym.Wrapper):
    """What ``gym.make`` puts around the env (the 5-tuple API is kept)."""

    def __init__(self, env):
        self.env, self.steps = env, 0
        self._action_space = self._observation_space = self._metadata = None
        self._reward_range = None

    @property
    def unwrapped(self):
        return self.env

    def step(self, action):
        self.steps += 1
        return self.env.step(action)

    def reset(self, **kwargs):
        return self.env.reset(**kwargs)


@pytest.mark.parametrize("version", [2, 3])
def test_isaaclab_rollout(tmp_path, version):
    env = ManagerBasedRLEnv(version=version)
    wrapped = GymWrapper(env)
    before = []
    inner = env.step

    def spy(action):
        before.append((env.pos.clone(), env.quat.clone(), env.reward_manager))
        out = inner(action)
        spy.outs.append((out[1].clone(), out[2].clone(), out[3].clone(), env.reward_manager._step_reward.clone()))
        return out

    spy.outs = []
    env.step = spy
    adapter = adapt(wrapped)
    assert type(adapter) is IsaacLabAdapter
    assert adapter.quat_order == ("wxyz" if version == 2 else "xyzw")
    gen = torch.Generator().manual_seed(version)
    path = rollrec.RolloutRecorder(wrapped, max_steps=15, progress=False).run(
        lambda obs: torch.rand(5, 2, generator=gen), tmp_path)
    assert wrapped.steps == 15  # stepped through the gym.make chain
    r = rollrec.load(path)
    assert r.dt == pytest.approx(0.02) and r.reward_term_names == TERMS
    rew = np.stack([o[0].numpy() for o in spy.outs])
    terms = np.asarray(r["rew_terms"])
    np.testing.assert_allclose(terms, np.stack([o[3].numpy() for o in spy.outs]) * 0.02, rtol=1e-6)
    np.testing.assert_allclose(terms.sum(-1), rew, atol=1e-6)
    term = np.stack([o[1].numpy() for o in spy.outs])
    tout = np.stack([o[2].numpy() for o in spy.outs])
    np.testing.assert_array_equal(np.asarray(r["done"]), term | tout)
    np.testing.assert_array_equal(np.asarray(r["truncated"]), tout)
    assert term.any() and tout.any()
    # the pose before each step, although the env rewrites its buffers in place
    pos = np.stack([b[0].numpy() for b in before])
    quat = np.stack([b[1].numpy() for b in before])
    wxyz = quat if version == 2 else quat[..., [3, 0, 1, 2]]
    assert r.link_names == BODIES
    np.testing.assert_array_equal(np.asarray(r["link_pos"]), pos)
    np.testing.assert_allclose(np.asarray(r["link_quat"]), wxyz)
    np.testing.assert_allclose(np.asarray(r["base_quat"]), wxyz[:, :, 0])
    assert not np.array_equal(pos[1:], pos[:-1])


def test_real_class_is_checked_before_duck_typing(monkeypatch):
    """An env of Isaac Lab's class is taken for Isaac Lab even when it also looks like mjlab."""
    module = types.ModuleType("isaaclab.envs.manager_based_rl_env")

    class RealEnv(ManagerBasedRLEnv):
        pass

    module.ManagerBasedRLEnv = RealEnv
    monkeypatch.setitem(sys.modules, "isaaclab.envs.manager_based_rl_env", module)
    env = RealEnv()
    env.sim = types.SimpleNamespace(mj_model=object())  # mjlab's duck-typing mark
    assert type(adapt(env)) is IsaacLabAdapter
    assert type(adapt(ManagerBasedRLEnv())) is IsaacLabAdapter


def test_custom_reward_manager_gets_an_unattributed_term(tmp_path, monkeypatch):
    module = types.ModuleType("isaaclab.managers.reward_manager")

    class StockRewardManager:
        pass

    module.RewardManager = StockRewardManager
    monkeypatch.setitem(sys.modules, "isaaclab.managers.reward_manager", module)
    env = ManagerBasedRLEnv()
    inner = env.reward_manager.compute
    env.reward_manager.compute = lambda dt: inner(dt).clamp_(min=0.0)  # not a plain sum any more
    path = rollrec.RolloutRecorder(env, max_steps=8, progress=False).run(lambda o: torch.ones(5, 2) * 0.8, tmp_path)
    r = rollrec.load(path)
    assert r.reward_term_names == [*TERMS, "unattributed"]
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), np.asarray(r["rew"]), atol=1e-6)
    assert "not the stock reward manager" in r.meta["reward_terms_note"]
