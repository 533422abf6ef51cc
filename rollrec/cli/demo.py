"""``rollrec demo``: record an env with many parallel copies, write the rollout, replay it.

``--env walker`` (default) is the built-in quadruped with its gait policy, on CUDA when there is
one. ``--env mujoco:<id>`` is a Gymnasium MuJoCo env (``Ant-v5``, ``Humanoid-v5``, ...; extra
``rollrec[mujoco]``) as a synchronous vector env under random actions: every body's pose with its
name, the per-env reward terms, and the robot's model go in the file, so the replay shows the
real robot.

``--camera`` records a camera too, per detail env (``envs=``: 16 envs spread over the walker's,
4 of the MuJoCo env's; their other envs keep rewards, dones and base poses): the walker's rendered
chase camera (RGB, H.264, and its depth, 16-bit lossless: `rollrec.envs.camera.WalkerCamera`), or
the MuJoCo model's first camera through MuJoCo's own renderer where it can render offscreen
(`rollrec.adapters.mujoco_camera`; else the demo says why and records without it). The replay
shows them in its Cameras panel; ``rollrec video FILE --camera chase`` writes one.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="record an env (built-in walker or Gymnasium MuJoCo), write it, serve the replay",
                       description="Record N envs x T steps with rollrec, write the rollout file, then serve its "
                       "browser replay (unless --no-replay). The defaults, the built-in quadruped with 4096 envs "
                       "x 300 steps, write a 1.83 GB file; --env mujoco:Ant-v5 records Gymnasium's Ant (64 envs) "
                       "with its model, so the replay shows the real robot.")
    p.add_argument("--env", default="walker",
                   help="'walker' (built-in, default) or 'mujoco:<Gymnasium id>', e.g. mujoco:Ant-v5")
    p.add_argument("--num-envs", type=int, default=None, help="parallel envs (default 4096 walker, 64 mujoco)")
    p.add_argument("--steps", type=int, default=300, help="steps to record (default 300)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="walker: default cuda when available")
    p.add_argument("--out", default="results/rollouts", help="output directory (default results/rollouts)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the env (default 0)")
    p.add_argument("--no-replay", action="store_true", help="write the file, print its path and exit")
    p.add_argument("--host", default="127.0.0.1", help="replay server address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="replay server port (default 8080)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an interrupted earlier demo recording instead of asking to recover it")
    p.add_argument("--camera", action="store_true",
                   help="also record a camera per detail env (16 envs of the walker, 4 of a MuJoCo env): the walker's "
                   "rendered chase camera and its depth, or the MuJoCo model's camera (needs offscreen GL, e.g. EGL)")
    p.add_argument("--camera-size", type=int, default=64, metavar="PX",
                   help="with --camera: square image size in pixels (default 64)")
    p.set_defaults(func=_run)


def camera_envs(num_envs: int, count: int) -> list[int]:
    """``count`` envs spread evenly over ``num_envs`` (all of them when there are fewer)."""
    import numpy as np

    return sorted(set(np.rint(np.linspace(0, num_envs - 1, min(count, num_envs))).astype(int).tolist()))


def _walker(args: argparse.Namespace) -> tuple[Any, Any, str, str, dict[str, Any]]:
    import torch

    from rollrec.envs import GaitPolicy, WalkerEnv

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to torch")
    env = WalkerEnv(args.num_envs, device=device, seed=args.seed)
    options: dict[str, Any] = {}
    if args.camera:
        from rollrec.envs.camera import WalkerCamera

        ids = camera_envs(args.num_envs, 16)
        camera = WalkerCamera(env, envs=ids, size=(args.camera_size, args.camera_size))
        options = {"envs": ids, "cameras": camera.images}
    name = f"demo_{args.num_envs}envs{'_camera' if args.camera else ''}.npz"
    return env, GaitPolicy().to(device), name, device, options


def _mujoco(args: argparse.Namespace, env_id: str) -> tuple[Any, Any, str, str, dict[str, Any]]:
    why_not = None
    if args.camera:
        from rollrec.adapters.mujoco_camera import rendering_unavailable

        why_not = rendering_unavailable()  # before gymnasium imports mujoco: it picks MUJOCO_GL
    try:
        import gymnasium as gym
        import mujoco  # noqa: F401 - fail here with the install hint, not inside gymnasium
    except ImportError:
        raise ValueError(f"--env mujoco:{env_id} needs Gymnasium's MuJoCo envs: pip install 'rollrec[mujoco]'") from None
    if args.device == "cuda":
        raise ValueError("--device cuda: Gymnasium's MuJoCo envs step on the CPU")
    try:
        env = gym.make_vec(env_id, num_envs=args.num_envs, vectorization_mode="sync")
    except gym.error.Error as exc:
        raise ValueError(f"--env mujoco:{env_id}: {exc}") from None
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    safe = env_id.replace("/", "_")
    options: dict[str, Any] = {}
    if why_not is not None:
        print(f"rollrec demo: recording without a camera: {why_not}")
    elif args.camera:
        from rollrec.adapters.mujoco_camera import MuJoCoCamera

        ids = camera_envs(args.num_envs, 4)
        subs = [e.unwrapped for e in env.envs]
        camera = MuJoCoCamera(subs[0].model, [e.data for e in subs], envs=ids, size=(args.camera_size, args.camera_size))
        options = {"envs": ids, "cameras": camera}
    name = f"demo_{safe}_{args.num_envs}envs{'_camera' if options else ''}.npz"
    return env, lambda obs: env.action_space.sample(), name, "cpu", options


def _run(args: argparse.Namespace) -> int:
    from rollrec.io.opening import load
    from rollrec.loop.rollout import RolloutRecorder

    kind, _, env_id = args.env.partition(":")
    if kind not in ("walker", "mujoco") or (kind == "mujoco") != bool(env_id):
        raise ValueError(f"--env must be 'walker' or 'mujoco:<Gymnasium id>' (e.g. mujoco:Ant-v5), got {args.env!r}")
    if args.num_envs is None:
        args.num_envs = 4096 if kind == "walker" else 64
    if args.num_envs < 1 or args.steps < 1:
        raise ValueError("--num-envs and --steps must be at least 1")
    if args.camera_size < 8:
        raise ValueError("--camera-size must be at least 8 pixels")
    env, policy, filename, device, options = _walker(args) if kind == "walker" else _mujoco(args, env_id)
    start = time.perf_counter()
    recorder = RolloutRecorder(env, max_steps=args.steps, overwrite=args.overwrite, **options)
    try:
        path = recorder.run(policy, args.out, filename=filename)
    except FileExistsError:
        _name_the_flag(os.path.join(args.out, filename))
        raise
    finally:
        if kind == "mujoco":
            env.close()
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


def _name_the_flag(path: str) -> None:
    """Raise the library's "interrupted recording" error as the command line says it (the flag
    ``--overwrite``, not the keyword ``overwrite=True``); return if that is not the error."""
    from rollrec.io.partial import PartialRecording, RecordingState

    recording = PartialRecording.of(path)
    if recording.state() is RecordingState.INTERRUPTED:
        raise FileExistsError(
            f"{path}: an interrupted demo recording of this file was never recovered "
            f"({os.path.basename(recording.data_path)}); run `rollrec recover {path}` to keep its steps, "
            "or rerun with --overwrite to discard it"
        ) from None
