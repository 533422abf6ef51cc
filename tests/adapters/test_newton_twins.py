"""Newton, every solver that runs here: recording changes nothing and records the simulator's state.

Follows Newton's quadruped example (``newton/examples/basic/example_basic_urdf.py``: its URDF,
joint armature, drives, geometry inertia), 2 worlds, each solver stepped as in that example
(``solver.step(state_0, state_1, control, contacts, dt)``, then the states swap). Two twin runs get
the same model and the same joint targets; in one `NewtonPoses` is read before every step. The
runs' ``body_q``, ``body_qd``, ``joint_q`` and ``joint_qd`` must stay bit-identical; the recorded
base must be the root body's ``body_q`` and the links every body's ``body_q`` of the state the
step starts from. At steps 40 and 80 one world is reset the way a user resets one
(``newton.eval_fk`` of new ``joint_q`` with a per-articulation mask). ``SolverXPBD`` (and the
other maximal-coordinate solvers) never update ``state.joint_q``: a base read from
``ArticulationView.get_root_transforms`` stayed where it started.

SolverKamino runs with its example's configuration (its own collision detection). ``SolverMuJoCo`` does not run here (this ``mujoco_warp`` lacks ``OverflowType``); SolverImplicitMPM
and SolverStyle3D simulate particles and cloth, not articulations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rollrec.adapters import NewtonPoses

pytest.importorskip("newton", reason="newton is installed by scripts/setup.sh --test")
pytestmark = pytest.mark.slow

WORLDS, T = 2, 110
#: substeps per step and substep dt: the reduced-coordinate and explicit solvers need smaller steps.
STEPPING = {"xpbd": (4, 1 / 480), "vbd": (4, 1 / 480), "steel": (4, 1 / 480),
            "featherstone": (10, 1 / 2400), "semi_implicit": (10, 1 / 2400), "kamino": (4, 1 / 480)}
SOLVERS = ["xpbd", "featherstone", "semi_implicit", "vbd", "steel", "kamino"]


def build(solver_name: str):
    import newton
    import newton.examples
    import warp as wp

    robot = newton.ModelBuilder()
    if solver_name == "kamino":
        newton.solvers.SolverKamino.register_custom_attributes(robot)
    robot.default_joint_cfg.armature = 0.01
    robot.default_joint_cfg.target_ke = 2000.0
    robot.default_joint_cfg.target_kd = 1.0
    robot.default_shape_cfg.mu = 1.0
    if solver_name == "vbd":
        robot.default_shape_cfg.ke, robot.default_shape_cfg.kd = 1.0e5, 1.0e4
    robot.add_urdf(newton.examples.get_asset("quadruped.urdf"), xform=wp.transform(wp.vec3(0.0, 0.0, 0.7), wp.quat_identity()),
                   floating=True, enable_self_collisions=False, ignore_inertial_definitions=True,
                   joint_damping_mode="drive")
    for body in range(robot.body_count):
        inertia = np.asarray(robot.body_inertia[body], dtype=np.float32).reshape(3, 3) + np.eye(3, dtype=np.float32) * 0.01
        robot.body_inertia[body] = wp.mat33(inertia)
    robot.joint_q[-12:] = [0.2, 0.4, -0.6, -0.2, -0.4, 0.6, -0.2, 0.4, -0.6, 0.2, -0.4, 0.6]
    robot.joint_target_q[-12:] = robot.joint_q[-12:]
    scene = newton.ModelBuilder()
    scene.replicate(robot, WORLDS)
    scene.add_ground_plane(cfg=robot.default_shape_cfg)
    if solver_name == "vbd":
        scene.color()
    model = scene.finalize(device="cpu")
    if solver_name == "kamino":  # the example's configuration
        config = newton.solvers.SolverKamino.Config.from_model(model, dynamics_solver="dvi", sparse_dynamics=False,
                                                               sparse_jacobian=True)
        config.use_collision_detector = True
        config.integrator = "moreau"
        return model, newton.solvers.SolverKamino(model, config=config)
    solver = {
        "xpbd": newton.solvers.SolverXPBD, "featherstone": newton.solvers.SolverFeatherstone,
        "semi_implicit": newton.solvers.SolverSemiImplicit, "vbd": newton.solvers.SolverVBD,
        "steel": newton.solvers.SolverSteel,
    }[solver_name](model)
    return model, solver


def run(solver_name: str, record: bool):
    """One run; returns the states after every step, and (recorded run) the poses read before each."""
    import newton
    import warp as wp
    from newton.selection import ArticulationView

    model, solver = build(solver_name)
    s0, s1, control = model.state(), model.state(), model.control()
    newton.eval_fk(model, model.joint_q, model.joint_qd, s0)
    pipeline = newton.CollisionPipeline(model)
    contacts = pipeline.contacts()
    view = ArticulationView(model, "*", verbose=False)
    poses = NewtonPoses(view) if record else None
    rng = np.random.default_rng(0)
    targets0 = model.joint_target_q.numpy()
    substeps, dt = STEPPING[solver_name]
    states, recorded, before = [], [], []
    for t in range(T):
        if t in (40, 80):  # reset one world: new joint coordinates, then forward kinematics of its articulation
            world = (t // 40) % WORLDS
            q, qd = s0.joint_q.numpy(), s0.joint_qd.numpy()
            q[:] = model.joint_q.numpy()
            q[world * (q.size // WORLDS) + 2] += 0.3  # dropped from higher up
            qd[:] = np.where(np.arange(qd.size) // (qd.size // WORLDS) == world, 0.0, qd)
            s0.joint_q.assign(q)
            s0.joint_qd.assign(qd)
            mask = wp.array(np.arange(WORLDS) == world, dtype=bool, device="cpu")
            newton.eval_fk(model, s0.joint_q, s0.joint_qd, s0, mask=mask)
        before.append(s0.body_q.numpy().copy())
        if record:
            recorded.append(poses(s0))
        control.joint_target_q.assign((targets0 + rng.uniform(-0.3, 0.3, targets0.shape)).astype(np.float32))
        for _ in range(substeps):
            s0.clear_forces()
            if solver_name != "kamino":  # Kamino detects its own collisions (use_collision_detector)
                pipeline.collide(s0, contacts)
            solver.step(s0, s1, control, contacts, dt)
            s0, s1 = s1, s0
        states.append({k: getattr(s0, k).numpy().copy() for k in ("body_q", "body_qd", "joint_q", "joint_qd")})
    return states, recorded, before, view


@pytest.mark.parametrize("solver_name", SOLVERS)
def test_recording_changes_nothing_and_poses_are_the_bodies(solver_name):
    plain, _, _, _ = run(solver_name, record=False)
    states, recorded, before, view = run(solver_name, record=True)
    for t, (a, b) in enumerate(zip(plain, states)):
        for key in a:
            assert np.array_equal(a[key], b[key], equal_nan=True), f"{solver_name}: {key} differs at step {t}"
    assert np.isfinite(states[-1]["body_q"]).all(), f"{solver_name} diverged"

    bodies = len(view.link_names)
    body_q = np.stack(before).reshape(T, WORLDS, bodies, 7)
    link_pos = torch.stack([r["link_pos"] for r in recorded]).numpy()
    link_quat = torch.stack([r["link_quat"] for r in recorded]).numpy()
    base_pos = torch.stack([r["base_pos"] for r in recorded]).numpy()
    base_quat = torch.stack([r["base_quat"] for r in recorded]).numpy()
    np.testing.assert_array_equal(link_pos, body_q[..., :3])
    np.testing.assert_array_equal(link_quat, body_q[..., 3:])
    np.testing.assert_array_equal(base_pos, body_q[:, :, 0, :3])  # the root body, every step
    np.testing.assert_array_equal(base_quat, body_q[:, :, 0, 3:])
    travelled = np.linalg.norm(base_pos[39] - base_pos[0], axis=-1)
    assert (travelled > 0.05).all(), f"{solver_name}: the bases should move (fell {travelled})"
    jumped = base_pos[40, 1 % WORLDS, 2] - base_pos[39, 1 % WORLDS, 2]
    assert jumped > 0.2, "the reset at step 40 is recorded at once"
