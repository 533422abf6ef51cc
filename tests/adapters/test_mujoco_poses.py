"""MuJoCo pose sources against the real ``mujoco`` (MJX: ``test_mjx_twins.py``).

``mj_step`` computes kinematics before integrating (MuJoCo's ``mj_step`` = ``mj_forward`` then
integration), so ``xpos`` lags ``qpos`` after a step: the sources compute the kinematics again, on
private data (the env's ``MjData`` is never written).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rollrec.adapters import MuJoCoPoses

mujoco = pytest.importorskip("mujoco")

XML = """<mujoco><option timestep="0.01"/><worldbody><geom type="plane" size="5 5 .1"/>
<body name="base" pos="0 0 1"><freejoint/><geom type="box" size=".1 .1 .1"/>
  <body name="arm" pos="0.2 0 0"><joint type="hinge" axis="0 1 0"/><geom type="capsule" fromto="0 0 0 .3 0 0" size=".03"/>
    <body pos="0.3 0 0"><joint type="hinge" axis="0 0 1"/><geom type="sphere" size=".04"/></body></body></body>
</worldbody></mujoco>"""


def test_mujoco_poses_describe_qpos_after_a_step():
    model = mujoco.MjModel.from_xml_string(XML)
    datas = [mujoco.MjData(model) for _ in range(3)]
    for i, d in enumerate(datas):
        d.qvel[:] = 0.3 * (i + 1)
        for _ in range(5):
            mujoco.mj_step(model, d)
    assert not np.allclose(datas[0].xpos[1], datas[0].qpos[:3])  # the stale-kinematics hazard
    src = MuJoCoPoses(model, datas)
    assert src.link_names == ["base", "arm", "body_3"] and src.link_body_ids == [1, 2, 3] and src.mj_model is model
    stale = [(d.xpos.copy(), d.xquat.copy()) for d in datas]
    pose = src()
    assert pose["link_pos"].shape == (3, 3, 3) and pose["base_quat"].dtype == torch.float32
    for i, d in enumerate(datas):
        np.testing.assert_array_equal(d.xpos, stale[i][0])  # the simulator's own data is never written
        np.testing.assert_array_equal(d.xquat, stale[i][1])
        fresh = mujoco.MjData(model)
        fresh.qpos[:] = d.qpos
        mujoco.mj_forward(model, fresh)
        np.testing.assert_allclose(pose["base_pos"][i], d.qpos[:3], rtol=1e-6)
        np.testing.assert_allclose(pose["base_quat"][i], d.qpos[3:7], rtol=1e-6)
        np.testing.assert_allclose(pose["link_pos"][i, 0], d.qpos[:3], rtol=1e-6)
        np.testing.assert_allclose(pose["link_quat"][i], fresh.xquat[1:], rtol=1e-6)
    kept = pose["link_pos"].clone()
    mujoco.mj_step(model, datas[0])
    torch.testing.assert_close(pose["link_pos"], kept)  # the caller's copy
    kwargs = src.recorder_kwargs()
    assert kwargs["link_names"] == src.link_names
    assert kwargs["model"].link_names == src.link_names and kwargs["model"].num_geoms == model.ngeom
