"""ProtoMotions (does not install here): a double that follows its step/reset contract exactly.

Sources followed (NVlabs/ProtoMotions):
- ``protomotions/envs/base_env/env.py``: ``BaseEnv.step`` returns ``(obs, self.rew_buf,
  self.reset_buf, self.terminate_buf, self.extras)``, never resets; ``BaseEnv.reset(env_ids)``
  clears ``reset_buf``/``terminate_buf`` of those envs *in place* and returns ``(get_obs(), {})``;
  ``check_resets_and_terminations``: ``reset_buf`` = time-out | terminations, ``terminate_buf`` =
  terminations; ``compute_reward`` writes ``rew_buf[:]`` and ``extras["total_env_reward"]``.
- ``protomotions/envs/base_env/utils.py`` ``combine_rewards``: ``raw_r/<name>``, ``scaled_r/<name>``
  (weight != 0), ``multiplicative_reward`` when a term is multiplicative; ``combine_terminations``:
  ``termination/<name>``.
- ``protomotions/simulator/base_simulator/simulator.py`` ``get_root_state`` / ``get_bodies_state``
  (xyzw, common body order); the Newton backend (``protomotions/simulator/newton/simulator.py``
  ``_get_simulator_bodies_state``) returns ``wp.to_torch`` views, which this double imitates.
- ``protomotions/agents/base_agent/agent.py`` (``fit``): ``env.reset(done_indices)`` before each step,
  ``pre_collect_step(step)``, ``obs_dict_to_tensordict(add_agent_info_to_obs(obs))``, and
  ``post_env_step_modifications`` -> ``model.reset_rollout_context(env_ids=done)``.
- ``protomotions/agents/evaluators/base_evaluator.py`` ``BaseEvaluator.evaluate_episode``: one
  ``env.reset(env_ids, **self._get_reset_kwargs())`` (``mimic_evaluator.py`` ``MimicEvaluator``:
  ``sample_flat=True, disable_motion_resample=True``), finished envs never reset.
- ``protomotions/envs/terminations/base.py`` ``check_max_length_term``: ``progress_buf >= max_episode_length - 1``;
  control components (``control_manager.check_resets_and_terminations``) reset without terminating.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import rollrec
from rollrec.adapters import ProtoMotionsAdapter, adapt

BODIES = ["pelvis", "torso", "head", "left_foot", "right_foot"]


class Simulator:
    """Holds body state in buffers that `advance` overwrites in place; getters return views."""

    def __init__(self, n):
        self.n = n
        self.body_pos = torch.zeros(n, len(BODIES), 3)
        self.body_rot = torch.zeros(n, len(BODIES), 4)
        self.body_rot[..., 3] = 1.0  # xyzw identity

    def advance(self, action, env_ids=None):
        ids = slice(None) if env_ids is None else env_ids
        self.body_pos[ids] += 0.01 * action[ids, :1, None] + 0.001
        angle = self.body_pos[ids, :, :1]
        self.body_rot[ids] = torch.cat([torch.zeros_like(angle).expand(-1, -1, 2), torch.sin(angle), torch.cos(angle)], -1)

    def place(self, env_ids):
        self.body_pos[env_ids] = 0.0
        self.body_rot[env_ids] = torch.tensor([0.0, 0.0, 0.0, 1.0])

    def get_root_state(self, env_ids=None):
        return SimpleNamespace(root_pos=self.body_pos[:, 0], root_rot=self.body_rot[:, 0])

    def get_bodies_state(self, env_ids=None):
        return SimpleNamespace(rigid_body_pos=self.body_pos, rigid_body_rot=self.body_rot)


class BaseEnvDouble:
    """``step`` -> (obs, rew_buf, reset_buf, terminate_buf, extras); no auto-reset."""

    def __init__(self, n=6, max_episode_length=7, strict_resets=True):
        self.num_envs, self.dt, self.max_episode_length = n, 1 / 30, max_episode_length
        self.robot_config = SimpleNamespace(kinematic_info=SimpleNamespace(body_names=list(BODIES)))
        self.simulator = Simulator(n)
        self.rew_buf = torch.zeros(n)
        self.reset_buf = torch.ones(n, dtype=torch.bool)
        self.terminate_buf = torch.ones(n, dtype=torch.bool)
        self.progress_buf = torch.zeros(n, dtype=torch.long)
        self.extras = {}
        self.weights = {"tracking": 0.5, "effort": -0.1, "unused": 0.0}
        self.strict_resets, self.reset_calls, self.control_reset = strict_resets, [], torch.zeros(n, dtype=torch.bool)

    def get_obs(self):
        return {"self_obs": self.simulator.body_pos.reshape(self.num_envs, -1).clone(),
                "progress": self.progress_buf[:, None].float().clone()}

    def step(self, action):
        if self.strict_resets:
            assert not self.reset_buf.any(), "stepped envs that were not reset (the agent resets them first)"
        self.extras = {}
        self.simulator.advance(action)
        self.progress_buf += 1
        raw = {"tracking": torch.exp(-self.simulator.body_pos[:, 0, 0].abs()), "effort": action.square().sum(-1),
               "unused": torch.ones(self.num_envs)}
        add = torch.zeros(self.num_envs)
        for name, value in raw.items():
            self.extras[f"raw_r/{name}"] = value.clone()
            if self.weights[name] != 0:
                scaled = value * self.weights[name]
                self.extras[f"scaled_r/{name}"] = scaled.clone()
                add += scaled
        self.rew_buf[:] = add
        self.extras["total_env_reward"] = add
        fell = action[:, 0] > 1.2
        self.extras["termination/fell"] = fell.float().clone()
        self.reset_buf[:] = (self.progress_buf >= self.max_episode_length - 1) | fell | self.control_reset
        self.terminate_buf[:] = fell
        return self.get_obs(), self.rew_buf, self.reset_buf, self.terminate_buf, self.extras

    def reset(self, env_ids=None, sample_flat=False, force_default_mask=None, disable_motion_resample=False):
        self.reset_calls.append((None if env_ids is None else env_ids.tolist(), sample_flat, disable_motion_resample))
        if env_ids is None:
            env_ids = torch.arange(self.num_envs)
        if len(env_ids) == 0:
            return self.get_obs(), {}
        self.simulator.place(env_ids)
        self.progress_buf[env_ids] = 0
        self.reset_buf[env_ids] = False
        self.terminate_buf[env_ids] = False
        return self.get_obs(), {}


def test_adapt_picks_protomotions_by_duck_typing_and_by_name():
    env = BaseEnvDouble()
    assert type(adapt(env, loop="training")) is ProtoMotionsAdapter
    assert type(adapt(env, "protomotions", loop="evaluator")) is ProtoMotionsAdapter
    with pytest.raises(ValueError, match="choose the loop"):
        adapt(env)


def test_protomotions_rollout(tmp_path):
    env = BaseEnvDouble()
    gen = torch.Generator().manual_seed(1)
    seen = []

    def policy(obs):
        seen.append({k: v.clone() for k, v in obs.items()})
        return torch.rand(env.num_envs, 3, generator=gen) * 1.5

    before = []  # the simulator state before each step, read from the double itself
    step = env.step

    def spy(action):
        before.append((env.simulator.body_pos.clone(), env.simulator.body_rot.clone()))
        out = step(action)
        spy.outs.append((out[1].clone(), out[2].clone(), out[3].clone(), {k: v.clone() for k, v in out[4].items()}))
        return out

    spy.outs = []
    env.step = spy
    path = rollrec.RolloutRecorder(env, max_steps=20, progress=False, adapter_options={"loop": "training"}).run(policy, tmp_path)
    r = rollrec.load(path)
    assert (r.T, r.N) == (20, 6) and r.dt == pytest.approx(1 / 30)

    reset = np.stack([o[1].numpy() for o in spy.outs])
    term = np.stack([o[2].numpy() for o in spy.outs])
    np.testing.assert_array_equal(np.asarray(r["done"]), reset)
    np.testing.assert_array_equal(np.asarray(r["truncated"]), reset & ~term)
    assert (reset & term).any() and (reset & ~term).any()

    assert r.reward_term_names == ["tracking", "effort"]  # scaled_r/* (weight 0 has none)
    np.testing.assert_allclose(np.asarray(r["rew_terms"])[..., 0], np.stack([o[3]["scaled_r/tracking"] for o in spy.outs]))
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), np.asarray(r["rew"]), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(r["rew"]), np.stack([o[0].numpy() for o in spy.outs]))

    # finished envs were reset the way the agent does, so the next obs is a fresh episode's
    for t in range(19):
        for e in np.flatnonzero(reset[t]):
            assert seen[t + 1]["progress"][e, 0] == 0
    np.testing.assert_array_equal(np.asarray(r["obs"])[:, :, -1], np.stack([s["progress"][:, 0] for s in seen]))

    # link poses: every body with its name, the state before each step (views copied), xyzw -> wxyz
    assert r.link_names == BODIES
    pos = np.stack([b[0].numpy() for b in before])
    rot = np.stack([b[1].numpy() for b in before])
    np.testing.assert_array_equal(np.asarray(r["link_pos"]), pos)
    np.testing.assert_array_equal(np.asarray(r["link_quat"]), rot[..., [3, 0, 1, 2]])
    np.testing.assert_array_equal(np.asarray(r["base_pos"]), pos[:, :, 0])
    assert not np.array_equal(pos[1:], pos[:-1])


def test_multiplicative_reward_is_a_term(tmp_path):
    env = BaseEnvDouble(n=2)
    inner = env.step

    def step(action):
        obs, rew, reset, term, extras = inner(action)
        extras["multiplicative_reward"] = torch.full((2,), 0.25)
        rew += 0.25
        return obs, rew, reset, term, extras

    env.step = step
    path = rollrec.RolloutRecorder(env, max_steps=5, progress=False, adapter_options={"loop": "training"}).run(
        lambda o: torch.zeros(2, 3), tmp_path)
    r = rollrec.load(path)
    assert r.reward_term_names == ["tracking", "effort", "multiplicative"]
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), np.asarray(r["rew"]), atol=1e-6)


class Agent:
    """What the agent's loops call (``agent.py``): latents added in ``pre_collect_step``, a TensorDict-like out."""

    def __init__(self, n):
        self.steps, self.latent, self.rollout_resets = [], torch.zeros(n, 2), []
        self.model = SimpleNamespace(reset_rollout_context=lambda env_ids=None: self.rollout_resets.append(env_ids.tolist()))

    def pre_collect_step(self, step):
        self.steps.append(step)
        self.latent = self.latent + 1.0  # ASE-style: agent state advanced once per step

    def add_agent_info_to_obs(self, obs):
        return {**obs, "latents": self.latent.clone()}

    def obs_dict_to_tensordict(self, obs):
        return SimpleNamespace(td=obs, batch_size=[len(self.latent)])

    def post_env_step_modifications(self, dones, terminated, extras):
        self.model.reset_rollout_context(env_ids=dones.nonzero(as_tuple=False).squeeze(-1))
        return dones, terminated, extras


