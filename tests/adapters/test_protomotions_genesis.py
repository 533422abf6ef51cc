"""The ProtoMotions-Genesis fork (the original recorder's framework; does not install here): a double.

Sources followed (hshintree/ProtoMotions-Genesis at 80d20e3):
- ``protomotions/envs/base_env/env.py``: ``BaseEnv.step`` -> ``(get_obs(), rew_buf, reset_buf,
  extras)``, ``extras["terminate"] = terminate_buf``, ``extras["to_log"] = log_dict``
  (``post_physics_step``); ``BaseEnv.reset(env_ids)`` returns ``get_obs()`` only, clears
  ``progress_buf``/``reset_buf``/``terminate_buf``; ``get_obs`` merges ``self_obs_cb`` and terrain obs.
- ``protomotions/envs/base_env/env_utils/humanoid_utils.py`` ``compute_humanoid_reset``: reset at
  ``progress_buf >= max_episode_length - 1`` or on a fall (terminated).
- ``protomotions/envs/mimic/env.py`` ``compute_reward``: terms only as env means,
  ``log_dict["raw/<name>_mean"]`` and ``["scaled/<name>_mean"]``.
- ``protomotions/simulator/base_simulator/simulator.py`` ``get_root_state``/``get_bodies_state``
  (xyzw, ``robot_state.py`` ``convert_to_common``), ``simulator.robot_config.body_names``.
- ``extras/rollout_recorder.py``: ``RolloutRecorder(env, max_steps)``, ``run(policy,
  output_dir=...)``, first obs from ``env.get_obs()``, ``policy(obs_dict, deterministic=True)``;
  ``make_policy`` acts with ``agent.model.act(obs_dict)``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rollrec import RolloutRecorder, load  # the one import that changes
from rollrec.adapters import ProtoMotionsGenesisAdapter, adapt

BODIES = ["pelvis", "torso", "head"]


class Simulator:
    def __init__(self, n):
        self.robot_config = SimpleNamespace(body_names=list(BODIES))
        self.pos = torch.zeros(n, 3, 3)
        self.rot = torch.tensor([0.0, 0.0, 0.0, 1.0]).repeat(n, 3, 1)

    def get_root_state(self, env_ids=None):
        return SimpleNamespace(root_pos=self.pos[:, 0], root_rot=self.rot[:, 0])

    def get_bodies_state(self, env_ids=None):
        return SimpleNamespace(rigid_body_pos=self.pos, rigid_body_rot=self.rot)


class MimicEnv:
    def __init__(self, n=4, max_episode_length=6):
        self.num_envs, self.dt = n, 1 / 30
        self.config = SimpleNamespace(max_episode_length=max_episode_length)
        self.simulator, self.self_obs_cb = Simulator(n), object()
        self.progress_buf = torch.zeros(n, dtype=torch.long)
        self.reset_buf = torch.zeros(n, dtype=torch.long)
        self.terminate_buf = torch.zeros(n, dtype=torch.long)
        self.rew_buf = torch.zeros(n)
        self.log_dict, self.extras, self.reset_calls = {}, {}, []

    def get_obs(self):
        return {"self_obs": self.simulator.pos.reshape(self.num_envs, -1).clone(),
                "mimic_target_poses": self.progress_buf[:, None].float().clone()}

    def step(self, actions):
        self.simulator.pos += 0.1 * actions[:, None, :1]
        self.progress_buf += 1
        rew = {"gt": torch.exp(-self.simulator.pos[:, 0, 0]), "gr": actions.square().sum(-1)}
        scaled = {"gt": rew["gt"] * 0.5, "gr": rew["gr"] * -0.1}
        self.rew_buf = sum(scaled.values()) + 0.1
        for k, v in rew.items():
            self.log_dict[f"raw/{k}_mean"], self.log_dict[f"raw/{k}_std"] = v.mean(), v.std()
        for k, v in scaled.items():
            self.log_dict[f"scaled/{k}_mean"] = v.mean()
        fell = (actions[:, 0] > 0.9).long() * (self.progress_buf > 1).long()
        self.reset_buf[:] = torch.where(self.progress_buf >= self.config.max_episode_length - 1, 1, fell)
        self.terminate_buf[:] = fell
        self.extras["terminate"], self.extras["to_log"] = self.terminate_buf, self.log_dict
        return self.get_obs(), self.rew_buf, self.reset_buf, self.extras

    def reset(self, env_ids=None):
        self.reset_calls.append(None if env_ids is None else env_ids.tolist())
        ids = torch.arange(self.num_envs) if env_ids is None else env_ids
        self.simulator.pos[ids] = 0.0
        self.progress_buf[ids], self.reset_buf[ids], self.terminate_buf[ids] = 0, 0, 0
        return self.get_obs()


def act_policy(gen):
    """The original ``make_policy``'s callable: ``act(obs_dict, deterministic=True)``."""

    def act(obs_dict, deterministic=True):
        assert deterministic is True and set(obs_dict) == {"self_obs", "mimic_target_poses"}
        return torch.rand(len(obs_dict["self_obs"]), 2, generator=gen) * 0.85  # no falls: time limits only

    return act


