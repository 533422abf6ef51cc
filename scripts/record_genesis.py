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


if __name__ == "__main__":
    main()
