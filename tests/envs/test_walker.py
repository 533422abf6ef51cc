"""The built-in `WalkerEnv` and its scripted `GaitPolicy`."""

from __future__ import annotations

import math

import pytest
import torch

from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.envs.walker import _HIP_OFFSETS, _SHIN, _THIGH

L = len(WalkerEnv.link_names)


def _run(env: WalkerEnv, steps: int, policy=None):
    """Step ``env`` with ``policy`` (default `GaitPolicy`); returns stacked per-step outputs."""
    policy = policy or GaitPolicy()
    out = {k: [] for k in ("obs", "rew", "terminated", "truncated", "act")}
    obs = env.reset()
    with torch.no_grad():
        for _ in range(steps):
            act = policy(obs)
            obs, rew, terminated, truncated, _ = env.step(act)
            for k, v in zip(out, (obs, rew, terminated, truncated, act)):
                out[k].append(v)
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.slow
def test_same_seed_same_rollout_other_seed_other_rollout():
    a = _run(WalkerEnv(16, seed=3), 40)
    b = _run(WalkerEnv(16, seed=3), 40)
    c = _run(WalkerEnv(16, seed=4), 40)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["obs"], c["obs"])


def test_shapes_and_dtypes():
    N = 5
    env = WalkerEnv(N)
    obs = env.reset()
    assert obs.shape == (N, env.obs_dim) == (N, 256) and obs.dtype == torch.float32
    obs, rew, terminated, truncated, info = env.step(torch.zeros(N, env.act_dim))
    assert obs.shape == (N, 256) and obs.dtype == torch.float32
    assert rew.shape == (N,) and rew.dtype == torch.float32
    assert terminated.dtype == truncated.dtype == torch.bool and terminated.shape == truncated.shape == (N,)
    assert list(info["reward_terms"]) == list(WalkerEnv.reward_term_names)
    assert all(t.shape == (N,) and t.dtype == torch.float32 for t in info["reward_terms"].values())
    assert env.base_pos.shape == (N, 3) and env.base_quat.shape == (N, 4)
    link_pos, link_quat = env.link_poses()
    assert link_pos.shape == (N, L, 3) and link_quat.shape == (N, L, 4)
    assert len(WalkerEnv.link_parents) == L == 13
    assert torch.isfinite(obs).all()


def test_needs_at_least_one_env():
    with pytest.raises(ValueError, match="num_envs must be at least 1, got 0"):
        WalkerEnv(0)


@pytest.mark.slow
def test_terminations_and_truncations_within_a_few_hundred_steps():
    out = _run(WalkerEnv(64, seed=0), 300)
    assert out["terminated"].any(dim=0).sum() >= 5  # falls, from random pushes
    assert out["truncated"].any(dim=0).sum() >= 5  # time limit
    assert not (out["terminated"] & out["truncated"]).any()


@pytest.mark.slow
def test_truncation_after_max_episode_steps():
    env = WalkerEnv(32, seed=1, max_episode_steps=40)
    out = _run(env, 200)
    steps_since_reset = torch.zeros(32, dtype=torch.long)
    seen = 0
    first = torch.ones(32, dtype=torch.bool)  # the first episode starts at a random clock
    for t in range(200):
        steps_since_reset += 1
        trunc = out["truncated"][t] & ~first
        assert (steps_since_reset[trunc] == 40).all()
        seen += int(trunc.sum())
        ended = out["terminated"][t] | out["truncated"][t]
        steps_since_reset[ended] = 0
        first &= ~ended
    assert seen > 0


def test_reward_terms_sum_to_the_reward():
    env = WalkerEnv(32, seed=2)
    policy = GaitPolicy()
    obs = env.reset()
    with torch.no_grad():
        for _ in range(50):
            obs, rew, _, _, info = env.step(policy(obs))
            torch.testing.assert_close(torch.stack(list(info["reward_terms"].values())).sum(0), rew)


def test_actions_are_clipped():
    a = WalkerEnv(4, seed=0)
    b = WalkerEnv(4, seed=0)
    a.reset(), b.reset()
    bounds = torch.tensor([1.0, -1.0]).repeat(16).reshape(4, 8)
    torch.testing.assert_close(a.step(bounds * 5)[0], b.step(bounds)[0])
    torch.testing.assert_close(a.last_action, bounds)


def _walk(env: WalkerEnv, steps: int):
    policy = GaitPolicy()
    obs = env.reset()
    with torch.no_grad():
        for _ in range(steps):
            obs, *_ = env.step(policy(obs))


