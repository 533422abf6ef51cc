"""Record Gymnasium's Ant with its MuJoCo model, then render the real robot to mp4 without MuJoCo.

Run ``python examples/05_mujoco_robot.py`` (needs ``pip install "rollrec[mujoco]"``). The rollout
file holds every body's pose with its name, the per-env reward terms, and the robot's geometry
(`rollrec.Rollout.model`); ``rollrec replay`` and ``rollrec video`` draw the robot from it.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

import rollrec


def main(out_dir: str = "results/rollouts", num_envs: int = 8, steps: int = 300) -> tuple[Path, Path]:
    env = gym.make_vec("Ant-v5", num_envs=num_envs, vectorization_mode="sync")
    env.action_space.seed(0)
    env.reset(seed=0)
    try:
        path = rollrec.RolloutRecorder(env, max_steps=steps, progress=False).run(
            lambda obs: env.action_space.sample(), out_dir, filename="example_05_ant.npz")
    finally:
        env.close()
    with rollrec.load(path) as r:
        print(f"{path}: {r.T} steps x {r.N} envs, links {r.link_names[:3]}..., model {r.model}")
        video = rollrec.render_video(r, path.with_suffix(".mp4"), env=0, camera="follow", progress=False)
    print(video)
    return path, video


if __name__ == "__main__":
    main()
