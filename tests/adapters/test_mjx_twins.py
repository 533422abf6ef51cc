"""MJX: recording changes nothing, and records the state each obs describes.

A user's own MJX loop (``mujoco.mjx``, jax on CPU): a batch of 4 worlds made with ``jax.vmap``,
``jax.jit(jax.vmap(mjx.step))`` driven by actions, obs and rewards computed from the batch, and
the user's own reset in the loop (``qpos``/``qvel`` of finished worlds replaced with
``jnp.where``: MJX's derived ``xpos``/``xquat`` then still hold the pre-reset pose until the next
step, like Genesis' ``skip_forward``). Twin runs get the same seed and actions; one reads
`MjxPoses` before every step and records with `rollrec.Recorder`. Their obs, rewards and dones
must be bit-identical; the recorded base must be the twin's free-joint ``qpos`` and the links
MuJoCo's own C ``mj_kinematics`` of that ``qpos``, before each of 105 steps.

`check_stale_kinematics` (the same hazard made by hand on a small model, without compiling a
step, and `MjxPoses`' options) runs first. Both run in one child process (jax stays out of the test
process, whose other tests fork).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mujoco.mjx", reason="mujoco-mjx is installed by scripts/setup.sh --test")
pytestmark = pytest.mark.slow

N, T = 4, 105
XML = """<mujoco><option timestep="0.01"/><worldbody><geom type="plane" size="5 5 .1"/>
<body name="base" pos="0 0 0.6"><freejoint/><geom type="capsule" fromto="-.1 0 0 .1 0 0" size=".05"/>
  <body name="thigh" pos="0.1 0 0"><joint name="hip" type="hinge" axis="0 1 0" range="-1 1"/>
    <geom type="capsule" fromto="0 0 0 0 0 -.25" size=".03"/>
    <body name="shin" pos="0 0 -.25"><joint name="knee" type="hinge" axis="0 1 0" range="-1.5 0"/>
      <geom type="capsule" fromto="0 0 0 0 0 -.25" size=".025"/></body></body>
  <body name="arm" pos="-0.1 0 0"><joint name="shoulder" type="hinge" axis="1 0 0"/>
    <geom type="capsule" fromto="0 0 0 -.2 0 -.2" size=".03"/></body></body>
</worldbody><actuator><position joint="hip" kp="40"/><position joint="knee" kp="40"/>
<motor joint="shoulder" gear="3"/></actuator></mujoco>"""


SMALL_XML = """<mujoco><option timestep="0.01"/><worldbody><geom type="plane" size="5 5 .1"/>
<body name="base" pos="0 0 1"><freejoint/><geom type="box" size=".1 .1 .1"/>
  <body name="arm" pos="0.2 0 0"><joint type="hinge" axis="0 1 0"/><geom type="capsule" fromto="0 0 0 .3 0 0" size=".03"/>
    <body pos="0.3 0 0"><joint type="hinge" axis="0 0 1"/><geom type="sphere" size=".04"/></body></body></body>
