"""Record what the policy saw: a camera per detail env, encoded off the recording thread.

Run ``python examples/06_record_camera.py`` (needs ``pip install 'rollrec[camera]'``): 1024 walkers
for 200 steps, 16 of them detail envs with a 64x64 chase camera (RGB, H.264) and its depth
(16-bit, lossless), written to ``results/rollouts/example_06.npz``; then env 3's frames are read
back by step, and its camera is written to a video beside the 3D render. ``rollrec replay`` on
the file shows the cameras under the frame slider.
"""

from __future__ import annotations

from pathlib import Path

import torch

import rollrec
from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.envs.camera import WalkerCamera


def main(out_dir: str = "results/rollouts", num_envs: int = 1024, steps: int = 200) -> tuple[Path, Path]:
    env = WalkerEnv(num_envs, seed=0)
    policy = GaitPolicy()
    detail = list(range(0, num_envs, num_envs // 16))  # the envs that keep every field, and a camera
    camera = WalkerCamera(env, envs=detail, size=(64, 64))  # renders those envs only: [16, 64, 64, 3]
    path = Path(out_dir) / "example_06.npz"
    with rollrec.Recorder(path, num_envs, max_steps=steps, dt=env.dt, env_name=env.name, envs=detail,
                          link_names=env.link_names, meta={"link_parents": list(env.link_parents)}) as rec:
        obs = env.reset()
        with torch.inference_mode():
            for _ in range(steps):
                act = policy(obs)
                base_pos, base_quat = env.base_pos, env.base_quat  # the state obs describes
                link_pos, link_quat = env.link_poses()
                images = camera.images()  # {"chase": rgb uint8, "depth": uint16 mm}, of that state too
                next_obs, rew, terminated, truncated, info = env.step(act)
                rec.record(obs=obs, act=act, rew=rew, done=terminated | truncated, truncated=truncated,
                           base_pos=base_pos, base_quat=base_quat, reward_terms=info["reward_terms"],
                           link_pos=link_pos, link_quat=link_quat, images=images)
                obs = next_obs
    with rollrec.load(path) as r:
        env3 = detail[3]
        frames = r.images("chase", env3)  # lazy: nothing is decoded yet
        step = min(120, r.T - 1)
        depth_mm = r.images("depth", env3).at(step)[32, 32]
        print(f"{path}: cameras {list(r.cameras)}; env {env3} has {len(frames)} frames; step {step}: "
              f"{frames.at(step).shape} {frames.dtype}, depth at the centre {depth_mm} mm")
        video = rollrec.render_video(r, path.with_name("example_06_env3.mp4"), env=env3, image="chase", beside=True,
                                     progress=False)
    return path, video


if __name__ == "__main__":
    main()
