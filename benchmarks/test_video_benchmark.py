"""Video benchmark: rendering speed at 640x480 and memory of the streaming paths.

Run ``python benchmarks/test_video_benchmark.py [--quick]`` or ``pytest benchmarks/test_video_benchmark.py``.
Every figure comes from this one run, and speeds are also given as ratios:

* ``render_fps``: `render_rollout` of a recorded WalkerEnv run to mp4 (drawing + H.264 encoding),
  its ratio to the 30 frames/s target, and to ffmpeg encoding alone of the same frames
  (``encode_fps``: how much of the budget drawing costs); ``draw_fps`` is drawing alone.
* ``bodies``: the robot's real bodies (`rollrec.video.bodies`, from the model stored by
  ``rollrec demo --env mujoco:Humanoid-v5``): drawing alone and `render_rollout` to mp4, against
  the 30 frames/s target and against the stick renderer (``--style sticks``) on the same file.
* ``rss``: peak resident memory (MiB) of a fresh Python process running each streaming path for a
  small and a large number of 640x480 frames (ffmpeg runs in its own process, not counted);
  a ratio of 1.0 means memory is flat in the number of frames.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

SIZE = (640, 480)
TARGET_FPS = 30.0

# Each snippet runs in a fresh interpreter with N (frames) and D (a temp dir) defined, and prints
# its own peak RSS in KiB (VmHWM, which exec resets; ru_maxrss would carry the parent's peak
# across fork+exec, and so says nothing useful about the ffmpeg child either).
_RSS_SNIPPETS = {
    "save_video(generator)": """
import numpy as np
from rollrec.media.writer import save_video
def frames():
    for t in range(N):
        f = np.empty((480, 640, 3), np.uint8); f[...] = t % 256; yield f
save_video(frames(), D + '/v.mp4')
""",
    "BackgroundVideoWriter": """
import numpy as np
from rollrec.media.background import BackgroundVideoWriter
buf = np.zeros((480, 640, 3), np.uint8)
with BackgroundVideoWriter(D + '/v.mp4', max_queue=16) as w:
    for t in range(N):
        buf[...] = t % 256; w.submit(t, buf)
""",
    "collect_frames_from_env(path=...)": """
import numpy as np
from rollrec.media.collect import collect_frames_from_env
class Env:
    t = 0
    def reset(self): return np.zeros(3)
    def step(self, a): self.t += 1; return np.zeros(3), 0.0, False, False, {}
    def render(self): return np.full((480, 640, 3), self.t % 256, np.uint8)
collect_frames_from_env(Env(), lambda o: 0, max_steps=N, path=D + '/v.mp4')
""",
    "render_rollout": """