</worldbody></mujoco>"""


def check_stale_kinematics() -> None:
    """``mjx.step`` leaves ``xpos`` one substep behind ``qpos``; here the same hazard is
    made without compiling a step: kinematics of one ``qpos``, then a new ``qpos``."""
    import jax
    import jax.numpy as jnp
    import mujoco
    from mujoco import mjx

    from rollrec.adapters import MjxPoses

    model = mujoco.MjModel.from_xml_string(SMALL_XML)
    mx = mjx.put_model(model)
    d0 = mjx.make_data(mx)
    kinematics = jax.jit(jax.vmap(mjx.kinematics, in_axes=(None, 0)))
    batch = kinematics(mx, jax.vmap(lambda q: d0.replace(qpos=q))(jnp.tile(d0.qpos, (4, 1))))
    moved = batch.qpos.at[:, :3].add(0.1 * jnp.arange(4.0)[:, None]).at[:, 7:].add(0.3)
    batch = batch.replace(qpos=moved)  # xpos/xquat now belong to the previous qpos
    src = MjxPoses(model, mx)
    pose = src(batch)
    qpos = np.asarray(batch.qpos)
    assert pose["link_pos"].shape == (4, 3, 3) and src.link_names == ["base", "arm", "body_3"]
    np.testing.assert_allclose(pose["base_pos"], qpos[:, :3], rtol=1e-6)
    np.testing.assert_allclose(pose["base_quat"], qpos[:, 3:7], rtol=1e-6)
    np.testing.assert_allclose(pose["link_pos"][:, 0], qpos[:, :3], atol=1e-6)  # refreshed: matches qpos
    fresh = kinematics(mx, batch)
    np.testing.assert_allclose(pose["link_quat"], np.asarray(fresh.xquat)[:, 1:], atol=1e-6)
    assert not np.allclose(np.asarray(batch.xpos)[:, 1], qpos[:, :3])
    stale = MjxPoses(model, refresh=False)(batch)
    np.testing.assert_allclose(stale["link_pos"], np.asarray(batch.xpos)[:, 1:], rtol=1e-6)
    try:
        MjxPoses(model)
    except ValueError as exc:
        assert "needs mjx_model" in str(exc)
    else:
        raise AssertionError("MjxPoses(model) without mjx_model should be refused")



def twin(recorded: bool, actions: np.ndarray, out_dir: str, step: Any) -> dict[str, np.ndarray]:
    """The user's loop; with ``recorded`` rollrec reads poses and records. Returns what the loop saw."""
    import jax
    import jax.numpy as jnp
    import mujoco
    import torch
    from mujoco import mjx

    import rollrec
    from rollrec.adapters import MjxPoses

    model = mujoco.MjModel.from_xml_string(XML)
    mx = mjx.put_model(model)
    d0 = mjx.make_data(mx)
    key = jax.random.PRNGKey(7)
    qpos0 = jnp.tile(d0.qpos, (N, 1)) + jnp.concatenate(
        [jnp.zeros((N, 7)), 0.2 * jax.random.normal(key, (N, model.nq - 7))], axis=1)
    data = jax.vmap(lambda q: d0.replace(qpos=q))(qpos0)
    horizon = jnp.array([30, 37, 44, 51])  # staggered time limits: every world resets twice or more

    @jax.jit
    def observe(d, t_env):
        return jnp.concatenate([d.qpos[:, 2:], d.qvel, t_env[:, None] / 60.0], axis=1)

    @jax.jit
    def after_step(d, t_env):
        reward = d.qvel[:, 0] - 0.01 * jnp.sum(d.ctrl**2, axis=1) + 0.1 * d.qpos[:, 2]
        t_env = t_env + 1
        fell = d.qpos[:, 2] < 0.2
        done = fell | (t_env >= horizon)
        reset = done[:, None]
        d = d.replace(qpos=jnp.where(reset, qpos0, d.qpos), qvel=jnp.where(reset, 0.0, d.qvel))
        return d, reward, done, jnp.where(done, 0, t_env)

    src = MjxPoses(model, mx) if recorded else None
    rec = (rollrec.Recorder(f"{out_dir}/mjx.npz", N, max_steps=T, dt=0.01,
                            **src.recorder_kwargs()) if recorded else None)
    t_env = jnp.zeros(N, dtype=jnp.int32)
    seen = {"obs": [], "rew": [], "done": [], "qpos": []}
    for t in range(T):
        obs = observe(data, t_env)
        seen["qpos"].append(np.asarray(data.qpos))
        if recorded:
            pose = src(data)
        data, reward, done, t_env = after_step(step(mx, data.replace(ctrl=jnp.asarray(actions[t]))), t_env)
        if recorded:
            rec.record(obs=torch.from_dlpack(obs), act=torch.from_numpy(actions[t]), rew=torch.from_dlpack(reward),
                       done=torch.from_dlpack(done), **pose)
        seen["obs"].append(np.asarray(obs))
        seen["rew"].append(np.asarray(reward))
        seen["done"].append(np.asarray(done))
    if recorded:
        rec.close()
    return {k: np.stack(v) for k, v in seen.items()}


def run_twins(out_dir: str) -> None:
    """Runs in the child process: both twins, then every check."""
    import mujoco

    import rollrec

    import jax
    from mujoco import mjx

    actions = np.random.default_rng(0).uniform(-1, 1, (T, N, 3)).astype(np.float32)
    step = jax.jit(jax.vmap(mjx.step, in_axes=(None, 0)))  # compiled once, for both twins
    plain = twin(False, actions, out_dir, step)
    recorded = twin(True, actions, out_dir, step)
    for k in ("obs", "rew", "done", "qpos"):
        assert plain[k].dtype == recorded[k].dtype and np.array_equal(plain[k], recorded[k]), \
            f"{k}: max diff {np.abs(plain[k].astype(float) - recorded[k]).max()}"
    done = plain["done"]
    assert (done.sum(axis=0) >= 2).all(), f"every world must reset at least twice: {done.sum(axis=0)}"

    r = rollrec.load(f"{out_dir}/mjx.npz")
    assert (r.T, r.N) == (T, N) and r.link_names == ["base", "thigh", "shin", "arm"]
    np.testing.assert_array_equal(np.asarray(r["obs"]), plain["obs"])
    np.testing.assert_array_equal(np.asarray(r["rew"]), plain["rew"])
    np.testing.assert_array_equal(np.asarray(r["done"]), done)
    model = mujoco.MjModel.from_xml_string(XML)
    scratch = mujoco.MjData(model)
    link_pos, link_quat = np.empty((T, N, 4, 3)), np.empty((T, N, 4, 4))
    for t in range(T):
        for i in range(N):
            scratch.qpos[:] = plain["qpos"][t, i]
            mujoco.mj_kinematics(model, scratch)
            link_pos[t, i], link_quat[t, i] = scratch.xpos[1:], scratch.xquat[1:]
    np.testing.assert_array_equal(np.asarray(r["base_pos"]), plain["qpos"][..., :3])
    np.testing.assert_array_equal(np.asarray(r["base_quat"]), plain["qpos"][..., 3:7])
    np.testing.assert_allclose(np.asarray(r["link_pos"]), link_pos, atol=1e-5, rtol=0)
    got = np.asarray(r["link_quat"], dtype=np.float64)
    got *= np.sign((got * link_quat).sum(-1, keepdims=True))  # q and -q are the same rotation
    np.testing.assert_allclose(got, link_quat, atol=1e-5, rtol=0)


def test_recording_changes_nothing_and_poses_are_the_simulators(tmp_path):
    """Both checks in one child process (one jax start-up): `check_stale_kinematics`, then the twins."""
    code = (f"import importlib.util; s = importlib.util.spec_from_file_location('t', {__file__!r}); "
            f"m = importlib.util.module_from_spec(s); s.loader.exec_module(m); m.check_stale_kinematics(); "
            f"m.run_twins({str(tmp_path)!r})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
