"""Real mjlab (installed by ``scripts/setup.sh --test``) recorded through `RolloutRecorder`.

Go1 velocity task on warp's CPU device, N=16, 60 steps of random actions. The contract checked
is mjlab's own (``mjlab/envs/manager_based_rl_env.py`` ``ManagerBasedRlEnv.step``;
``mjlab/managers/reward_manager.py`` ``RewardManager.compute`` with ``scale_by_dt``;
``mjlab/entity/data.py`` ``EntityData.root_link_pose_w``/``body_link_pose_w``, wxyz). A spy on
the env's ``step`` keeps what the env returned and the pose it held *before* the step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rollrec
from rollrec.adapters import MjlabAdapter, adapt

pytest.importorskip("mjlab", reason="mjlab is installed by scripts/setup.sh --test")
pytestmark = pytest.mark.slow

N, T, TASK = 16, 60, "Mjlab-Velocity-Flat-Unitree-Go1"


@pytest.fixture(scope="module")
def go1():
    import mjlab.tasks  # noqa: F401  (registers the tasks)
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.registry import load_env_cfg

    cfg = load_env_cfg(TASK)
    cfg.scene.num_envs = N
    cfg.seed = 3
    step_dt = cfg.sim.mujoco.timestep * cfg.decimation
    cfg.episode_length_s = 25 * step_dt  # time-outs at steps 25 and 50 of every env not fallen before
    cfg.terminations["fell_over"].params["limit_angle"] = math.radians(12.0)  # random actions tip some over
    env = ManagerBasedRlEnv(cfg, device="cpu")
    yield env
    env.close()


class StepSpy:
    """Wraps ``env.step``: keeps the env's outputs and the robot's pose before each step."""

    def __init__(self, env):
        self.env, self.inner = env, env.step
        self.calls = []

    def __call__(self, action):
        robot = self.env.scene["robot"]
        before = (robot.data.root_link_pose_w.clone(), robot.data.body_link_pose_w.clone())
        obs, rew, terminated, time_outs, extras = self.inner(action)
        self.calls.append({
            "pose": before, "rew": rew.clone(), "terminated": terminated.clone(), "time_outs": time_outs.clone(),
            "step_reward": self.env.reward_manager._step_reward.clone(),
        })
        return obs, rew, terminated, time_outs, extras


def test_real_mjlab_env_is_recognised_by_its_class(go1):
    adapter = adapt(go1)
    assert type(adapter) is MjlabAdapter
    assert adapter.mj_model is go1.sim.mj_model
    robot = go1.scene["robot"]
    assert adapter.link_body_ids == robot.indexing.body_ids.tolist()
    import mujoco

    names = [mujoco.mj_id2name(go1.sim.mj_model, mujoco.mjtObj.mjOBJ_BODY, i) for i in adapter.link_body_ids]
    assert [n.split("/")[-1] for n in names] == adapter.link_names


def test_real_mjlab_rollout(go1, tmp_path, monkeypatch):
    spy = StepSpy(go1)
    monkeypatch.setattr(go1, "step", spy)
    gen = torch.Generator().manual_seed(0)
    act_dim = go1.single_action_space.shape[0]

    def policy(obs):
        assert set(obs) == {"actor", "critic"}
        return torch.randn(N, act_dim, generator=gen) * 2.0

    path = rollrec.RolloutRecorder(go1, max_steps=T, progress=False).run(policy, tmp_path)
    r = rollrec.load(path)
    assert (r.T, r.N) == (T, N) and r.dt == go1.step_dt
    assert r.meta["adapter"] == "MjlabAdapter"
    assert [e["name"] for e in r.meta["obs_layout"]] == ["actor", "critic"]

    # reward terms: the env's active terms, scaled by dt as the env summed them
    assert r.reward_term_names == list(go1.reward_manager.active_terms)
    rew, terms = np.asarray(r["rew"]), np.asarray(r["rew_terms"])
    np.testing.assert_array_equal(rew, np.stack([c["rew"].numpy() for c in spy.calls]))
    np.testing.assert_allclose(terms, np.stack([c["step_reward"].numpy() for c in spy.calls]) * go1.step_dt, rtol=1e-6)
    np.testing.assert_allclose(terms.sum(-1), rew, atol=1e-5)

    # terminations and time-outs kept apart
    terminated = np.stack([c["terminated"].numpy() for c in spy.calls])
    time_outs = np.stack([c["time_outs"].numpy() for c in spy.calls])
    np.testing.assert_array_equal(np.asarray(r["done"]), terminated | time_outs)
    np.testing.assert_array_equal(np.asarray(r["truncated"]), time_outs)
    assert (terminated & ~time_outs).any() and time_outs.any(), "the run should have both kinds of endings"

    # every body with its name; the pose is the one held before each step (the state obs describes)
    robot = go1.scene["robot"]
    assert r.link_names == list(robot.body_names) and len(r.link_names) == 13
    root = np.stack([c["pose"][0].numpy() for c in spy.calls])
    bodies = np.stack([c["pose"][1].numpy() for c in spy.calls])
    np.testing.assert_array_equal(np.asarray(r["base_pos"]), root[..., :3])
    np.testing.assert_array_equal(np.asarray(r["base_quat"]), root[..., 3:])  # wxyz as mjlab gives it
    np.testing.assert_array_equal(np.asarray(r["link_pos"]), bodies[..., :3])
    np.testing.assert_array_equal(np.asarray(r["link_quat"]), bodies[..., 3:])
