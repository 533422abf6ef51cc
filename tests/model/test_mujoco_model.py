"""Real Gymnasium MuJoCo and mjlab: the model and the poses in the file reproduce the simulator.

Ant-v5, 8 envs, 300 steps through `RolloutRecorder`: at every step the recorded link poses equal
MuJoCo's ``xpos``/``xquat`` of the state the obs describes, the terms equal Gymnasium's ``info``,
and the stored model placed by the recorded poses puts every geom where MuJoCo's
``geom_xpos``/``geom_xmat`` says it is. mjlab's Go1 keeps its meshes and replays with them.
"""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.model import model_from_mujoco
from rollrec.geometry.quaternion import quat_to_matrix

gym = pytest.importorskip("gymnasium")
mujoco = pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")

N, T = 8, 300


class Spy:
    """Replaces ``env.step``: keeps, before each step, MuJoCo's kinematics of every sub-env's state
    (on a scratch ``MjData``), and each step's rewards and info."""

    def __init__(self, env):
        self.env, self.inner = env, env.step
        env.step = self.step
        self.model = env.envs[0].unwrapped.model
        self.scratch = mujoco.MjData(self.model)
        self.xpos, self.xquat, self.geom_xpos, self.geom_xmat, self.infos, self.rews = [], [], [], [], [], []

    def step(self, action):
        xpos, xquat, gpos, gmat = [], [], [], []
        for e in self.env.envs:
            self.scratch.qpos[:] = e.unwrapped.data.qpos
            mujoco.mj_kinematics(self.model, self.scratch)
            xpos.append(self.scratch.xpos.copy())
            xquat.append(self.scratch.xquat.copy())
            gpos.append(self.scratch.geom_xpos.copy())
            gmat.append(self.scratch.geom_xmat.copy().reshape(-1, 3, 3))
        for lst, v in zip((self.xpos, self.xquat, self.geom_xpos, self.geom_xmat), (xpos, xquat, gpos, gmat)):
            lst.append(np.stack(v))
        out = self.inner(action)
        self.rews.append(out[1].copy())
        self.infos.append(out[4])
        return out


@pytest.fixture(scope="module")
def ant(tmp_path_factory):
    env = gym.make_vec("Ant-v5", num_envs=N, vectorization_mode="sync")
    spy = Spy(env)
    env.action_space.seed(0)
    env.reset(seed=0)
    path = rollrec.RolloutRecorder(env, max_steps=T, progress=False).run(
        lambda obs: env.action_space.sample(), tmp_path_factory.mktemp("ant"))
    yield spy, path
    env.close()


def test_ant_poses_in_the_file_are_mujocos_at_every_step(ant):
    spy, path = ant
    with rollrec.load(path) as r:
        assert (r.T, r.N) == (T, N) and r.link_names[0] == "torso" and len(r.link_names) == spy.model.nbody - 1
        np.testing.assert_allclose(np.asarray(r["link_pos"]), np.stack(spy.xpos)[:, :, 1:], atol=1e-6)
        np.testing.assert_allclose(np.asarray(r["link_quat"]), np.stack(spy.xquat)[:, :, 1:], atol=1e-6)
        names = r.reward_term_names
        terms = np.asarray(r["rew_terms"])
        for k, name in enumerate(names):
            want = np.stack([info[f"reward_{name}"] * info.get(f"_reward_{name}", True) for info in spy.infos])
            np.testing.assert_allclose(terms[..., k], want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(r["rew"]), np.stack(spy.rews), rtol=1e-6)


def test_ant_model_round_trips_and_places_every_geom_where_mujoco_does(ant):
    spy, path = ant
    with rollrec.load(path) as r:
        model = r.model
        assert model == model_from_mujoco(spy.model)  # what the file holds is the extraction, bit for bit
        assert model.info["source"] == "mujoco" and model.info["dropped_geoms"] == 0
        assert model.num_geoms == spy.model.ngeom
        assert r.meta["link_parents"] == model.link_parents == [int(p) - 1 for p in spy.model.body_parentid[1:]]
        link_pos = np.asarray(r["link_pos"], np.float64)
        link_quat = np.asarray(r["link_quat"], np.float64)
    rot = quat_to_matrix(link_quat)  # [T, N, L, 3, 3]
    geom_rot = quat_to_matrix(model.geom_quat)
    moving = model.geom_link >= 0
    li = model.geom_link[moving]
    world_pos = link_pos[:, :, li] + np.einsum("tngij,gj->tngi", rot[:, :, li], model.geom_pos[moving])
    world_rot = np.einsum("tngij,gjk->tngik", rot[:, :, li], geom_rot[moving])
    np.testing.assert_allclose(world_pos, np.stack(spy.geom_xpos)[:, :, moving], atol=2e-5)
    np.testing.assert_allclose(world_rot, np.stack(spy.geom_xmat)[:, :, moving], atol=2e-5)
    floor = np.flatnonzero(~moving)
    assert model.geom_type[floor].tolist() == [0]  # the floor plane: static


def test_humanoid_video_decodes_with_moving_bodies(tmp_path):
    import imageio.v3 as iio

    env = gym.make_vec("Humanoid-v5", num_envs=2, vectorization_mode="sync")
    env.action_space.seed(1)
    env.reset(seed=1)
    path = rollrec.RolloutRecorder(env, max_steps=40, progress=False).run(lambda obs: env.action_space.sample(), tmp_path)
    env.close()
    out = rollrec.render_video(path, tmp_path / "humanoid.mp4", env=1, camera="side", size=(320, 240),
                               overlay=False, progress=False)
    frames = iio.imread(out)
    assert frames.shape == (40, 240, 320, 3)
    skin = _skin_mask(frames, rollrec.load(path).model)
    assert skin[0].sum() > 500  # a body of a few thousand pixels, in the model's colour
    moved = [(skin[0] ^ skin[t]).sum() for t in (10, 39)]
    assert min(moved) > 100  # the silhouette moves


