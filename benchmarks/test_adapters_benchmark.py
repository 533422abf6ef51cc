"""Adapter cost per step next to the simulator's own step, measured in the same run.

Run ``python benchmarks/test_adapters_benchmark.py --framework mjlab [--num-envs 64] [--steps 60]`` (the
Go1 velocity task on warp's CPU device), or ``--framework genesis --genesis-examples DIR`` in a
venv with ``genesis-world`` (``DIR``: Genesis' ``examples/locomotion``, for its ``Go2Env``; see
``scripts/record_genesis.py``). ``pytest benchmarks/test_adapters_benchmark.py`` runs the mjlab one.

For each step the loop `RolloutRecorder` runs is timed in parts: ``sim`` is the framework's own
``env.step`` (timed by wrapping it), ``adapter`` is what the adapter adds (``pose()`` plus
``adapter.step()`` minus ``sim``: reward terms, done/truncated, copies, resets it does itself),
``record`` is `Recorder.record` of the step. Figures are medians over steps after ``warmup``;
the ratio ``adapter / sim`` is what matters (the machine's speed cancels out).
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


def run(framework: str, num_envs: int, steps: int, genesis_examples: str | None = None) -> dict[str, Any]:
    from rollrec.adapters import adapt

    env = mjlab_go1(num_envs) if framework == "mjlab" else genesis_go2(num_envs, genesis_examples)
    adapter = adapt(env)
    dim = env.single_action_space.shape[0] if framework == "mjlab" else env.num_actions
    gen = torch.Generator().manual_seed(0)
    result = measure_adapter_cost(adapter, env, lambda obs: torch.randn(num_envs, dim, generator=gen), steps)
    return {"framework": framework, **result}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=("mjlab", "genesis"), default="mjlab")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--genesis-examples", help="Genesis' examples/locomotion folder (for --framework genesis)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.framework == "genesis" and not args.genesis_examples:
        p.error("--framework genesis needs --genesis-examples DIR")
    res = run(args.framework, args.num_envs, args.steps, args.genesis_examples)
    if args.json:
        print(json.dumps(res))
    else:
        print(format_result(res))
    return res


def format_result(res: dict[str, Any]) -> str:
    """The figures of `run` in two lines: the adapter's and the recorder's time as a share of the sim step."""
    return (f"{res['framework']} {res['adapter']}: N={res['num_envs']}, {res['links']} links, {res['terms']} terms, "
            f"median over {res['steps']} steps\n"
            f"  sim step {res['sim_step_ms']:.2f} ms | adapter {res['adapter_ms']:.3f} ms "
            f"({100 * res['adapter_over_sim']:.2f}% of the sim step) | record {res['record_ms']:.3f} ms "
            f"({100 * res['record_over_sim']:.2f}%)")


def test_mjlab_adapter_cost(report):
    import pytest

    pytest.importorskip("mjlab")
    res = run("mjlab", 16, 20)
    report(format_result(res))
    assert res["adapter_over_sim"] > 0


if __name__ == "__main__":
    main()
