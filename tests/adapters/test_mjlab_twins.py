"""mjlab: recording changes nothing, and records the state each obs describes.

Two Go1 velocity envs (``Mjlab-Velocity-Flat-Unitree-Go1`` on warp's CPU device, ``auto_reset`` on,
the default) built from the same config and seed get the same actions: one is recorded by
`RolloutRecorder`, the other is stepped by the test alone, the way a user's loop would
(``env.reset()``, then ``env.step(action)``; mjlab's ``ManagerBasedRlEnv.step`` resets finished envs
itself and calls ``sim.forward()`` once before computing the obs, ``mjlab/envs/manager_based_rl_env.py``).
Their obs, rewards, terminations, time-outs and ``extras`` must be bit-identical. The recorded
base and link poses must be the unrecorded twin's state before each step: the free joint's ``qpos``
and MuJoCo's own ``mj_kinematics`` (the C library, not mjlab's warp kernels) of that ``qpos``.
Episodes are 25 steps and tilts past 16 degrees end one, so the 105 steps cross resets of every env.
The runs go one after the other: mjlab seeds the process-wide RNGs (``random_utils.seed_rng``)
when an env is built.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rollrec

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


def test_recording_changes_nothing_and_poses_are_the_simulators(tmp_path):
    gen = torch.Generator().manual_seed(0)
    actions = torch.randn(T, N, 12, generator=gen)  # Go1: 12 joint position targets

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
    inner, seen, obs_seen = env.step, [], []

    def spy(action):
        out = inner(action)
        seen.append(clone(out))
        return out

    env.step = spy

    def policy(obs):
        obs_seen.append(clone(obs))
        return actions[len(obs_seen) - 1]

    path = rollrec.RolloutRecorder(env, max_steps=T, progress=False).run(policy, tmp_path)
    env.close()
    assert len(seen) == T
    for step, (want, got_obs, got) in enumerate(zip(expected, obs_seen, seen)):
        assert_same(got_obs, want[0], f"step {step} obs the policy got")
        for name, a, b in zip(("obs", "rew", "terminated", "time_outs", "extras"), want[1:], got):
            assert_same(b, a, f"step {step} {name}")

    terminated = torch.stack([w[3] for w in expected]).numpy()
    time_outs = torch.stack([w[4] for w in expected]).numpy()
    assert (terminated & ~time_outs).any() and time_outs.any(), "the run must end episodes both ways"
    assert ((terminated | time_outs).sum(axis=0) >= 2).all(), "every env resets at least twice"

    r = rollrec.load(path)
    assert (r.T, r.N) == (T, N)
    np.testing.assert_array_equal(np.asarray(r["done"]), terminated | time_outs)
    actor_obs = np.stack([w[0]["actor"].numpy() for w in expected])  # the first obs group, as recorded
    np.testing.assert_array_equal(np.asarray(r["obs"])[..., :actor_obs.shape[-1]], actor_obs)
    ref = {k: np.stack([p[k] for p in poses]) for k in poses[0]}
    for key, atol in (("base_pos", 1e-6), ("base_quat", 1e-6), ("link_pos", 2e-5), ("link_quat", 2e-5)):
        got = np.asarray(r[key], dtype=np.float64)
        if key.endswith("quat"):  # q and -q are the same rotation
            got = got * np.sign((got * ref[key]).sum(-1, keepdims=True))
        np.testing.assert_allclose(got, ref[key], atol=atol, rtol=0, err_msg=key)
