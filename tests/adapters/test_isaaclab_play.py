"""Isaac Lab's play.py loop (does not install here): doubles of the code it runs.

Sources followed (isaac-sim/IsaacLab, each file at the commit named; re-read for this test):
- ``source/isaaclab/isaaclab/envs/direct_rl_env.py`` at 7ff33ed47bd8 and 06a90e4c1198 (the same
  ``step`` in both) ``DirectRLEnv.step``: ``action = action.to(self.device)``,
  ``_pre_physics_step``, physics (``scene.write_data_to_sim``, ``sim.step``, ``scene.update``),
  ``reset_terminated[:], reset_time_outs[:] = _get_dones()``, ``reward_buf = _get_rewards()``,
  ``_reset_idx(reset_env_ids)`` with *no* ``sim.forward()`` after it, ``obs_buf =
  _get_observations()``; returns ``(obs_buf, reward_buf, reset_terminated, reset_time_outs,
  extras)``; no reward manager (``extras["log"]`` holds means). ``DirectRLEnv.reset``:
  ``_reset_idx``, ``scene.write_data_to_sim(); sim.forward()``.
- ``source/isaaclab/isaaclab/envs/manager_based_rl_env.py`` ``ManagerBasedRLEnv.step``: after
  ``_reset_idx`` 2.x (fe626787e5cd) calls ``scene.write_data_to_sim(); sim.forward()``, the newest
  (02dc5f7461a6) only ``scene.write_data_to_sim()``. Without ``sim.forward()`` a reset env's body
  poses are refreshed by the next physics step, while its root pose buffer was written by the
  reset. Obs are computed after the resets from the asset data. ``ActionManager.process_action``
  keeps ``action`` (what the env received).
- ``source/isaaclab_rl/isaaclab_rl/rsl_rl/vecenv_wrapper.py`` at 0a9ddd356fe1
  ``RslRlVecEnvWrapper``: ``__init__`` resets the env; ``get_observations()`` -> ``TensorDict`` of
  ``observation_manager.compute()`` (manager-based) or ``_get_observations()`` (direct); ``step``:
  ``torch.clamp(actions, -clip_actions, clip_actions)``, ``(obs, rew, terminated, truncated,
  extras) = env.step``, ``extras["time_outs"] = truncated`` unless ``cfg.is_finite_horizon``,
  returns ``(TensorDict(obs), rew, (terminated | truncated).long(), extras)``.
- ``scripts/reinforcement_learning/rsl_rl/play.py``: ``obs = env.get_observations()``, then
  ``actions = policy(obs); obs, _, dones, _ = env.step(actions)``.

How the cases without ``sim.forward()`` (DirectRLEnv, newest ManagerBasedRLEnv) are checked: the
double's obs hold the projected gravity of ``root_quat_w`` and the body positions ``body_pos_w``
the obs read; the recorded base quaternion and link positions must reproduce exactly those obs
at every step, resets included.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import rollrec
from rollrec.adapters import IsaacLabAdapter, IsaacLabDirectAdapter, adapt

tensordict = pytest.importorskip("tensordict")
N, BODIES = 4, ["base", "foot"]


def gravity_b(quat):  # projected gravity of wxyz quaternions: R^T [0, 0, -1]
    w, x, y, z = quat.unbind(-1)
    return torch.stack([-2 * (x * z - w * y), -2 * (y * z + w * x), -(1 - 2 * (x * x + y * y))], -1)


class Articulation:
    """Asset data: root buffers written by a reset; body buffers refreshed by a physics step or ``sim.forward``."""

    def __init__(self):
        self.body_names = list(BODIES)
        self.q = torch.zeros(N, 2)  # the "physics" state: base height offset, tilt angle
        self.data = types.SimpleNamespace(root_pos_w=torch.zeros(N, 3), root_quat_w=torch.zeros(N, 4),
                                          body_pos_w=torch.zeros(N, 2, 3), body_quat_w=torch.zeros(N, 2, 4))
        self.refresh_bodies()
        self.refresh_root()

    def _root(self):
        half = 0.5 * self.q[:, 1]
        quat = torch.stack([torch.cos(half), torch.sin(half), torch.zeros(N), torch.zeros(N)], -1)
        pos = torch.stack([torch.zeros(N), torch.zeros(N), 0.5 + self.q[:, 0]], -1)
        return pos, quat

    def refresh_root(self, ids=slice(None)):
        pos, quat = self._root()
        self.data.root_pos_w[ids], self.data.root_quat_w[ids] = pos[ids], quat[ids]

    def refresh_bodies(self):
        pos, quat = self._root()
        foot = pos + torch.stack([torch.zeros(N), 0.3 * torch.sin(self.q[:, 1]), -0.3 * torch.cos(self.q[:, 1])], -1)
        self.data.body_pos_w[:] = torch.stack([pos, foot], 1)
        self.data.body_quat_w[:] = quat[:, None].expand(-1, 2, -1)


class EnvBase:
    def __init__(self):
        self.num_envs, self.device, self.step_dt = N, torch.device("cpu"), 0.02
        self.robot = Articulation()
        self.scene = {"robot": self.robot}
        self.episode_length_buf = torch.zeros(N, dtype=torch.long)
        self.cfg = types.SimpleNamespace(is_finite_horizon=False)
        self.unwrapped = self

    def _obs(self):  # what the obs manager reads from the asset data
        d = self.robot.data
        return {"policy": torch.cat([gravity_b(d.root_quat_w), d.body_pos_w[:, 1]], -1)}

    def _physics(self, action):
        self.robot.q[:, 1] += 0.1 * action[:, 0]
        self.robot.q[:, 0] += 0.05 * action[:, 1]
        self.robot.refresh_bodies()
        self.robot.refresh_root()

    def _reset_idx(self, ids):
        self.robot.q[ids] = torch.tensor([0.2, -0.3])  # write_root_pose_to_sim + joint state
        self.robot.refresh_root(ids)  # the root buffer is written at once; the bodies wait
        self.episode_length_buf[ids] = 0


class DirectRLEnv(EnvBase):
    def __init__(self):
        super().__init__()
        self.reward_buf = torch.zeros(N)
        self.reset_terminated = torch.zeros(N, dtype=torch.bool)
        self.reset_time_outs = torch.zeros(N, dtype=torch.bool)
        self.extras = {}

    def reset(self, seed=None, options=None):
        self._reset_idx(torch.arange(N))
        self.robot.refresh_bodies()  # DirectRLEnv.reset: sim.forward() once
        return self._obs(), {}

    def step(self, action):
        action = action.to(self.device)
        self.last_action = action
        self._physics(action)
        self.episode_length_buf += 1
        self.reset_terminated[:] = self.robot.q[:, 1].abs() > 0.8
        self.reset_time_outs[:] = self.episode_length_buf >= 7
        self.reward_buf = 1.0 - self.robot.q[:, 1].abs()
        ids = (self.reset_terminated | self.reset_time_outs).nonzero(as_tuple=False).squeeze(-1).int()
        if len(ids) > 0:
            self._reset_idx(ids)  # no sim.forward(): the bodies wait for the next physics step
        self.extras = {"log": {"mean_tilt": self.robot.q[:, 1].abs().mean()}}
        return self._obs(), self.reward_buf, self.reset_terminated, self.reset_time_outs, self.extras


class RewardManager:
    active_terms = ("upright",)

    def __init__(self):
        self._step_reward = torch.zeros(N, 1)


class ManagerBasedRLEnv(EnvBase):
    def __init__(self, newest: bool):
        super().__init__()
        self.newest = newest
        self.reward_manager = RewardManager()
        self.termination_manager = types.SimpleNamespace(terminated=torch.zeros(N, dtype=torch.bool),
                                                         time_outs=torch.zeros(N, dtype=torch.bool))
        self.action_manager = types.SimpleNamespace(action=torch.zeros(N, 2))

    def reset(self, seed=None, options=None):
        self._reset_idx(torch.arange(N))
        self.robot.refresh_bodies()
        return self._obs(), {}

    def step(self, action):
        self.action_manager.action[:] = action.to(self.device)  # ActionManager.process_action
        self._physics(self.action_manager.action)
        self.episode_length_buf += 1
        tm = self.termination_manager
        tm.terminated[:] = self.robot.q[:, 1].abs() > 0.8
        tm.time_outs[:] = self.episode_length_buf >= 7
        rew = 1.0 - self.robot.q[:, 1].abs()
        self.reward_manager._step_reward[:, 0] = rew / self.step_dt
        ids = (tm.terminated | tm.time_outs).nonzero(as_tuple=False).squeeze(-1)
        if len(ids) > 0:
            self._reset_idx(ids)
            if not self.newest:
                self.robot.refresh_bodies()  # 2.x: sim.forward()
        return self._obs(), rew, tm.terminated, tm.time_outs, {"log": {}}


class RslRlVecEnvWrapper:
    def __init__(self, env, clip_actions=None):
        self.env, self.clip_actions = env, clip_actions
        self.env.reset()

    @property
    def unwrapped(self):
        return self.env

    def get_observations(self):  # observation_manager.compute() / _get_observations(): the env's obs of now
        return tensordict.TensorDict(self.env._obs(), batch_size=[N])

    def step(self, actions):
        if self.clip_actions is not None:
            actions = torch.clamp(actions, -self.clip_actions, self.clip_actions)
        obs, rew, terminated, truncated, extras = self.env.step(actions)
        if not self.unwrapped.cfg.is_finite_horizon:
            extras["time_outs"] = truncated
        return tensordict.TensorDict(obs, batch_size=[N]), rew, (terminated | truncated).to(torch.long), extras


def play(env, steps, tmp_path):
    """play.py's loop, recorded: a policy that sees what the wrapper returns."""
    seen, gen = [], torch.Generator().manual_seed(0)

    def policy(obs):
        seen.append(obs)
        return torch.randn(N, 2, generator=gen) * 2.0

    path = rollrec.RolloutRecorder(env, max_steps=steps, progress=False).run(policy, tmp_path)
    return rollrec.load(path), seen


