"""Real Gymnasium MuJoCo (``gymnasium[mujoco]``, installed by ``scripts/setup.sh --test``).

Ant-v5 as a ``SyncVectorEnv`` (``gymnasium/vector/sync_vector_env.py``): reward terms are
``info["reward_<name>"]`` (``gymnasium/envs/mujoco/ant_v5.py`` ``AntEnv.step``), the base pose is
the free joint's ``qpos`` of each sub-env's ``MjData``, NEXT_STEP autoreset steps are marked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rollrec
from rollrec.adapters import GymVectorAdapter, adapt

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")

N, T = 8, 40


def test_ant_v5(tmp_path):
    import mujoco

    env = gym.make_vec("Ant-v5", num_envs=N, vectorization_mode="sync", max_episode_steps=15)
    adapter = adapt(env)
    assert type(adapter) is GymVectorAdapter and adapter.dt == pytest.approx(0.05)
    model = env.envs[0].unwrapped.model
    assert adapter.mj_model is model and adapter.link_body_ids == list(range(1, model.nbody))
    assert adapter.link_names[0] == "torso"

    datas = [e.unwrapped.data for e in env.envs]
    inner, seen = env.step, []

    def spy(action):
        qpos = np.stack([d.qpos[:7].copy() for d in datas])
        xpos = []
        for d in datas:  # link poses of the same state as qpos
            scratch = mujoco.MjData(model)
            scratch.qpos[:] = d.qpos
            mujoco.mj_kinematics(model, scratch)
            xpos.append(scratch.xpos[1:].copy())
        out = inner(action)
        seen.append((qpos, np.stack(xpos), out[1].copy(), out[4]))
        return out

    env.step = spy
    env.reset(seed=0)  # the recorder's own reset() draws from this seeded RNG: the same episodes every run
    rng = np.random.default_rng(0)
    path = rollrec.RolloutRecorder(env, max_steps=T, progress=False).run(
        lambda obs: torch.as_tensor(rng.uniform(-1, 1, (N, 8)), dtype=torch.float32), tmp_path)
    r = rollrec.load(path)
    assert (r.T, r.N) == (T, N) and r.env_name == "Ant-v5"

    qpos = np.stack([s[0] for s in seen])
    np.testing.assert_allclose(np.asarray(r["base_pos"]), qpos[..., :3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(r["base_quat"]), qpos[..., 3:7], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(r["link_pos"]), np.stack([s[1] for s in seen]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(r["link_pos"])[:, :, 0], qpos[..., :3], atol=1e-6)  # torso = free joint

    names = ["forward", "ctrl", "contact", "survive"]
    assert sorted(r.reward_term_names) == sorted(names)
    for k, name in enumerate(r.reward_term_names):
        np.testing.assert_allclose(np.asarray(r["rew_terms"])[..., k],
                                   np.stack([s[3].get(f"reward_{name}", np.zeros(N)) for s in seen]), rtol=1e-6, atol=1e-6)
    rew = np.stack([s[2] for s in seen])
    np.testing.assert_allclose(np.asarray(r["rew"]), rew)
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), rew, atol=1e-5)

    # time limit at 15 steps; the step after each episode end is Gymnasium's reset step (NEXT_STEP),
    # which is not a step of either episode. An env that falls (terminates) first is not truncated.
    trunc, auto, done = np.asarray(r["truncated"]), np.asarray(r["autoreset"]), np.asarray(r["done"])
    np.testing.assert_array_equal(auto[1:], done[:-1])
    steps_in_episode = np.zeros(N, dtype=int)
    for t in range(T):
        steps_in_episode = np.where(auto[t], 0, steps_in_episode + 1)
        np.testing.assert_array_equal(trunc[t], ~auto[t] & (steps_in_episode == 15), err_msg=f"step {t}")
        steps_in_episode[done[t]] = 0
    assert trunc.any()
    assert r.meta["autoreset_mode"] == "NextStep"
    env.close()
