"""A recording that a live-replay test follows from another process (not a test).

``python live_recorder.py PATH MODE STEPS SLEEP [NUM_ENVS]``: records the built-in walker into
PATH, one step every SLEEP seconds (so a test can watch it grow), committing every 0.2 s.
MODE ``rollout`` runs `RolloutRecorder` (the rollout loop); ``loop`` a hand-written loop around
`Recorder` (under ``torchrun``: one shard per rank, gloo on CPU), which stops after STEPS
steps or once the file ``PATH.stop`` exists (every rank then closes its shard). Writes its pid
to ``PATH.pid-<rank>`` before the first step.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch

from rollrec.engine import Recorder
from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.loop.rollout import RolloutRecorder


def main() -> None:
    # Ctrl-C (the test's SIGINT) finishes the file, as for a user, even when the test runner was
    # started in the background and this process inherited SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    path, mode, steps, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    num_envs = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    rank = 0
    if "RANK" in os.environ:  # under torchrun
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank = dist.get_rank()
    with open(f"{path}.pid-{rank}", "w") as f:
        f.write(str(os.getpid()))
    env = WalkerEnv(num_envs, seed=rank, max_episode_steps=50)
    policy = GaitPolicy()
    if mode == "rollout":
        def paced(obs):
            time.sleep(sleep)
            return policy(obs)

        RolloutRecorder(env, max_steps=steps, progress=False, flush_interval_s=0.2).run(
            paced, os.path.dirname(path) or ".", filename=os.path.basename(path))
    else:
        with Recorder(path, num_envs, dt=env.dt, env_name=env.name, link_names=list(env.link_names),
                      meta={"link_parents": list(env.link_parents)}, flush_interval_s=0.2) as rec, torch.inference_mode():
            obs = env.reset()
            for _ in range(steps):
                if os.path.exists(f"{path}.stop"):
                    break
                time.sleep(sleep)
                link_pos, link_quat = env.link_poses()
                pose = dict(base_pos=env.base_pos, base_quat=env.base_quat, link_pos=link_pos, link_quat=link_quat)
                action = policy(obs)
                next_obs, rew, terminated, truncated, info = env.step(action)
                rec.record(obs=obs, act=action, rew=rew, done=terminated | truncated, truncated=truncated,
                           reward_terms=info["reward_terms"], **pose)
                obs = next_obs
    print("finished", flush=True)


if __name__ == "__main__":
    main()