def test_link_kinematics_follow_the_skeleton():
    env = WalkerEnv(16, seed=5)
    _walk(env, 37)
    link_pos, _ = env.link_poses()
    parents = WalkerEnv.link_parents
    assert torch.equal(link_pos[:, 0], env.base_pos)
    for child, parent in enumerate(parents):
        if parent < 0:
            continue
        length = (link_pos[:, child] - link_pos[:, parent]).norm(dim=-1)
        name = WalkerEnv.link_names[child]
        if name.endswith("_thigh"):  # the hip, rigidly offset from the base
            leg = WalkerEnv.link_names.index(name) // 3
            expected = math.hypot(*_HIP_OFFSETS[leg])
        elif name.endswith("_shin"):  # the knee, a thigh length below the hip
            expected = _THIGH
        else:  # the foot, at the end of the chain, a shin length below the knee
            assert name.endswith("_foot")
            expected = _SHIN
        torch.testing.assert_close(length, torch.full_like(length, expected), rtol=0, atol=1e-5, msg=name)


def test_feet_are_the_ends_of_the_chains():
    parents = WalkerEnv.link_parents
    leaves = [WalkerEnv.link_names[i] for i in range(L) if i not in parents]
    assert leaves == [f"{leg}_foot" for leg in ("FL", "FR", "HL", "HR")]


@pytest.mark.slow
def test_quaternions_have_unit_norm():
    env = WalkerEnv(16, seed=6)
    _walk(env, 80)
    _, link_quat = env.link_poses()
    for q in (env.base_quat, link_quat):
        torch.testing.assert_close(q.norm(dim=-1), torch.ones(q.shape[:-1]), rtol=0, atol=1e-5)


def test_gait_policy_follows_the_phase_in_the_observation():
    env = WalkerEnv(8, seed=0)
    obs = env.reset()
    policy = GaitPolicy()
    shifted = obs.clone()
    phase = env.phase + math.pi / 2
    shifted[:, 33], shifted[:, 34] = torch.sin(phase), torch.cos(phase)
    with torch.no_grad():
        assert not torch.allclose(policy(obs), policy(shifted))
        noisy_last_action = obs.clone()
        noisy_last_action[:, 25:33] = torch.rand(8, 8)
        torch.testing.assert_close(policy(noisy_last_action), policy(obs))


@pytest.mark.slow
def test_gait_policy_walks_forward():
    env = WalkerEnv(64, seed=0)
    policy = GaitPolicy()
    obs = env.reset()
    forward = []
    with torch.no_grad():
        for _ in range(200):
            obs, _, _, _, info = env.step(policy(obs))
            forward.append(info["reward_terms"]["forward_vel"].mean())
    assert torch.stack(forward).mean() > 0.3


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_gait_policy_is_torchscript_able():
    policy = GaitPolicy()
    scripted = torch.jit.script(policy)
    obs = WalkerEnv(4, seed=0).reset()
    with torch.no_grad():
        act = scripted(obs)
        torch.testing.assert_close(act, policy(obs))
    assert act.shape == (4, 8) and act.abs().max() <= 1.0


def test_quat_rotate_matches_the_rotation_matrix_and_broadcasts():
    from rollrec.envs.rotations import quat_rotate

    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(5, 1, 4, generator=g, dtype=torch.float64), dim=-1)
    v = torch.randn(1, 7, 3, generator=g, dtype=torch.float64)
    w, x, y, z = q.unbind(-1)
    rot = torch.stack((
        torch.stack((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)), -1),
        torch.stack((2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)), -1),
        torch.stack((2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)), -1),
    ), -2)  # [5, 1, 3, 3]
    torch.testing.assert_close(quat_rotate(q, v), (rot @ v[..., None])[..., 0], rtol=0, atol=1e-12)


def test_height_scan_turns_with_the_yaw():
    """The scan grid, rotated by the base's yaw about z, sampled on the terrain (obs[36:])."""
    from rollrec.envs.walker import _SCAN, terrain_height

    env = WalkerEnv(3, seed=2)
    obs = env.reset()
    for _ in range(40):
        obs, *_ = env.step(GaitPolicy()(obs))
    yaw = env.rpy[:, 2].double()
    sx = torch.linspace(-0.6, 1.3, _SCAN[0], dtype=torch.float64)
    sy = torch.linspace(-0.5, 0.5, _SCAN[1], dtype=torch.float64)
    gx, gy = (g.reshape(-1) for g in torch.meshgrid(sx, sy, indexing="ij"))
    pos = env.pos.double()
    x = pos[:, :1] + torch.cos(yaw)[:, None] * gx - torch.sin(yaw)[:, None] * gy
    y = pos[:, 1:2] + torch.sin(yaw)[:, None] * gx + torch.cos(yaw)[:, None] * gy
    want = pos[:, 2:3] - terrain_height(x, y)
    torch.testing.assert_close(obs[:, 36:].double(), want, rtol=0, atol=1e-5)
