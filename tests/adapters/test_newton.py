"""Real Newton (``newton``, installed by ``scripts/setup.sh --test``) on warp's CPU device.

``newton/_src/utils/selection.py``: ``ArticulationView.get_root_transforms`` /
``get_link_transforms`` give ``wp.transform`` arrays (xyzw); ``wp.to_torch`` views of them change
when the simulation steps. The pose source hands over copies.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rollrec.adapters import NewtonPoses

pytest.importorskip("newton", reason="newton is installed by scripts/setup.sh --test")
pytestmark = pytest.mark.slow


def test_newton_ant_poses():
    import newton
    import newton.examples
    import warp as wp
    from newton.selection import ArticulationView

    ant = newton.ModelBuilder()
    ant.add_mjcf(newton.examples.get_asset("nv_ant.xml"), ignore_names=["floor", "ground"],
                 xform=wp.transform((0.0, 0.0, 1.0), wp.quat_identity()))
    scene = newton.ModelBuilder()
    scene.add_ground_plane()
    scene.replicate(ant, 3)
    model = scene.finalize(device="cpu")
    view = ArticulationView(model, "*ant*", verbose=False)
    solver = newton.solvers.SolverXPBD(model)
    s0, s1, control = model.state(), model.state(), model.control()
    newton.eval_fk(model, model.joint_q, model.joint_qd, s0)
    pipeline = newton.CollisionPipeline(model)
    contacts = pipeline.contacts()

    src = NewtonPoses(view)
    assert src.quat_order == "xyzw" and src.link_names[0] == "torso" and len(src.link_names) == 9
    pose = src(s0)
    assert pose["link_pos"].shape == (3, 9, 3) and pose["base_quat"].shape == (3, 4)
    body_q = wp.to_torch(s0.body_q).reshape(3, 9, 7)
    torch.testing.assert_close(pose["link_pos"], body_q[..., :3])
    torch.testing.assert_close(pose["link_quat"], body_q[..., 3:])
    torch.testing.assert_close(pose["base_pos"], pose["link_pos"][:, 0])
    np.testing.assert_allclose(pose["base_quat"].norm(dim=-1), 1.0, rtol=1e-5)

    view_of_state = wp.to_torch(view.get_link_transforms(s0))  # what a plain loop would keep
    kept, raw_before = pose["link_pos"].clone(), view_of_state.clone()
    for _ in range(2):
        s0.clear_forces()
        pipeline.collide(s0, contacts)
        solver.step(s0, s1, control, contacts, 1.0 / 60.0)
        s0, s1 = s1, s0
    assert not torch.equal(view_of_state, raw_before)  # the view moved with the simulation
    torch.testing.assert_close(pose["link_pos"], kept)  # the recorded pose did not
    assert not torch.equal(src(s0)["link_pos"], kept)