def check_poses_are_the_obs(r):
    obs = torch.as_tensor(np.asarray(r["obs"]))
    np.testing.assert_allclose(gravity_b(torch.as_tensor(np.asarray(r["base_quat"]))).numpy(), obs[..., :3].numpy(), atol=1e-6)
    np.testing.assert_allclose(np.asarray(r["link_pos"])[:, :, 1], obs[..., 3:].numpy(), atol=1e-6)


def test_direct_rl_env_through_rsl_rl_wrapper(tmp_path):
    inner = DirectRLEnv()
    env = RslRlVecEnvWrapper(inner, clip_actions=1.0)
    assert type(adapt(env)) is IsaacLabDirectAdapter
    r, seen = play(env, 30, tmp_path)
    assert all(isinstance(o, tensordict.TensorDict) for o in seen)  # the policy got the wrapper's TensorDict
    act = np.asarray(r["act"])
    assert np.abs(act).max() == 1.0  # the clamped action, what the env applied
    assert "no reward manager" in r.meta["reward_terms_note"] and r.reward_term_names in (None, [])
    done, trunc = np.asarray(r["done"]), np.asarray(r["truncated"])
    assert (done & ~trunc).any() and trunc.any()
    check_poses_are_the_obs(r)


def test_direct_rl_env_gets_torch_actions(tmp_path):
    r, _ = play(DirectRLEnv(), 10, tmp_path)  # the Gymnasium adapter handed it numpy: AttributeError on .to
    assert r.T == 10 and r.meta["adapter"] == "IsaacLabDirectAdapter"


@pytest.mark.parametrize("newest", [False, True])
def test_manager_based_through_rsl_rl_wrapper(tmp_path, newest):
    env = RslRlVecEnvWrapper(ManagerBasedRLEnv(newest), clip_actions=1.5)
    adapter = adapt(env)
    assert type(adapter) is IsaacLabAdapter and adapter.stepper is env
    r, seen = play(env, 30, tmp_path)
    assert all(isinstance(o, tensordict.TensorDict) for o in seen)
    assert np.abs(np.asarray(r["act"])).max() == 1.5
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), np.asarray(r["rew"]), atol=1e-6)
    assert np.asarray(r["done"]).any()
    check_poses_are_the_obs(r)