def test_the_original_recorders_code_runs_with_one_import_changed(tmp_path):
    env = MimicEnv()
    assert type(adapt(env)) is ProtoMotionsGenesisAdapter
    recorder = RolloutRecorder(env, max_steps=20, progress=False)
    rollout_file = recorder.run(act_policy(torch.Generator().manual_seed(0)), output_dir=tmp_path)
    r = load(rollout_file)
    assert (r.T, r.N) == (20, 4)  # the whole run, not stopped at the first done
    assert env.reset_calls[0] == [0, 1, 2, 3]  # no reset before the first step (obs from get_obs), then done envs
    assert [e["name"] for e in r.meta["obs_layout"]] == ["self_obs", "mimic_target_poses"]  # not unpacked into keys
    done, trunc, reason = np.asarray(r["done"]), np.asarray(r["truncated"]), np.asarray(r["end_reason"])
    assert done[4].all() and trunc[4].all() and (reason[4] == 2).all()  # time limit at progress 5
    assert (np.asarray(r["obs"])[:, :, -1] <= 4).all()  # finished envs were reset before the next step
    assert r.link_names == BODIES and r.meta["reward_terms_are_env_means"] is True
    assert r.reward_term_names == ["gt", "gr"]
    terms = np.asarray(r["rew_terms"])
    np.testing.assert_array_equal(terms[:, 0], terms[:, 1])  # env means, the same for every env
    with pytest.raises(TypeError, match="deterministic"):
        recorder.run(act_policy(torch.Generator()), True)


def test_per_env_terms_where_the_env_keeps_them(tmp_path):
    env = MimicEnv(n=3)
    inner = env.step

    def step(actions):
        out = inner(actions)
        env.last_scaled_rewards = {"gt": torch.arange(3.0), "gr": -torch.arange(3.0)}
        return out

    env.step = step
    r = load(RolloutRecorder(env, max_steps=5, progress=False).run(act_policy(torch.Generator().manual_seed(1)), tmp_path))
    np.testing.assert_array_equal(np.asarray(r["rew_terms"])[0, :, 0], [0.0, 1.0, 2.0])
    assert "reward_terms_are_env_means" not in r.meta


class ForkModel(torch.nn.Module):
    """The fork's PPOModel as far as acting goes: ``act(input_dict, mean=True)`` -> tanh(mu)."""

    def __init__(self):
        super().__init__()
        self._actor = torch.nn.Module()
        self._actor.mu = torch.nn.Linear(10, 2)
        self._actor.logstd = torch.nn.Parameter(torch.full((2,), -2.9), requires_grad=False)

    def act(self, input_dict, mean=True):
        x = torch.cat([input_dict["self_obs"], input_dict["mimic_target_poses"]], dim=-1)
        return 0.4 * (torch.tanh(self._actor.mu(x)) + 1)  # in [0, 0.8]: no falls


def test_the_original_record_rollout_script_runs_with_one_import_changed(tmp_path):
    """extras/record_rollout.py: ``agent.load(ckpt)``, ``policy(obs_dict, deterministic=True)`` around
    ``agent.model.act``, ``recorder.run(policy, deterministic=True, output_dir=...)``; and `make_policy`
    on the fork's checkpoint (``PPO.save``: ``fabric.save`` of ``get_state_dict``) with the agent's model."""
    from rollrec import make_policy

    trained = ForkModel()
    torch.save({"model": trained.state_dict(), "epoch": 10, "step_count": 320, "run_start_time": 0.0,
                "best_evaluated_score": None}, tmp_path / "last.ckpt")
    seen = []

    def policy(obs_dict, deterministic=True):
        seen.append(deterministic)
        with torch.no_grad():
            return trained.act(obs_dict)

    a = load(RolloutRecorder(MimicEnv(), max_steps=8, progress=False).run(policy, deterministic=False,
                                                                          output_dir=tmp_path / "a"))
    assert seen == [False] * 8
    b = load(RolloutRecorder(MimicEnv(), max_steps=8, progress=False).run(
        make_policy(tmp_path / "last.ckpt", module=ForkModel()), deterministic=True, output_dir=tmp_path / "b"))
    np.testing.assert_array_equal(np.asarray(a["act"]), np.asarray(b["act"]))  # same weights, same actions
    assert np.asarray(a["done"]).any()  # resets happened in between
