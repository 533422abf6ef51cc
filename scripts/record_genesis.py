"""Record Genesis for real (``genesis-world`` runs on the CPU: ``gs.init(backend=gs.cpu)``).

Genesis is about 4 GB installed, so it is not in CI: install it in a venv of its own, with
rollrec, and run this script there::

    python3 -m venv .venv-genesis
    .venv-genesis/bin/pip install -c constraints.txt genesis-world rsl-rl-lib tensordict -e .
    .venv-genesis/bin/python scripts/record_genesis.py [--genesis-examples DIR]

(``constraints.txt`` holds ``torch==<version>`` to keep the CPU torch.) Two recordings:

1. A Go2 (Genesis' bundled ``urdf/go2/urdf/go2.urdf``) on a plane, ``--num-envs`` envs under random
   joint targets, recorded in a plain loop with `GenesisPoses` (pose read before each step).
2. With ``--genesis-examples DIR`` (Genesis' ``examples/locomotion`` folder): Genesis' own example
   env ``Go2Env`` through ``RolloutRecorder(env).run(policy)`` (`GenesisEnvAdapter`), then the
   adapter's cost per step next to ``Go2Env.step`` (``benchmarks/test_adapters_benchmark.py``).

Each prints what the file holds and checks it (terms sum to ``rew``, poses match the entity).
With ``--genesis-examples`` a fidelity check runs too (`check_fidelity`): ``Go2Env`` stepped
twice with the same actions, once recorded and once not (obs and rewards must be identical), and
per step the recorded pose against Genesis' own: the link state after each ``scene.step`` (where
Genesis' kinematics are fresh), and after each ``_reset_idx`` (``set_qpos(..., skip_forward=True)``:
Genesis' link state is stale there) against the reset pose the obs' projected gravity describes.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

import rollrec
from rollrec.adapters import GenesisPoses, adapt

REPO = Path(__file__).resolve().parents[1]


def record_pose_source(num_envs: int, steps: int, out: Path) -> Path:
    import genesis as gs

    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.02, substeps=2), show_viewer=False)
    scene.add_entity(gs.morphs.URDF(file="urdf/plane/plane.urdf", fixed=True))
    robot = scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf", pos=(0.0, 0.0, 0.42)))
    scene.build(n_envs=num_envs)
    dofs = torch.arange(6, robot.n_dofs)
    robot.set_dofs_kp(torch.full((len(dofs),), 20.0), dofs)
    robot.set_dofs_kv(torch.full((len(dofs),), 0.5), dofs)
    poses = GenesisPoses(robot)
    gen = torch.Generator().manual_seed(0)
    t_sim = t_pose = 0.0
    first_pose = None
    with rollrec.Recorder(out / "genesis_go2_poses.npz", num_envs, max_steps=steps, dt=0.02, env_name="genesis-go2",
                          **poses.recorder_kwargs()) as rec:
        for _ in range(steps):
            qpos = robot.get_dofs_position(dofs)
            act = 0.4 * torch.randn(num_envs, len(dofs), generator=gen)
            t0 = time.perf_counter()
            pose = poses()  # before the step: the state qpos describes
            t1 = time.perf_counter()
            robot.control_dofs_position(qpos + act, dofs)
            scene.step()
            t2 = time.perf_counter()
            t_pose, t_sim = t_pose + t1 - t0, t_sim + t2 - t1
            first_pose = first_pose or {k: v.clone() for k, v in pose.items()}
            rec.record(obs=qpos, act=act, rew=torch.zeros(num_envs), done=torch.zeros(num_envs, dtype=torch.bool), **pose)
        path = rec.path
    r = rollrec.load(path)
    np.testing.assert_allclose(r["link_pos"][0], first_pose["link_pos"].numpy())
    print(f"[pose source] {path.name}: T={r.T} N={r.N}, {len(r.link_names)} links {r.link_names[:4]}..., "
          f"base z {float(r['base_pos'][0, :, 2].mean()):.3f} -> {float(r['base_pos'][-1, :, 2].mean()):.3f} m")
    print(f"[pose source] per step: scene.step {1e3 * t_sim / steps:.2f} ms, GenesisPoses() {1e3 * t_pose / steps:.3f} ms "
          f"({100 * t_pose / t_sim:.2f}% of the step)")
    return path


def record_example_env(num_envs: int, steps: int, out: Path, examples: str) -> Path:
    sys.path.insert(0, examples)
    from go2_env import Go2Env  # Genesis' own example env, unchanged
    from go2_train import get_cfgs

    env_cfg, obs_cfg, reward_cfg, command_cfg = get_cfgs()
    env = Go2Env(num_envs, env_cfg, obs_cfg, reward_cfg, command_cfg)
    gen = torch.Generator().manual_seed(0)
    path = rollrec.RolloutRecorder(env, max_steps=steps, progress=False).run(
        lambda obs: torch.randn(num_envs, env.num_actions, generator=gen), out)
    r = rollrec.load(path)
    terms, rew = np.asarray(r["rew_terms"]), np.asarray(r["rew"])
    done, trunc = np.asarray(r["done"]), np.asarray(r["truncated"])
    print(f"[Go2Env] {path.name}: adapter {r.meta['adapter']}, T={r.T} N={r.N}, terms {r.reward_term_names}, "
          f"{len(r.link_names)} links, {int(done.sum())} episode ends ({int(trunc.sum())} time-outs)")
    print(f"[Go2Env] max |sum(terms) - rew| = {np.abs(terms.sum(-1) - rew).max():.2e}; "
          f"obs layout {[e['name'] for e in r.meta['obs_layout']]}")

    spec = importlib.util.spec_from_file_location("test_adapters_benchmark", REPO / "benchmarks" / "test_adapters_benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    env2 = Go2Env(num_envs, *get_cfgs())
    res = bench.measure_adapter_cost(adapt(env2), env2, lambda obs: torch.randn(num_envs, env2.num_actions, generator=gen), 60)
    print(f"[Go2Env] per step (median of {res['steps']}): Go2Env.step {res['sim_step_ms']:.2f} ms, adapter "
          f"{res['adapter_ms']:.3f} ms ({100 * res['adapter_over_sim']:.2f}%), record {res['record_ms']:.3f} ms "
          f"({100 * res['record_over_sim']:.2f}%)")
    return path


def check_fidelity(num_envs: int, steps: int, out: Path, examples: str) -> None:
    """Recorded vs unrecorded ``Go2Env`` twins, and the recorded pose vs Genesis' state (see the module docstring)."""
    sys.path.insert(0, examples)
    from go2_env import Go2Env
    from go2_train import get_cfgs
    from genesis.utils.geom import inv_quat, transform_by_quat

    def twin(record: bool):
        torch.manual_seed(0)  # Go2Env samples commands with torch's global RNG
        env = Go2Env(num_envs, *get_cfgs())
        gen = torch.Generator().manual_seed(1)
        actions = [torch.randn(num_envs, env.num_actions, generator=gen) for _ in range(steps)]
        seen, inner = [], env.step

        def spy(action):  # Genesis' own state before each step (its link state may be stale)
            qpos = env.robot.get_qpos().clone()
            stale = env.robot.get_links_pos().clone()
            obs, rew, reset, extras = inner(action)
            seen.append({"qpos": qpos, "stale_links": stale, "obs": obs["policy"].clone(), "rew": rew.clone(),
                         "reset": reset.clone()})
            return obs, rew, reset, extras

        env.step = spy
        it = iter(actions)
        if record:
            path = rollrec.RolloutRecorder(env, max_steps=steps, progress=False).run(lambda obs: next(it), out,
                                                                                      filename="go2_fidelity.npz")
            return seen, path
        env.reset()
        for a in actions:
            env.step(a)
        return seen, None

    plain, _ = twin(False)
    recorded, path = twin(True)
    obs_diff = max(float((a["obs"] - b["obs"]).abs().max()) for a, b in zip(plain, recorded))
    rew_diff = max(float((a["rew"] - b["rew"]).abs().max()) for a, b in zip(plain, recorded))
    print(f"[fidelity] recorded vs unrecorded Go2Env, {steps} steps x {num_envs} envs: max |obs diff| {obs_diff:.3g}, "
          f"max |rew diff| {rew_diff:.3g}")
    r = rollrec.load(path)
    link_pos = torch.as_tensor(np.asarray(r["link_pos"]))
    base_quat = torch.as_tensor(np.asarray(r["base_quat"]))
    base_pos = torch.as_tensor(np.asarray(r["base_pos"]))
    reset = torch.stack([s["reset"] for s in recorded]).bool()
    after = torch.zeros_like(reset)
    after[0] = True
    after[1:] = reset[:-1]
    stale = torch.stack([s["stale_links"] for s in recorded])
    qpos = torch.stack([s["qpos"] for s in recorded])
    fresh = ~after
    gravity = transform_by_quat(torch.tensor([0.0, 0.0, -1.0]).expand(*base_quat.shape[:-1], 3), inv_quat(base_quat))
    obs_gravity = torch.as_tensor(np.asarray(r["obs"]))[..., 3:6]  # Go2Env's obs: ang_vel(3), projected gravity(3), ...
    print(f"[fidelity] base_pos == qpos[:3]: max err {float((base_pos - qpos[..., :3]).abs().max()):.3g} m")
    print(f"[fidelity] projected gravity of the recorded base_quat vs the obs': max err "
          f"{float((gravity - obs_gravity).abs().max()):.3g} (after resets: "
          f"{float((gravity - obs_gravity)[after].abs().max()):.3g})")
    print(f"[fidelity] links vs Genesis' link state where it is fresh ({int(fresh.sum())} env-steps): "
          f"max err {float((link_pos - stale)[fresh].abs().max()):.3g} m")
    print(f"[fidelity] first steps after a reset ({int(after.sum())} env-steps): Genesis' own link state is off by up "
          f"to {float((stale - link_pos)[after].abs().max()):.3g} m there (pre-reset); rollrec records the reset pose")
    print(f"[fidelity] model stored: {r.model is not None} ({r.model.num_geoms if r.model is not None else 0} geoms, "
          f"{len(r.link_names)} links)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Record Genesis scenes and Genesis' Go2Env with rollrec.")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", default="results/genesis")
    p.add_argument("--genesis-examples", help="Genesis' examples/locomotion folder (for Go2Env)")
    args = p.parse_args(argv)
    import genesis as gs

    gs.init(backend=gs.cpu, logging_level="warning")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"genesis {gs.__version__}, torch {torch.__version__}, rollrec {rollrec.__version__}")
    record_pose_source(args.num_envs, args.steps, out)
    if args.genesis_examples:
        record_example_env(args.num_envs, args.steps, out, args.genesis_examples)
        check_fidelity(args.num_envs, args.steps, out, args.genesis_examples)


if __name__ == "__main__":
    main()
