"""Record one rollout across the ranks of ``torch.distributed``: each rank records its own envs.

Run ``torchrun --nproc-per-node 2 examples/04_record_across_ranks.py``: each rank steps its own
walkers (rank r gets 256 + 64 r envs: shards may differ in size) and records them with the same
`rollrec.Recorder` call; the result is the directory ``results/rollouts/example_04/`` (one file
per rank and a manifest), read back as one rollout of every rank's envs. Without torchrun it
records a plain ``example_04.npz``. The backend is gloo on the CPU (NCCL works the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

import rollrec
from rollrec.envs import GaitPolicy, WalkerEnv


def main(out_dir: str = "results/rollouts", envs_per_rank: int = 256, steps: int = 200) -> Path:
    distributed = "RANK" in os.environ  # started by torchrun
    if distributed and not dist.is_initialized():
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    num_envs = envs_per_rank + envs_per_rank // 4 * rank  # uneven on purpose
    env = WalkerEnv(num_envs, seed=rank)  # each rank its own envs, its own seed
    policy = GaitPolicy()
    with rollrec.Recorder(Path(out_dir) / "example_04.npz", num_envs, max_steps=steps, dt=env.dt,
                          env_name=env.name, link_names=env.link_names,
                          meta={"link_parents": list(env.link_parents)}) as rec:
        obs = env.reset()
        with torch.inference_mode():
            for _ in range(steps):
                act = policy(obs)
                base_pos, base_quat = env.base_pos, env.base_quat
                link_pos, link_quat = env.link_poses()
                next_obs, rew, terminated, truncated, info = env.step(act)
                rec.record(obs=obs, act=act, rew=rew, done=terminated | truncated, truncated=truncated,
                           base_pos=base_pos, base_quat=base_quat, link_pos=link_pos, link_quat=link_quat,
                           reward_terms=info["reward_terms"])
                obs = next_obs
    path = rec.close()  # every rank: the same directory, once all ranks have closed
    if rank == 0:
        with rollrec.load(path) as r:
            sharded = isinstance(r, rollrec.io.sharded.ShardedRollout)
            best = int(r.total_rewards().argmax())
            where = f" (recorded by rank {r.shard_of(best).entry.rank})" if sharded else ""
            print(f"{path}: {r.N} envs x {r.T} steps from {len(r.shards) if sharded else 1} rank(s); "
                  f"best env {best}{where}")
    if distributed:
        dist.destroy_process_group()
    return path


if __name__ == "__main__":
    main()