def test_evaluator_loop_resets_once_and_never_again(tmp_path):
    env = BaseEnvDouble(n=4, max_episode_length=6, strict_resets=False)
    env.motion_manager = object()  # a mimic env: MimicEvaluator's reset kwargs
    agent, inputs = Agent(4), []

    def policy(obs_td):
        inputs.append(obs_td)
        return torch.full((4, 3), 0.5)

    path = rollrec.RolloutRecorder(env, max_steps=12, progress=False,
                                   adapter_options={"loop": "evaluator", "agent": agent}).run(policy, tmp_path)
    assert env.reset_calls == [([0, 1, 2, 3], True, True)]  # once, with sample_flat and disable_motion_resample
    assert agent.steps == list(range(12)) and inputs[3].td["latents"][0, 0] == 4.0  # agent-prepared input
    r = rollrec.load(path)
    done, past, reason = np.asarray(r["done"]), np.asarray(r["past_end"]), np.asarray(r["end_reason"])
    assert done.sum(0).tolist() == [1, 1, 1, 1] and done[4].all()  # the first end only (time limit at step 5)
    assert past[5:].all() and not past[:5].any()
    assert (reason[4] == 2).all() and np.asarray(r["truncated"])[4].all()
    assert r.meta["loop"] == "evaluator"


def test_training_loop_resets_done_envs_and_the_rollout_context(tmp_path):
    env = BaseEnvDouble(n=3, max_episode_length=5)
    agent = Agent(3)
    step = env.step

    def with_control_reset(action):  # a control component resets env 1 at its 2nd step, without terminating
        env.control_reset[:] = False
        env.control_reset[1] = bool(env.progress_buf[1] == 1)
        return step(action)

    env.step = with_control_reset
    path = rollrec.RolloutRecorder(env, max_steps=9, progress=False, adapter_options={"loop": "training", "agent": agent}).run(
        lambda o: torch.full((3, 3), 0.2), tmp_path)
    r = rollrec.load(path)
    done, trunc, reason = np.asarray(r["done"]), np.asarray(r["truncated"]), np.asarray(r["end_reason"])
    assert reason[1, 1] == 3 and done[1, 1] and not trunc[1, 1]  # another reset: done, not a time limit
    assert reason[3, 0] == 2 and trunc[3, 0]  # time limit: progress_buf >= max_episode_length - 1
    assert not (trunc & (reason != 2)).any()
    assert agent.rollout_resets[1] == [1] and agent.rollout_resets[3] == [0, 1, 2]  # post_env_step_modifications(dones)
