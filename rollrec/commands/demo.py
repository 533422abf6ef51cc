"""``rollrec demo``: record the built-in walker with thousands of envs, write it, replay it."""

from __future__ import annotations

import argparse
import os
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="record the built-in env, write the rollout, serve the replay",
                       description="Record the built-in quadruped env (N envs x T steps) with rollrec, write the "
                       "rollout file, then serve its browser replay (unless --no-replay). The defaults, "
                       "4096 envs x 300 steps, write a 1.83 GB file.")
    p.add_argument("--num-envs", type=int, default=4096, help="parallel envs (default 4096)")
    p.add_argument("--steps", type=int, default=300, help="steps to record (default 300)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.add_argument("--out", default="results/rollouts", help="output directory (default results/rollouts)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the env (default 0)")
    p.add_argument("--no-replay", action="store_true", help="write the file, print its path and exit")
    p.add_argument("--host", default="127.0.0.1", help="replay server address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="replay server port (default 8080)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an interrupted earlier demo recording instead of asking to recover it")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from rollrec.engine.rollout import RolloutRecorder
    from rollrec.envs import GaitPolicy, WalkerEnv
    from rollrec.io.reader import load

    if args.num_envs < 1 or args.steps < 1:
        raise ValueError("--num-envs and --steps must be at least 1")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to torch")
    env = WalkerEnv(args.num_envs, device=device, seed=args.seed)
    policy = GaitPolicy().to(device)
    start = time.perf_counter()
    recorder = RolloutRecorder(env, max_steps=args.steps, overwrite=args.overwrite)
    path = recorder.run(policy, args.out, filename=f"demo_{args.num_envs}envs.npz")
    seconds = time.perf_counter() - start
    size = os.path.getsize(path)
    with load(path) as rollout:  # what the file holds, not what was asked for
        steps = rollout.T
    note = f" (interrupted after {steps} of {args.steps})" if recorder.interrupted else ""
    print(f"wrote {path}: {steps} steps x {args.num_envs} envs on {device}{note}, {size / 1e9:.2f} GB "
          f"in {seconds:.1f} s ({steps * args.num_envs / seconds / 1e3:.0f}k env-steps/s, env included)")
    if args.no_replay or recorder.interrupted:  # Ctrl-C: the file is kept, the replay is not started
        print(path)
        return 130 if recorder.interrupted else 0
    from rollrec.viewer import serve

    serve(path, host=args.host, port=args.port)
    return 0
