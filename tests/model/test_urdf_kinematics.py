"""`UrdfKinematics` against MuJoCo's own URDF import and forward kinematics (``mj_kinematics``).

The URDF branches (two legs and an arm off the base, a tool on the arm), and has every joint type
the class handles: revolute, continuous, prismatic (along an axis that is not normalised) and
fixed, with ``rpy`` origins. MuJoCo reads it with ``fusestatic="false"`` so fixed links stay bodies
of their own; its body poses for random joint positions (root at the world origin) must equal the
class' poses, and a base pose moves every link rigidly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rollrec.model.urdf_kinematics import UrdfKinematics, quat_mul, quat_rotate

mujoco = pytest.importorskip("mujoco")

INERTIAL = '<inertial><mass value="0.5"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial>'
LINKS = ["base", "l_thigh", "l_shin", "r_thigh", "r_shin", "arm", "slider", "tool"]
JOINTS = [  # name, type, parent, child, xyz, rpy, axis
    ("l_hip", "revolute", "base", "l_thigh", "0.1 0.08 -0.05", "0.1 0 0.2", "0 1 0"),
    ("l_knee", "continuous", "l_thigh", "l_shin", "0 0 -0.3", "0 0.3 0", "0 1 0.2"),
    ("r_hip", "revolute", "base", "r_thigh", "0.1 -0.08 -0.05", "-0.1 0 -0.2", "1 0 0"),
    ("r_knee", "revolute", "r_thigh", "r_shin", "0 0 -0.3", "0 0 0", "0 1 0"),
    ("shoulder", "revolute", "base", "arm", "-0.1 0 0.1", "1.2 -0.4 0.7", "0 0 1"),
    ("slide", "prismatic", "arm", "slider", "0.2 0 0", "0 0.5 0", "2 0 1"),
    ("weld", "fixed", "slider", "tool", "0.05 0.01 0", "0.3 0.2 0.1", None),
]


def urdf_text() -> str:
    links = "".join(f'<link name="{n}">{INERTIAL}</link>' for n in LINKS)
    joints = "".join(
        f'<joint name="{n}" type="{k}"><parent link="{p}"/><child link="{c}"/><origin xyz="{x}" rpy="{r}"/>'
        + (f'<axis xyz="{a}"/>' if a else "")
        + ('<limit lower="-3" upper="3" effort="1" velocity="1"/>' if k in ("revolute", "prismatic") else "")
        + "</joint>"
        for n, k, p, c, x, r, a in JOINTS)
    return (f'<robot name="tree"><mujoco><compiler fusestatic="false" discardvisual="false"/></mujoco>'
            f"{links}{joints}</robot>")


def moving_joint_names() -> list[str]:
    return [j[0] for j in JOINTS if j[1] != "fixed"]


def mujoco_poses(path, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model = mujoco.MjModel.from_xml_path(str(path))
    data = mujoco.MjData(model)
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in LINKS]
    adr = [model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n)] for n in moving_joint_names()]
    pos, quat = [], []
    for row in q:
        data.qpos[adr] = row
        mujoco.mj_kinematics(model, data)
        pos.append(data.xpos[ids].copy())
        quat.append(data.xquat[ids].copy())
    return np.stack(pos), np.stack(quat)


def aligned(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return q * np.sign((q * ref).sum(-1, keepdims=True))  # q and -q are the same rotation


def test_poses_equal_mujocos_kinematics_of_the_same_urdf(tmp_path):
    path = tmp_path / "tree.urdf"
    path.write_text(urdf_text())
    q = np.random.default_rng(0).uniform(-1.5, 1.5, (32, len(moving_joint_names())))
    ref_pos, ref_quat = mujoco_poses(path, q)
    assert np.abs(ref_pos[:, 6] - ref_pos[0, 6]).max() > 0.1  # the slider moves

    fk = UrdfKinematics(path, LINKS, moving_joint_names())
    n = len(q)
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64).repeat(n, 1)
    pos, quat = fk(torch.zeros(n, 3, dtype=torch.float64), identity, torch.from_numpy(q))
    assert pos.shape == (n, len(LINKS), 3) and quat.shape == (n, len(LINKS), 4) and pos.dtype == torch.float64
    np.testing.assert_allclose(pos.numpy(), ref_pos, atol=1e-12)
    np.testing.assert_allclose(aligned(quat.numpy(), ref_quat), ref_quat, atol=1e-12)

    # a base pose moves every link rigidly; float32 and a subset of links in another order work too
    gen = torch.Generator().manual_seed(1)
    base_pos = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    base_quat = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    base_quat = base_quat / base_quat.norm(dim=-1, keepdim=True)
    moved_pos, moved_quat = fk(base_pos, base_quat, torch.from_numpy(q))
    want_pos = base_pos[:, None] + quat_rotate(base_quat[:, None], torch.from_numpy(ref_pos))
    want_quat = quat_mul(base_quat[:, None], torch.from_numpy(ref_quat))
    np.testing.assert_allclose(moved_pos.numpy(), want_pos.numpy(), atol=1e-12)
    np.testing.assert_allclose(aligned(moved_quat.numpy(), want_quat.numpy()), want_quat.numpy(), atol=1e-12)
    some = UrdfKinematics(path, ["tool", "l_shin", "base"], moving_joint_names())
    p32, q32 = some(base_pos.float(), base_quat.float(), torch.from_numpy(q).float())
    assert p32.dtype == torch.float32
    np.testing.assert_allclose(p32.numpy(), moved_pos[:, [7, 2, 0]].numpy(), atol=2e-6)
    np.testing.assert_allclose(aligned(q32.numpy(), moved_quat[:, [7, 2, 0]].numpy()), moved_quat[:, [7, 2, 0]].numpy(),
                               atol=2e-6)


def test_quaternion_helpers_against_rotation_matrices():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    v = rng.normal(size=(50, 3))

    def mat(q):
        m = np.empty((len(q), 9))
        for i, row in enumerate(q):
            mujoco.mju_quat2Mat(m[i], row)
        return m.reshape(-1, 3, 3)

    ab = quat_mul(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(mat(ab), mat(a) @ mat(b), atol=1e-12)
    np.testing.assert_allclose(quat_rotate(torch.from_numpy(a), torch.from_numpy(v)).numpy(),
                               np.einsum("nij,nj->ni", mat(a), v), atol=1e-12)


def test_bad_urdfs_are_refused(tmp_path):
    path = tmp_path / "tree.urdf"
    path.write_text(urdf_text())
    with pytest.raises(ValueError, match="no link"):
        UrdfKinematics(path, ["base", "wing"], moving_joint_names())
    with pytest.raises(ValueError, match="moving joint 'slide' has no column"):
        UrdfKinematics(path, LINKS, moving_joint_names()[:-1])
