"""Record a rollout with `rollrec.Recorder` in your own step loop.

Run ``python examples/00_record_rollout.py``: 1024 walkers for 200 steps, written to
``results/rollouts/example_00.npz``, then a short summary read back with `rollrec.load`.
"""

from __future__ import annotations

from pathlib import Path

import torch

import rollrec
from rollrec.envs import GaitPolicy, WalkerEnv


def main(out_dir: str = "results/rollouts", num_envs: int = 1024, steps: int = 200) -> Path:
    env = WalkerEnv(num_envs, seed=0)
    policy = GaitPolicy()
    path = Path(out_dir) / "example_00.npz"
    with rollrec.Recorder(path, num_envs, max_steps=steps, dt=env.dt, env_name=env.name,
                          link_names=env.link_names, meta={"link_parents": list(env.link_parents)}) as rec:
        obs = env.reset()
        with torch.inference_mode():
            for _ in range(steps):
                act = policy(obs)
                base_pos, base_quat = env.base_pos, env.base_quat  # the state obs describes
                link_pos, link_quat = env.link_poses()
                next_obs, rew, terminated, truncated, info = env.step(act)
                rec.record(obs=obs, act=act, rew=rew, done=terminated | truncated, truncated=truncated,
                           base_pos=base_pos, base_quat=base_quat, reward_terms=info["reward_terms"],
                           link_pos=link_pos, link_quat=link_quat)
                obs = next_obs
    with rollrec.load(path) as r:
        best = int(r.total_rewards().argmax())
        print(f"{path}: T={r.T} N={r.N}; best env {best}, its episodes {r.episode_bounds(best).tolist()}")
    return path


if __name__ == "__main__":
    main()