from rollrec.video import render_rollout
render_rollout(ROLLOUT, D + '/v.mp4', env=0, camera='follow', size=(640, 480), stop=N, progress=False)
""",
}

_RSS_FOOTER = """
import re
hwm = int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))
print(hwm)
"""


def record_walker(path: Path, steps: int, num_envs: int = 2) -> Path:
    """A WalkerEnv + GaitPolicy rollout with link poses and skeleton, as a v1 file."""
    from rollrec.loop.rollout import RolloutRecorder
    from rollrec.envs.walker import GaitPolicy, WalkerEnv

    env = WalkerEnv(num_envs, seed=0)
    return RolloutRecorder(env, max_steps=steps, progress=False).run(GaitPolicy(), path.parent, filename=path.name)


def measure_speed(rollout_path: Path, frames: int, out_dir: Path) -> dict:
    """Frames/s of drawing alone, encoding alone, and `render_rollout` (both), at 640x480."""
    import rollrec
    from rollrec.video import render_frames, render_rollout
    from rollrec.video.scene import scenes_for
    from rollrec.media.writer import save_video

    with rollrec.load(rollout_path) as r:
        t0 = time.perf_counter()
        drawn = list(render_frames(scenes_for(r, [0], "follow", 0, frames), SIZE))
        draw_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        save_video(drawn, out_dir / "encode_only.mp4", fps=50)
        encode_s = time.perf_counter() - t0
        del drawn
        t0 = time.perf_counter()
        render_rollout(
            r, out_dir / "render.mp4", env=0, camera="follow", size=SIZE, stop=frames, progress=False
        )
        render_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        render_rollout(
            r, out_dir / "grid.mp4", envs=[0, 1], camera="top", size=SIZE, stop=frames, progress=False
        )
        grid_s = time.perf_counter() - t0
    render_fps = frames / render_s
    return {
        "frames": frames,
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "draw_fps": frames / draw_s,
        "encode_fps": frames / encode_s,
        "render_fps": render_fps,
        "render_grid2_fps": frames / grid_s,
        "render_vs_target": render_fps / TARGET_FPS,
        "render_vs_encode_only": render_fps / (frames / encode_s),
    }


def record_humanoid(out_dir: Path, steps: int) -> Path | None:
    """A 2-env Gymnasium Humanoid-v5 rollout with its model, or None without gymnasium[mujoco]."""
    try:
        import gymnasium as gym
        import mujoco  # noqa: F401
    except ImportError:
        return None
    from rollrec.loop.rollout import RolloutRecorder

    env = gym.make_vec("Humanoid-v5", num_envs=2, vectorization_mode="sync")
    env.action_space.seed(0)
    env.reset(seed=0)
    try:
        return RolloutRecorder(env, max_steps=steps, progress=False).run(
            lambda obs: env.action_space.sample(), out_dir, filename="humanoid.npz")
    finally:
        env.close()


def measure_bodies(rollout_path: Path, frames: int, out_dir: Path) -> dict:
    """Frames/s with bodies vs sticks (drawing alone, interleaved), and `render_rollout` with bodies."""
    import rollrec
    from rollrec.video import render_rollout
    from rollrec.video.scene import scenes_for

    with rollrec.load(rollout_path) as r:
        scenes = {style: scenes_for(r, [0], "follow", 0, frames, style)[0] for style in ("bodies", "sticks")}
        seconds = {"bodies": 0.0, "sticks": 0.0}
        for _ in range(3):  # interleaved so both see the same machine load
            for style, scene in scenes.items():
                t0 = time.perf_counter()
                for t in range(frames):
                    scene.frame(t, SIZE)
                seconds[style] += time.perf_counter() - t0
        t0 = time.perf_counter()
        render_rollout(r, out_dir / "bodies.mp4", env=0, camera="follow", size=SIZE, stop=frames, progress=False)
        render_s = time.perf_counter() - t0
        faces = scenes["bodies"].bodies.num_faces
    draw_fps = {k: 3 * frames / v for k, v in seconds.items()}
    render_fps = frames / render_s
    return {
        "rollout": "Gymnasium Humanoid-v5 (13 bodies, 18 geoms)",
        "triangles": faces,
        "draw_bodies_fps": draw_fps["bodies"],
        "draw_sticks_fps": draw_fps["sticks"],
        "draw_bodies_vs_sticks": draw_fps["bodies"] / draw_fps["sticks"],
        "render_bodies_fps": render_fps,
        "render_bodies_vs_target": render_fps / TARGET_FPS,
    }


def measure_rss(small: int, large: int, rollout_path: Path, out_dir: Path) -> dict:
    """Peak RSS (MiB) of each streaming path for ``small`` and ``large`` frames, in fresh processes."""
    results: dict[str, dict] = {}
    for name, body in _RSS_SNIPPETS.items():
        row: dict[str, float] = {}
        for n in (small, large):
            header = f"N = {n}\nD = {str(out_dir)!r}\nROLLOUT = {str(rollout_path)!r}\n"
            proc = subprocess.run(
                [sys.executable, "-c", header + body + _RSS_FOOTER],
                capture_output=True,
                text=True,
                check=True,
            )
            row[f"peak_mib_{n}"] = round(int(proc.stdout.split()[-1]) / 1024, 1)
        row["ratio_large_to_small"] = round(row[f"peak_mib_{large}"] / row[f"peak_mib_{small}"], 3)
        results[name] = row
    return results


def video_benchmark(quick: bool = False) -> dict:
    """Run the video benchmark; ``quick`` uses fewer frames (100/400 instead of 200/2000 for RSS,
    150 instead of 600 for speed). Returns a JSON-serialisable dict (see module doc)."""
    small, large = (100, 400) if quick else (200, 2000)
    speed_frames = 150 if quick else 600
    with tempfile.TemporaryDirectory(prefix="rollrec-bench-video-") as tmp:
        tmp = Path(tmp)
        rollout = record_walker(tmp / "walker.npz", steps=max(large, speed_frames))
        result = {
            "speed": measure_speed(rollout, speed_frames, tmp),
            "rss": measure_rss(small, large, rollout, tmp),
        }
        humanoid = record_humanoid(tmp, speed_frames)
        result["bodies"] = measure_bodies(humanoid, speed_frames, tmp) if humanoid else "skipped (needs rollrec[mujoco])"
    result["meets_30fps"] = result["speed"]["render_fps"] >= TARGET_FPS
    if isinstance(result["bodies"], dict):
        result["bodies_meet_30fps"] = result["bodies"]["render_bodies_fps"] >= TARGET_FPS
    return result


# ---- pytest-benchmark -------------------------------------------------------------------------
FRAMES = 100


@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    return record_walker(tmp_path_factory.mktemp("bench") / "walker.npz", steps=FRAMES)


def test_render_rollout_640x480(benchmark, walker, tmp_path):
    from rollrec.video import render_rollout

    benchmark.extra_info["frames"] = FRAMES
    benchmark.pedantic(
        render_rollout, args=(walker, tmp_path / "r.mp4"), kwargs={"size": SIZE, "progress": False}, rounds=3
    )
    if benchmark.disabled:  # --benchmark-disable: run once, nothing timed
        return
    fps = FRAMES / benchmark.stats.stats.mean
    benchmark.extra_info["fps"] = fps
    assert fps >= 30


def test_encode_only_640x480(benchmark, tmp_path):
    from rollrec.media.writer import save_video

    frames = [np.full((SIZE[1], SIZE[0], 3), t % 256, np.uint8) for t in range(FRAMES)]
    benchmark.pedantic(save_video, args=(frames, tmp_path / "e.mp4"), rounds=3)
    if not benchmark.disabled:
        benchmark.extra_info["fps"] = FRAMES / benchmark.stats.stats.mean


def test_video_figures(report):
    """`video_benchmark` (quick): speeds against the 30 frames/s target and encoding alone, bodies
    against sticks, memory of each streaming path for 400 frames against 100."""
    result = video_benchmark(quick=True)
    report(json.dumps(result, indent=1, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))
    assert all(row["ratio_large_to_small"] > 0 for row in result["rss"].values())


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    result = video_benchmark(quick=quick)
    print(json.dumps(result, indent=2, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