def _skin_mask(frames: np.ndarray, model) -> np.ndarray:
    """Pixels whose hue is the bodies' colour (shading changes brightness, not the ratios much)."""
    rgb = np.asarray(model.geom_rgba[model.geom_link >= 0][0, :3])
    f = frames.astype(np.float32) + 1.0
    want = (rgb + 1e-3) / (rgb + 1e-3).sum()
    got = f / f.sum(-1, keepdims=True)
    return (np.abs(got - want).sum(-1) < 0.08) & (frames.max(-1) > 40)


# ---- mjlab --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_mjlab_go1_rollout_replays_with_its_geometry(tmp_path):
    pytest.importorskip("mjlab", reason="mjlab is installed by scripts/setup.sh --test")
    import mjlab.tasks  # noqa: F401  (registers the tasks)
    import torch
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.registry import load_env_cfg

    cfg = load_env_cfg("Mjlab-Velocity-Flat-Unitree-Go1")
    cfg.scene.num_envs = 2
    env = ManagerBasedRlEnv(cfg, device="cpu")
    try:
        path = rollrec.RolloutRecorder(env, max_steps=6, progress=False).run(lambda obs: torch.zeros(2, 12), tmp_path)
        mj_model = env.sim.mj_model
    finally:
        env.close()
    with rollrec.load(path) as r:
        model = r.model
        assert model is not None and model.link_names == r.link_names and r.link_names[0] == "trunk"
        assert model.num_meshes >= 4 and (model.geom_type == 7).sum() >= 12  # the Go1's visual meshes
        meshes = model.geom_type == 7
        assert (model.geom_link[meshes] >= 0).all()  # each rides on a recorded link
        for i in range(model.num_meshes):  # vertex for vertex the MjModel's
            v, f = model.mesh(i)
            assert len(v) > 100 and f.max() < len(v)
        assert mj_model.nmesh >= model.num_meshes
        frame = rollrec.video.scene.scenes_for(r, [0], "follow")[0].frame(3, (320, 240), overlay=False)
        bodies = rollrec.video.scene.scenes_for(r, [0], "follow")[0].bodies
        assert bodies is not None and bodies.num_faces > 1000
    background = np.array([28, 30, 36])
    robot = (np.abs(frame.astype(int) - background).sum(-1) > 30) & (frame.max(-1) < 120)  # dark grey robot
    assert robot.sum() > 200


# ---- what an MjModel holds, by construction ------------------------------------------------------
TERRAIN_XML = """
<mujoco>
  <asset>
    <hfield name="bumps" nrow="3" ncol="4" size="2 1.5 0.4 0.1" elevation="0 1 2 3 4 5 6 7 8 9 10 11"/>
    <mesh name="tet" vertex="0 0 0  0.1 0 0  0 0.1 0  0 0 0.1"/>
    <material name="red" rgba="1 0 0 1"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 1"/>
    <geom name="terrain" type="hfield" hfield="bumps" pos="3 0 0"/>
    <body name="post" pos="-2 0 0"><geom type="box" size="0.1 0.1 1"/></body>
    <body name="robot" pos="0 0 1">
      <freejoint/>
      <geom type="sphere" size="0.2" material="red"/>
      <body name="camera_mount" pos="0.3 0 0" euler="0 0 90"><geom type="mesh" mesh="tet"/></body>
      <body name="arm" pos="0 0 0.2"><joint type="hinge"/><geom type="capsule" size="0.05 0.2"/></body>
    </body>
    <body name="other" pos="5 0 1"><freejoint/><geom type="sphere" size="0.1"/></body>
  </worldbody>
</mujoco>
"""


def test_static_welded_and_unrecorded_bodies():
    m = mujoco.MjModel.from_xml_string(TERRAIN_XML)
    robot, arm = (mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in ("robot", "arm"))
    model = model_from_mujoco(m, [robot, arm])
    assert model.link_names == ["robot", "arm"] and model.link_parents == [-1, 0]
    kinds = dict(zip(model.geom_type.tolist(), model.geom_link.tolist()))
    assert kinds[0] == -1 and kinds[1] == -1 and kinds[6] == -1  # floor, terrain, the welded post: static
    assert kinds[7] == 0  # the camera mount (welded to the robot) rides on it
    assert model.info["dropped_geoms"] == 1  # "other" moves on its own and is not recorded
    assert model.geom_rgba[model.geom_type == 2][0].tolist() == [1, 0, 0, 1]  # the material's colour
    mesh = int(np.flatnonzero(model.geom_type == 7)[0])
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    g = int(np.flatnonzero(np.asarray(m.geom_type) == 7)[0])
    rot = quat_to_matrix(np.asarray(d.xquat[robot]))
    np.testing.assert_allclose(d.xpos[robot] + rot @ model.geom_pos[mesh], d.geom_xpos[g], atol=1e-6)
    np.testing.assert_allclose(rot @ quat_to_matrix(model.geom_quat[mesh]), d.geom_xmat[g].reshape(3, 3), atol=1e-6)
    post = int(np.flatnonzero(model.geom_type == 6)[0])
    np.testing.assert_allclose(model.geom_pos[post], [-2, 0, 0], atol=1e-6)  # placed in the world
    heights = model.hfield(0)
    assert heights.shape == (3, 4) and heights.min() == 0 and heights.max() == pytest.approx(1)  # MuJoCo normalises
    np.testing.assert_allclose(model.hfield_size[0], [2, 1.5, 0.4, 0.1])
