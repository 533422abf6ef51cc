"""Real mjlab (installed by ``scripts/setup.sh --test``) recorded through `RolloutRecorder`.

The Go1 velocity task (``Mjlab-Velocity-Flat-Unitree-Go1``) on warp's CPU device, ``auto_reset`` on
(the default), N=4, 105 steps of random actions; episodes are 25 steps and tilts past 16 degrees
end one, so every env resets at least twice, both ways. The contract checked is mjlab's own
(``mjlab/envs/manager_based_rl_env.py`` ``ManagerBasedRlEnv.step``: finished envs reset inside
the step, then one ``sim.forward()`` before the obs; ``mjlab/managers/reward_manager.py``
``RewardManager.compute`` with ``scale_by_dt``; ``mjlab/entity/data.py``
``EntityData.root_link_pose_w``/``body_link_pose_w``, wxyz).

Two envs built from the same config and seed get the same actions, one after the other (mjlab
seeds the process-wide RNGs, ``random_utils.seed_rng``, when an env is built): one stepped by the
test alone, as a user's loop would (``env.reset()``, then ``env.step(action)``), one recorded by
`RolloutRecorder`, with a spy on its ``step`` keeping what the env returned and the pose it held
*before* the step. Recording must change nothing (obs, rewards, terminations, time-outs and
``extras`` bit-identical), and the recorded base and link poses must be the state each obs
describes: the env's own buffers before the step, and MuJoCo's C ``mj_kinematics`` (not mjlab's
warp kernels) of the unrecorded twin's ``qpos``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rollrec
from rollrec.adapters import MjlabAdapter, adapt

pytest.importorskip("mjlab", reason="mjlab is installed by scripts/setup.sh --test")
mujoco = pytest.importorskip("mujoco")
pytestmark = pytest.mark.slow

N, T, TASK, SEED = 4, 105, "Mjlab-Velocity-Flat-Unitree-Go1", 5


def make_env():
    import mjlab.tasks  # noqa: F401  (registers the tasks)
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.registry import load_env_cfg

    cfg = load_env_cfg(TASK)
    cfg.scene.num_envs = N
    cfg.seed = SEED
    cfg.episode_length_s = 25 * cfg.sim.mujoco.timestep * cfg.decimation
    cfg.terminations["fell_over"].params["limit_angle"] = math.radians(16.0)
    assert cfg.auto_reset
    return ManagerBasedRlEnv(cfg, device="cpu")


def clone(x):
    """A deep copy of what the env returned: mjlab reuses its buffers from step to step."""
    if isinstance(x, dict):
        return {k: clone(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(clone(v) for v in x)
    return x.clone() if isinstance(x, torch.Tensor) else x


def assert_same(a, b, where):
    """Bit-identical, recursively through dicts (obs groups, extras)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        same = torch.equal(a, b) if not a.is_floating_point() else torch.equal(a.isnan(), b.isnan()) and torch.equal(
            a.nan_to_num(), b.nan_to_num())
        assert same, f"{where}: max diff {(a - b).abs().max()}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def mujoco_kinematics(env, body_ids):
    """Base (free joint ``qpos``) and link poses of each env's current ``qpos``, by MuJoCo's C
    ``mj_kinematics`` on a private ``MjData`` (world frame, wxyz)."""
    model = env.sim.mj_model
    scratch = mujoco.MjData(model)
    adr = model.jnt_qposadr[np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)[0]]
    qpos = torch.as_tensor(env.sim.data.qpos).double().numpy()
    out = {"base_pos": [], "base_quat": [], "link_pos": [], "link_quat": []}
    for q in qpos:
        scratch.qpos[:] = q
        mujoco.mj_kinematics(model, scratch)
        out["base_pos"].append(q[adr:adr + 3].copy())
        out["base_quat"].append(q[adr + 3:adr + 7].copy())
        out["link_pos"].append(scratch.xpos[body_ids].copy())
        out["link_quat"].append(scratch.xquat[body_ids].copy())
    return {k: np.stack(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The unrecorded twin's outputs and poses, then the recorded run: its file, what its env
    returned, the pose buffers before each step, the obs the policy got, and the env (open)."""
    actions = torch.randn(T, N, 12, generator=torch.Generator().manual_seed(0))  # Go1: 12 joint targets

    env = make_env()  # the user's loop, unrecorded
    assert env.single_action_space.shape == (12,)
    body_ids = env.scene["robot"].indexing.body_ids.tolist()
    obs, _ = env.reset()
    expected, poses = [], []
    for t in range(T):
        poses.append(mujoco_kinematics(env, body_ids))
        out = env.step(actions[t])
        expected.append((clone(obs), *clone(out)))
        obs = out[0]
    env.close()

    env = make_env()  # the same, recorded
    inner, calls, obs_seen = env.step, [], []

    def spy(action):
        robot = env.scene["robot"]
        before = (robot.data.root_link_pose_w.clone(), robot.data.body_link_pose_w.clone())
        out = inner(action)
        calls.append({"pose": before, "out": clone(out), "step_reward": env.reward_manager._step_reward.clone()})
        return out

    env.step = spy

    def policy(obs):
        assert set(obs) == {"actor", "critic"}
        obs_seen.append(clone(obs))
        return actions[len(obs_seen) - 1]

    path = rollrec.RolloutRecorder(env, max_steps=T, progress=False).run(policy, tmp_path_factory.mktemp("mjlab"))
    del env.step
    yield {"expected": expected, "poses": poses, "calls": calls, "obs_seen": obs_seen, "r": rollrec.load(path),
           "env": env}
    env.close()


def test_real_mjlab_env_is_recognised_by_its_class(runs):
    go1 = runs["env"]
    adapter = adapt(go1)
    assert type(adapter) is MjlabAdapter
    assert adapter.mj_model is go1.sim.mj_model
    robot = go1.scene["robot"]
    assert adapter.link_body_ids == robot.indexing.body_ids.tolist()
    names = [mujoco.mj_id2name(go1.sim.mj_model, mujoco.mjtObj.mjOBJ_BODY, i) for i in adapter.link_body_ids]
    assert [n.split("/")[-1] for n in names] == adapter.link_names


def test_real_mjlab_rollout(runs):
    go1, r, calls = runs["env"], runs["r"], runs["calls"]
    assert (r.T, r.N) == (T, N) and r.dt == go1.step_dt
    assert r.meta["adapter"] == "MjlabAdapter"
    assert [e["name"] for e in r.meta["obs_layout"]] == ["actor", "critic"]

    # reward terms: the env's active terms, scaled by dt as the env summed them
    assert r.reward_term_names == list(go1.reward_manager.active_terms)
    rew, terms = np.asarray(r["rew"]), np.asarray(r["rew_terms"])
    np.testing.assert_array_equal(rew, np.stack([c["out"][1].numpy() for c in calls]))
    np.testing.assert_allclose(terms, np.stack([c["step_reward"].numpy() for c in calls]) * go1.step_dt, rtol=1e-6)
    np.testing.assert_allclose(terms.sum(-1), rew, atol=1e-5)

    # terminations and time-outs kept apart
    terminated = np.stack([c["out"][2].numpy() for c in calls])
    time_outs = np.stack([c["out"][3].numpy() for c in calls])
    np.testing.assert_array_equal(np.asarray(r["done"]), terminated | time_outs)
    np.testing.assert_array_equal(np.asarray(r["truncated"]), time_outs)
    assert (terminated & ~time_outs).any() and time_outs.any(), "the run should have both kinds of endings"
    assert ((terminated | time_outs).sum(axis=0) >= 2).all(), "every env resets at least twice"

    # every body with its name; the pose is the one held before each step (the state obs describes)
    robot = go1.scene["robot"]
    assert r.link_names == list(robot.body_names) and len(r.link_names) == 13
    root = np.stack([c["pose"][0].numpy() for c in calls])
    bodies = np.stack([c["pose"][1].numpy() for c in calls])
    np.testing.assert_array_equal(np.asarray(r["base_pos"]), root[..., :3])
    np.testing.assert_array_equal(np.asarray(r["base_quat"]), root[..., 3:])  # wxyz as mjlab gives it
    np.testing.assert_array_equal(np.asarray(r["link_pos"]), bodies[..., :3])
    np.testing.assert_array_equal(np.asarray(r["link_quat"]), bodies[..., 3:])


def test_recording_changes_nothing_and_poses_are_the_simulators(runs):
    expected, calls, r = runs["expected"], runs["calls"], runs["r"]
    assert len(calls) == T
    for step, (want, got_obs, call) in enumerate(zip(expected, runs["obs_seen"], calls)):
        assert_same(got_obs, want[0], f"step {step} obs the policy got")
        for name, a, b in zip(("obs", "rew", "terminated", "time_outs", "extras"), want[1:], call["out"]):
            assert_same(b, a, f"step {step} {name}")
    actor_obs = np.stack([w[0]["actor"].numpy() for w in expected])  # the first obs group, as recorded
    np.testing.assert_array_equal(np.asarray(r["obs"])[..., :actor_obs.shape[-1]], actor_obs)
    ref = {k: np.stack([p[k] for p in runs["poses"]]) for k in runs["poses"][0]}
    for key, atol in (("base_pos", 1e-6), ("base_quat", 1e-6), ("link_pos", 2e-5), ("link_quat", 2e-5)):
        got = np.asarray(r[key], dtype=np.float64)
        if key.endswith("quat"):  # q and -q are the same rotation
            got = got * np.sign((got * ref[key]).sum(-1, keepdims=True))
        np.testing.assert_allclose(got, ref[key], atol=atol, rtol=0, err_msg=key)
