"""Render a recorded rollout to mp4 on the CPU, no simulator needed.

Run ``python examples/01_render_video.py FILE`` (default: the file example 00 writes): the best
env from the follow camera, and a 2x2 grid of envs 0-3 from the top.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rollrec


def main(path: str = "results/rollouts/example_00.npz") -> list[Path]:
    with rollrec.load(path) as r:
        best = int(r.total_rewards().argmax())
        out = Path(path).with_suffix("")
        follow = rollrec.render_video(r, f"{out}_env{best}.mp4", env=best, camera="follow", progress=False)
        grid = rollrec.render_video(r, f"{out}_grid.mp4", envs=[0, 1, 2, 3], camera="top", progress=False)
    print(follow, grid)
    return [follow, grid]


if __name__ == "__main__":
    main(*sys.argv[1:])
