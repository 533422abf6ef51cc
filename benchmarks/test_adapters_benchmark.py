"""Adapter cost per step next to the simulator's own step, measured in the same run.

Run ``python benchmarks/test_adapters_benchmark.py`` (every framework installed here, one after the other)
or ``--framework gymnasium|mjlab|mjx|newton|walker|genesis [--num-envs 16] [--steps 60]``:

- ``gymnasium``: Ant-v5 in a ``SyncVectorEnv`` through `GymVectorAdapter` (`MuJoCoPoses` on a
  private ``MjData``); ``sim`` is the vector env's ``step``.
- ``mjlab``: the Go1 velocity task on warp's CPU device through `MjlabAdapter`.
- ``walker``: rollrec's `WalkerEnv` through `WalkerAdapter`.
- ``genesis`` (``--genesis-examples DIR``, in a venv with ``genesis-world``; ``DIR``: Genesis'
  ``examples/locomotion`` for its ``Go2Env``; see ``scripts/record_genesis.py``): `GenesisEnvAdapter`.
- ``mjx`` and ``newton`` have no env class: the user steps them, so the figure is the pose source
  read before each step (`MjxPoses` on a vmapped Ant batch: ``mjx.kinematics`` and the DLPack
  copies; `NewtonPoses` on Newton's quadruped example under ``SolverXPBD``) next to the user's step
  (``jax.jit(jax.vmap(mjx.step))`` until ready; the example's 4 substeps of collide + solve).

For an adapter each step is timed in parts: ``sim`` is the framework's own ``env.step`` (timed by
wrapping it), ``adapter`` is what the adapter adds (``pose()`` plus ``adapter.step()`` minus
``sim``: reward terms, done/truncated, copies, resets it does itself), ``record`` is
`Recorder.record` of the step. Figures are medians over steps after ``warmup``; the ratio
``adapter / sim`` is what matters (the machine's speed cancels out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def measure_adapter_cost(adapter: Any, env: Any, policy: Callable[[Any], Any], steps: int, warmup: int = 5,
                         record_dir: str | None = None) -> dict[str, Any]:
    """Time ``steps`` steps of ``adapter`` (wrapping ``env``); returns median seconds per step and ratios."""
    import rollrec

    inner = env.step
    sim: list[float] = []

    def timed_step(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        sim.append(time.perf_counter() - t)
        return out

    env.step = timed_step
    rows = []
    try:
        with tempfile.TemporaryDirectory(dir=record_dir) as tmp:
            rec = rollrec.Recorder(Path(tmp) / "bench.npz", adapter.num_envs, max_steps=steps, dt=adapter.dt,
                                   quat_order=adapter.quat_order, link_names=adapter.link_names)
            obs = adapter.reset()
            for _ in range(steps):
                action = policy(obs)
                t0 = time.perf_counter()
                pose = adapter.pose()
                t1 = time.perf_counter()
                n_before = len(sim)
                out = adapter.step(action)
                t2 = time.perf_counter()
                rec.record(obs=adapter.record_obs(obs), act=action, rew=out.rew, done=out.done,
                           truncated=out.truncated, reward_terms=out.reward_terms or None, **pose, **out.extras)
                t3 = time.perf_counter()
                step_sim = sum(sim[n_before:])
                rows.append((step_sim, (t1 - t0) + (t2 - t1 - step_sim), t3 - t2))
                obs = out.obs
            rec.close()
    finally:
        del env.step
    rows = rows[warmup:]
    sim_s = statistics.median(r[0] for r in rows)
    adapter_s = statistics.median(r[1] for r in rows)
    record_s = statistics.median(r[2] for r in rows)
    return {
        "adapter": type(adapter).__name__, "num_envs": adapter.num_envs, "steps": len(rows),
        "sim_step_ms": sim_s * 1e3, "adapter_ms": adapter_s * 1e3, "record_ms": record_s * 1e3,
        "adapter_over_sim": adapter_s / sim_s, "record_over_sim": record_s / sim_s,
        "links": len(adapter.link_names or []), "terms": len(out.reward_terms),
    }


def measure_pose_cost(poses: Callable[[], dict[str, Any]], sim_step: Callable[[], None], steps: int,
                      warmup: int = 5) -> dict[str, Any]:
    """Median seconds of ``poses()`` (read before each step) and of ``sim_step()``, and their ratio."""
    sim, pose = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        poses()
        t1 = time.perf_counter()
        sim_step()
        t2 = time.perf_counter()
        pose.append(t1 - t0)
        sim.append(t2 - t1)
    sim_s, pose_s = statistics.median(sim[warmup:]), statistics.median(pose[warmup:])
    return {"steps": len(sim) - warmup, "sim_step_ms": sim_s * 1e3, "adapter_ms": pose_s * 1e3,
            "adapter_over_sim": pose_s / sim_s}


def mjlab_go1(num_envs: int) -> Any:
    import mjlab.tasks  # noqa: F401  (registers the tasks)
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.registry import load_env_cfg

    cfg = load_env_cfg("Mjlab-Velocity-Flat-Unitree-Go1")
    cfg.scene.num_envs = num_envs
    cfg.seed = 0
    return ManagerBasedRlEnv(cfg, device="cpu")


def genesis_go2(num_envs: int, examples_dir: str) -> Any:
    import sys

    import genesis as gs

    gs.init(backend=gs.cpu, logging_level="warning")
    sys.path.insert(0, examples_dir)
    from go2_env import Go2Env  # Genesis' own example env
    from go2_train import get_cfgs

    env_cfg, obs_cfg, reward_cfg, command_cfg = get_cfgs()
    return Go2Env(num_envs, env_cfg, obs_cfg, reward_cfg, command_cfg)


def gymnasium_ant(num_envs: int) -> Any:
    import gymnasium as gym

    return gym.make_vec("Ant-v5", num_envs=num_envs, vectorization_mode="sync")


def adapter_run(framework: str, num_envs: int, steps: int, genesis_examples: str | None) -> dict[str, Any]:
    from rollrec.adapters import adapt
    from rollrec.envs import WalkerEnv

    env = {"mjlab": lambda: mjlab_go1(num_envs), "gymnasium": lambda: gymnasium_ant(num_envs),
           "walker": lambda: WalkerEnv(num_envs, seed=0),
           "genesis": lambda: genesis_go2(num_envs, genesis_examples)}[framework]()
    adapter = adapt(env)
    if framework == "genesis":
        dim = env.num_actions
    elif framework == "walker":
        dim = 8  # WalkerEnv: 8 joint targets
    else:
        dim = env.single_action_space.shape[0]
    gen = torch.Generator().manual_seed(0)
    result = measure_adapter_cost(adapter, env, lambda obs: torch.rand(num_envs, dim, generator=gen) * 2 - 1, steps)
    if hasattr(env, "close"):
        env.close()
    return result


def mjx_run(num_envs: int, steps: int) -> dict[str, Any]:
    import gymnasium
    import jax
    import mujoco
    from mujoco import mjx

    from rollrec.adapters import MjxPoses

    xml = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / "ant.xml"
    model = mujoco.MjModel.from_xml_path(str(xml))
    mx = mjx.put_model(model)
    d0 = mjx.make_data(mx)
    state = {"data": jax.vmap(lambda _: d0)(jax.numpy.arange(num_envs))}
    step = jax.jit(jax.vmap(mjx.step, in_axes=(None, 0)))
    key = jax.random.PRNGKey(0)
    source = MjxPoses(model, mx)

    def sim_step() -> None:
        nonlocal key
        key, sub = jax.random.split(key)
        ctrl = jax.random.uniform(sub, (num_envs, model.nu), minval=-1.0, maxval=1.0)
        state["data"] = step(mx, state["data"].replace(ctrl=ctrl))
        jax.block_until_ready(state["data"])

    sim_step()  # compile the step and the kinematics before timing
    source(state["data"])
    result = measure_pose_cost(lambda: source(state["data"]), sim_step, steps)
    return {"adapter": "MjxPoses", "num_envs": num_envs, "links": len(source.link_names), **result}


def newton_run(num_envs: int, steps: int) -> dict[str, Any]:
    import newton
    import newton.examples
    import numpy as np
    import warp as wp
    from newton.selection import ArticulationView

    from rollrec.adapters import NewtonPoses

    robot = newton.ModelBuilder()  # newton/examples/basic/example_basic_urdf.py
    robot.default_joint_cfg.armature = 0.01
    robot.default_joint_cfg.target_ke = 2000.0
    robot.default_joint_cfg.target_kd = 1.0
    robot.default_shape_cfg.mu = 1.0
    robot.add_urdf(newton.examples.get_asset("quadruped.urdf"), xform=wp.transform(wp.vec3(0.0, 0.0, 0.7),
                   wp.quat_identity()), floating=True, enable_self_collisions=False, ignore_inertial_definitions=True,
                   joint_damping_mode="drive")
    for body in range(robot.body_count):
        inertia = np.asarray(robot.body_inertia[body], dtype=np.float32).reshape(3, 3) + np.eye(3, dtype=np.float32) * 0.01
        robot.body_inertia[body] = wp.mat33(inertia)
    scene = newton.ModelBuilder()
    scene.replicate(robot, num_envs)
    scene.add_ground_plane(cfg=robot.default_shape_cfg)
    model = scene.finalize(device="cpu")
    solver = newton.solvers.SolverXPBD(model)
    states = [model.state(), model.state()]
    control = model.control()
    newton.eval_fk(model, model.joint_q, model.joint_qd, states[0])
    pipeline = newton.CollisionPipeline(model)
    contacts = pipeline.contacts()
    source = NewtonPoses(ArticulationView(model, "*", verbose=False))

    def sim_step() -> None:
        for _ in range(4):
            s0, s1 = states
            s0.clear_forces()
            pipeline.collide(s0, contacts)
            solver.step(s0, s1, control, contacts, 1 / 480)
            states.reverse()

    sim_step()
    result = measure_pose_cost(lambda: source(states[0]), sim_step, steps)
    return {"adapter": "NewtonPoses", "num_envs": num_envs, "links": len(source.link_names), **result}


FRAMEWORKS = ("gymnasium", "mjlab", "mjx", "newton", "walker", "genesis")
#: the package each framework needs (skipped when it is not installed)
NEEDS = {"gymnasium": "gymnasium", "mjlab": "mjlab", "mjx": "mujoco.mjx", "newton": "newton", "walker": "rollrec",
         "genesis": "genesis"}


def run(framework: str, num_envs: int, steps: int, genesis_examples: str | None = None) -> dict[str, Any]:
    if framework == "mjx":
        result = mjx_run(num_envs, steps)
    elif framework == "newton":
        result = newton_run(num_envs, steps)
    else:
        result = adapter_run(framework, num_envs, steps, genesis_examples)
    return {"framework": framework, **result}


def installed(framework: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(NEEDS[framework]) is not None
    except ModuleNotFoundError:
        return False


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=("all", *FRAMEWORKS), default="all")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--genesis-examples", help="Genesis' examples/locomotion folder (for --framework genesis)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.framework == "genesis" and not args.genesis_examples:
        p.error("--framework genesis needs --genesis-examples DIR")
    names = [args.framework] if args.framework != "all" else [
        f for f in FRAMEWORKS if installed(f) and (f != "genesis" or args.genesis_examples)]
    results = []
    for name in names:
        res = run(name, args.num_envs, args.steps, args.genesis_examples)
        results.append(res)
        if args.json:
            print(json.dumps(res), flush=True)
            continue
        print(format_result(res), flush=True)
    return results


def format_result(res: dict[str, Any]) -> str:
    """One line of `run`'s figures: the adapter's (and the recorder's) time as a share of the sim step."""
    extra = (f" | record {res['record_ms']:.3f} ms ({100 * res['record_over_sim']:.2f}%)" if "record_ms" in res
             else " (pose source read before the user's step)")
    return (f"{res['framework']:9s} {res['adapter']:18s} N={res['num_envs']}, {res['links']} links, median of "
            f"{res['steps']} steps: sim step {res['sim_step_ms']:.2f} ms | adapter {res['adapter_ms']:.3f} ms "
            f"({100 * res['adapter_over_sim']:.2f}% of the sim step){extra}")


def test_adapter_costs(report):
    import pytest

    for name in ("walker", "gymnasium", "mjlab", "mjx", "newton"):
        if not installed(name):
            continue
        res = run(name, 4, 12)
        report(format_result(res))
        assert res["adapter_over_sim"] > 0 and res["sim_step_ms"] > 0
    pytest.importorskip("mjlab")


if __name__ == "__main__":
    main()
