"""Recording changes nothing, and records the state each obs describes: every Gymnasium MuJoCo env.

For every env id ``gymnasium[mujoco]`` registers and this MuJoCo runs, in each autoreset mode
(``gymnasium/vector/vector_env.py`` ``AutoresetMode``: NEXT_STEP, SAME_STEP, DISABLED), two twin
``SyncVectorEnv`` s get the same seeds and actions: one recorded by `RolloutRecorder`, one stepped
by the test alone. Their obs, rewards, terminations, truncations and infos must be bit-identical
(a recorder that ran ``mj_kinematics`` on the env's own ``MjData`` changed Ant-v5's and
Humanoid-v5's forward reward, which read ``xpos`` before ``do_simulation``). The recorded base
and link poses must equal the unrecorded twin's state before each step: the free joint's
``qpos`` and the link poses ``mj_forward`` gives on a copy of its ``MjData``. Episodes are 20
steps, so the 105 steps cross several resets of every env.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import rollrec

gym = pytest.importorskip("gymnasium")
mujoco = pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")

N, T, EPISODE = 2, 105, 20
MODES = ("NextStep", "SameStep", "Disabled")


def mujoco_env_ids() -> list[str]:
    ids = []
    for env_id, spec in sorted(gym.registry.items()):
        if not (isinstance(spec.entry_point, str) and spec.entry_point.startswith("gymnasium.envs.mujoco")):
            continue
        try:  # e.g. Pusher-v4 needs mujoco<3: it does not run here
            gym.make(env_id).close()
        except Exception:  # noqa: BLE001 - an env that cannot be built here is not an env to test
            continue
        ids.append(env_id)
    return ids


ENV_IDS = mujoco_env_ids()


def make(env_id: str, mode: str):
    return gym.make_vec(env_id, num_envs=N, vectorization_mode="sync", max_episode_steps=EPISODE,
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode(mode)})


def reference_pose(env) -> dict[str, np.ndarray]:
    """The state a sub-env's obs describes, from the simulator itself: ``qpos`` and ``mj_forward``
    on a copy of its ``MjData`` (the env's own data is not touched)."""
    base_pos, base_quat, link_pos, link_quat = [], [], [], []
    for sub in env.envs:
        model, data = sub.unwrapped.model, copy.copy(sub.unwrapped.data)
        mujoco.mj_forward(model, data)
        free = np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
        if free.size:
            a = model.jnt_qposadr[free[0]]
            base_pos.append(data.qpos[a:a + 3].copy())
            base_quat.append(data.qpos[a + 3:a + 7].copy())
        else:
            base_pos.append(data.xpos[1].copy())
            base_quat.append(data.xquat[1].copy())
        link_pos.append(data.xpos[1:].copy())
        link_quat.append(data.xquat[1:].copy())
    return {"base_pos": np.stack(base_pos), "base_quat": np.stack(base_quat),
            "link_pos": np.stack(link_pos), "link_quat": np.stack(link_quat)}


def assert_same(a, b, where: str) -> None:
    """Bit-identical, recursively through dicts (infos) and arrays."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object:
        assert a.shape == b.shape, where
        for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
            assert_same(x, y, f"{where}[{i}]") if x is not None or y is not None else None
        return
    assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
    assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), f"{where}: max diff {np.abs(a - b).max()}"


def unrecorded_twin(env_id: str, mode: str, actions: np.ndarray):
    """The user's own loop without rollrec: what the env returns, and its state before each step."""
    env = make(env_id, mode)
    env.reset(seed=7)
    obs, _ = env.reset()  # the recorded twin's RolloutRecorder resets once more, unseeded
    outs, poses = [], []
    for t in range(T):
        poses.append(reference_pose(env))
        out = env.step(actions[t])
        outs.append((obs, *out))
        obs = out[0]
        done = out[2] | out[3]
        if mode == "Disabled" and done.any():  # DISABLED: the user resets finished envs
            obs, _ = env.reset(options={"reset_mask": done})
    env.close()
    return outs, poses


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_recording_changes_nothing_and_poses_are_the_simulators(tmp_path, env_id, mode):
    probe = make(env_id, mode)
    space = probe.single_action_space
    probe.close()
    rng = np.random.default_rng(0)
    actions = rng.uniform(space.low, space.high, (T, N, *space.shape)).astype(space.dtype)
    expected, poses = unrecorded_twin(env_id, mode, actions)

    env = make(env_id, mode)
    env.reset(seed=7)
    inner, seen = env.step, []

    def spy(action):  # what the recorded env returned, untouched
        out = inner(action)
        seen.append(copy.deepcopy(out))
        return out

    env.step = spy
    t = iter(range(T))
    path = rollrec.RolloutRecorder(env, max_steps=T, progress=False).run(lambda obs: torch.from_numpy(actions[next(t)]),
                                                                         tmp_path)
    env.close()
    assert len(seen) == T
    for step, (want, got) in enumerate(zip(expected, seen)):
        for name, a, b in zip(("obs", "rew", "terminated", "truncated", "info"), want[1:], got):
            assert_same(b, a, f"{env_id} {mode} step {step} {name}")

    r = rollrec.load(path)
    assert r.meta["autoreset_mode"] == mode
    done = np.stack([w[3] | w[4] for w in expected])
    assert done.sum() >= 2 * N, "the run should cross resets"
    np.testing.assert_array_equal(np.asarray(r["obs"]), np.stack([w[0] for w in expected]).astype(np.asarray(r["obs"]).dtype))
    np.testing.assert_array_equal(np.asarray(r["rew"]), np.stack([w[2] for w in expected]).astype(np.asarray(r["rew"]).dtype))
    np.testing.assert_array_equal(np.asarray(r["done"]), done)
    for key in ("base_pos", "base_quat", "link_pos", "link_quat"):
        ref = np.stack([p[key] for p in poses])
        np.testing.assert_array_equal(np.asarray(r[key]), ref.astype(np.float32), err_msg=f"{env_id} {mode} {key}")


@pytest.mark.parametrize("env_id", ["Ant-v5", "Humanoid-v5"])
def test_same_step_keeps_the_last_steps_reward_terms(tmp_path, env_id):
    """SAME_STEP moves a finished sub-env's info to ``info["final_info"]``
    (``gymnasium/vector/sync_vector_env.py`` ``SyncVectorEnv.step``): its terms are still recorded."""
    env = make(env_id, "SameStep")
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    space = env.single_action_space
    path = rollrec.RolloutRecorder(env, max_steps=45, progress=False).run(
        lambda obs: torch.from_numpy(rng.uniform(space.low, space.high, (N, *space.shape)).astype(space.dtype)), tmp_path)
    env.close()
    r = rollrec.load(path)
    done, terms, rew = np.asarray(r["done"]), np.asarray(r["rew_terms"]), np.asarray(r["rew"])
    assert done.sum() >= N
    assert np.abs(terms[done]).sum(-1).min() > 0  # the last step of each episode has its terms
    np.testing.assert_allclose(terms.sum(-1), rew, atol=1e-4)
