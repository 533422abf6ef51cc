"""Genesis' ``skip_forward`` reset (does not install in CI: a double of the code involved).

Sources followed (Genesis-Embodied-AI/Genesis at 7bf5f6a7):
- ``examples/locomotion/go2_env.py`` ``Go2Env._reset_idx``: ``robot.set_qpos(self.init_qpos,
  envs_idx=<bool mask>, zero_velocity=True, skip_forward=True)``, then the env's own buffers
  (``base_quat``, ``projected_gravity``, ``dof_pos``) are set to the reset values, and the obs is
  built from them (``_update_observation``). ``Go2Env.step`` reads ``robot.get_pos``/``get_quat``
  after ``scene.step``.
- ``genesis/engine/solvers/rigid/rigid_solver.py`` ``RigidSolver.set_qpos(..., skip_forward=True)``
  writes ``rigid_info.qpos`` only; the link state (``get_pos``, ``get_quat``, ``get_links_pos``)
  is updated by the forward kinematics of the next ``scene.step``
  (``genesis/engine/solvers/rigid/abd/forward_kinematics.py``). ``RigidEntity.get_qpos`` reads qpos.
- ``RigidEntity.morph.file``: the URDF the entity was loaded from.

The double's link state follows that: fresh after ``step``, stale after a ``skip_forward`` reset.
Its forward kinematics (rotation matrices, below) is the test's own. rollrec must record, at the
first step after every reset, the reset pose the obs describes (the obs' projected gravity and
the qpos), and the robot model from the URDF.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

import rollrec
from rollrec.adapters import GenesisEnvAdapter, GenesisPoses, adapt

URDF = """<robot name="leg">
  <link name="base"><visual><geometry><box size="0.3 0.2 0.1"/></geometry></visual></link>
  <link name="thigh"><visual><geometry><cylinder radius="0.03" length="0.3"/></geometry></visual></link>
  <link name="calf"><visual><geometry><sphere radius="0.04"/></geometry></visual></link>
  <joint name="hip" type="revolute"><parent link="base"/><child link="thigh"/>
    <origin xyz="0.2 0 0" rpy="0 0 0.3"/><axis xyz="0 1 0"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="knee" type="revolute"><parent link="thigh"/><child link="calf"/>
    <origin xyz="0 0 -0.3"/><axis xyz="0 1 0"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
</robot>"""


def rot(q):  # wxyz -> 3x3, batched
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
                     np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
                     np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def rot_y(a):
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def rot_z(a):
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def forward(qpos):
    """Link positions [N, 3, 3] and rotation matrices [N, 3, 3, 3] of base, thigh, calf."""
    p0, r0 = qpos[:, :3], rot(qpos[:, 3:7] / np.linalg.norm(qpos[:, 3:7], axis=-1, keepdims=True))
    r1 = r0 @ rot_z(np.full(len(qpos), 0.3)) @ rot_y(qpos[:, 7])
    p1 = p0 + r0 @ np.array([0.2, 0, 0])
    r2 = r1 @ rot_y(qpos[:, 8])
    p2 = p1 + r1 @ np.array([0, 0, -0.3])
    return np.stack([p0, p1, p2], 1), np.stack([r0, r1, r2], 1)


def quat_of(m):  # rotation matrix -> wxyz (w >= 0 here: small rotations)
    w = np.sqrt(np.clip(1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2], 1e-12, None)) / 2
    return np.stack([w, (m[..., 2, 1] - m[..., 1, 2]) / (4 * w), (m[..., 0, 2] - m[..., 2, 0]) / (4 * w),
                     (m[..., 1, 0] - m[..., 0, 1]) / (4 * w)], -1)


Kind = SimpleNamespace


class RigidEntity:
    """Genesis' ``RigidEntity`` as far as rollrec reads it; link state updated only by `forward_kinematics`."""

    def __init__(self, n, urdf):
        free, hip, knee = (SimpleNamespace(name=nm, type=Kind(name=t), q_start=q, n_qs=k)
                           for nm, t, q, k in (("root", "FREE", 0, 7), ("hip", "REVOLUTE", 7, 1), ("knee", "REVOLUTE", 8, 1)))
        self.links = [SimpleNamespace(name="base", joints=[free]), SimpleNamespace(name="thigh", joints=[hip]),
                      SimpleNamespace(name="calf", joints=[knee])]
        self.q_start, self.name, self.morph = 0, "leg", SimpleNamespace(file=str(urdf))
        self.qpos = np.zeros((n, 9))
        self.qpos[:, 2], self.qpos[:, 3] = 0.4, 1.0
        self.forward_kinematics()

    def forward_kinematics(self):  # what scene.step (and set_qpos without skip_forward) do
        pos, mats = forward(self.qpos)
        self.link_pos, self.link_quat = pos, quat_of(mats)

    def set_qpos(self, qpos, envs_idx=None, zero_velocity=False, skip_forward=False):
        mask = np.ones(len(self.qpos), bool) if envs_idx is None else np.asarray(envs_idx)
        self.qpos[mask] = np.asarray(qpos)
        if not skip_forward:
            self.forward_kinematics()

    def get_qpos(self):
        return torch.from_numpy(self.qpos.copy()).float()

    def get_pos(self):
        return torch.from_numpy(self.link_pos[:, 0].copy()).float()

    def get_quat(self):
        return torch.from_numpy(self.link_quat[:, 0].copy()).float()

    def get_links_pos(self, links_idx_local=None):
        return torch.from_numpy(self.link_pos.copy()).float()

    def get_links_quat(self, links_idx_local=None):
        return torch.from_numpy(self.link_quat.copy()).float()


Scene = type("Scene", (), {"__module__": "genesis.engine.scene"})


class Go2LikeEnv:
    """``Go2Env``'s step and ``_reset_idx`` order, on the entity double."""

    def __init__(self, n, urdf):
        self.num_envs, self.dt, self.scene = n, 0.02, Scene()
        self.robot = RigidEntity(n, urdf)
        self.init_qpos = self.robot.qpos[0].copy()
        self.reward_scales = {"alive": 1.0 * self.dt}
        self.reward_functions = {"alive": lambda: torch.ones(n)}
        self.episode_length_buf = np.zeros(n, int)
        self.rng = np.random.default_rng(0)

    def _obs(self):
        quat = self.base_quat / np.linalg.norm(self.base_quat, axis=-1, keepdims=True)
        gravity = np.einsum("nji,j->ni", rot(quat), [0.0, 0.0, -1.0])  # projected gravity: R^T g
        return torch.from_numpy(np.concatenate([gravity, self.dof_pos], -1)).float()

    def reset(self):
        self._reset_idx(np.ones(self.num_envs, bool))
        return self._obs()

    def _reset_idx(self, mask):
        self.robot.set_qpos(self.init_qpos, envs_idx=mask, zero_velocity=True, skip_forward=True)
        self.base_quat = np.where(mask[:, None], self.init_qpos[3:7], getattr(self, "base_quat", self.robot.qpos[:, 3:7]))
        self.dof_pos = np.where(mask[:, None], self.init_qpos[7:], getattr(self, "dof_pos", self.robot.qpos[:, 7:]))
        self.episode_length_buf[mask] = 0

    def step(self, actions):
        q = self.robot.qpos  # "scene.step": the joints follow the action, the base tips and drifts
        q[:, 7:] += 0.2 * actions.numpy()
        q[:, 0] += 0.05
        q[:, 3:7] += np.array([0.0, 0.04, 0.03, 0.0])
        q[:, 3:7] /= np.linalg.norm(q[:, 3:7], axis=-1, keepdims=True)
        self.robot.forward_kinematics()
        self.episode_length_buf += 1
        self.base_quat, self.dof_pos = self.robot.get_quat().numpy().astype(np.float64), q[:, 7:].copy()
        rew = sum(f() * self.reward_scales[k] for k, f in self.reward_functions.items())
        reset = self.episode_length_buf > 4 + np.arange(self.num_envs)
        extras = {"time_outs": torch.from_numpy(reset).float()}
        self._reset_idx(reset)
        return self._obs(), rew, torch.from_numpy(reset), extras


def test_pose_after_a_skip_forward_reset_is_the_reset_pose(tmp_path):
    (tmp_path / "leg.urdf").write_text(URDF)
    env = Go2LikeEnv(3, tmp_path / "leg.urdf")
    assert type(adapt(env)) is GenesisEnvAdapter
    seen, step = [], env.step

    def spy(actions):  # the simulator's own state before each step: qpos and its (possibly stale) link state
        seen.append((env.robot.qpos.copy(), env.robot.link_pos.copy()))
        return step(actions)

    env.step = spy
    gen = torch.Generator().manual_seed(0)
    path = rollrec.RolloutRecorder(env, max_steps=24, progress=False).run(lambda o: torch.rand(3, 2, generator=gen) - 0.5,
                                                                          tmp_path)
    r = rollrec.load(path)
    qpos = np.stack([s[0] for s in seen])
    stale = np.stack([s[1] for s in seen])
    done = np.asarray(r["done"])
    after_reset = np.zeros_like(done)
    after_reset[0], after_reset[1:] = True, done[:-1]
    pos, mats = forward(qpos.reshape(-1, 9))
    pos, quat = pos.reshape(24, 3, 3, 3), quat_of(mats).reshape(24, 3, 3, 4)
    # the hazard is real: Genesis' own link state is the pre-reset pose at the first step after a reset
    assert np.abs(stale - pos)[after_reset[1:].nonzero()[0] + 1].max() > 0.05 if after_reset[1:].any() else True
    assert done[:-1].sum() >= 3
    np.testing.assert_allclose(np.asarray(r["link_pos"]), pos, atol=1e-5)
    np.testing.assert_allclose(np.asarray(r["link_quat"]), quat, atol=1e-5)
    np.testing.assert_allclose(np.asarray(r["base_pos"]), qpos[..., :3], atol=1e-6)
    # the obs' projected gravity was computed from the recorded base quaternion, after resets too
    gravity = np.einsum("tnji,j->tni", rot(np.asarray(r["base_quat"], np.float64)), [0.0, 0.0, -1.0])
    np.testing.assert_allclose(np.asarray(r["obs"])[..., :3], gravity, atol=1e-5)
    model = r.model
    assert model is not None and r.link_names == ["base", "thigh", "calf"] and model.link_names == r.link_names


def test_genesis_poses_store_the_urdf_model(tmp_path):
    (tmp_path / "leg.urdf").write_text(URDF)
    src = GenesisPoses(RigidEntity(2, tmp_path / "leg.urdf"))
    kwargs = src.recorder_kwargs()
    assert kwargs["model"].num_geoms == 3 and src.meta["links"].startswith("forward kinematics of leg.urdf")
