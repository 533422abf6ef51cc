"""Viewer benchmark with a real robot: update rate with the robot's geometry and ghost robots on.

Run ``python benchmarks/test_viewer_robot_benchmark.py [--envs 64] [--steps 300] [--seconds 8] [--go1]``
(alone on the machine: other jobs skew the figures). Records Gymnasium's Ant-v5 (``--go1``:
also mjlab's Unitree Go1 with its meshes) with its model, then, in the same run:

* ``scene``: the server's cost of one frame update (`ReplayScene.show_frame`: every part of the
  selected robot moved, and one row of link poses read and sent per ghost part) for three
  scenes on one viser server: the stick skeleton with sphere ghosts (the old view), the real
  robot with sphere ghosts, the real robot with ghost robots of every other env (at most 64).
  Given as updates/s the server could push, and as a ratio to the 30 Hz target.
* ``browser``: `rollrec replay` served with ghost robots on, played at 2x speed (40 frames/s
  wanted, so the 30 Hz tick is the limit) with headless Chromium connected: the frame updates
  pushed per second, against the 30 Hz target and against the old view (the same file without
  its model: sticks and sphere ghosts), and how many animation frames the browser drew per
  second (software WebGL here, on the same two cores: a figure of this machine, not of the viewer).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_HZ = 30.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def record_ant(out: Path, num_envs: int, steps: int) -> Path:
    import gymnasium as gym

    import rollrec

    env = gym.make_vec("Ant-v5", num_envs=num_envs, vectorization_mode="sync")
    env.action_space.seed(0)
    env.reset(seed=0)
    try:
        return rollrec.RolloutRecorder(env, max_steps=steps, progress=False).run(
            lambda obs: 0.5 * env.action_space.sample(), out, filename="ant.npz")
    finally:
        env.close()


def record_go1(out: Path, num_envs: int, steps: int) -> Path:
    import mjlab.tasks  # noqa: F401
    import torch
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.registry import load_env_cfg

    import rollrec

    cfg = load_env_cfg("Mjlab-Velocity-Flat-Unitree-Go1")
    cfg.scene.num_envs = num_envs
    env = ManagerBasedRlEnv(cfg, device="cpu")
    try:
        return rollrec.RolloutRecorder(env, max_steps=steps, progress=False).run(
            lambda obs: 0.3 * torch.randn(num_envs, 12), out, filename="go1.npz")
    finally:
        env.close()


def scene_costs(path: Path, repeats: int = 3) -> dict:
    """Milliseconds per `ReplayScene.show_frame` for the three scenes (medians of interleaved passes)."""
    import viser

    import rollrec
    from rollrec.viewer.scene import ReplayScene
    from rollrec.viewer.state import read_env

    servers = [viser.ViserServer(host="127.0.0.1", port=0, verbose=False) for _ in range(3)]  # same node names
    try:
        with rollrec.load(path) as r:
            model = r.model
            data = read_env(r, 0)
            scenes = {
                "sticks, sphere ghosts (old)": ReplayScene(servers[0], r, ghosts=True),
                "robot, sphere ghosts": ReplayScene(servers[1], r, ghosts=True, models=(model, None)),
                "robot, ghost robots": ReplayScene(servers[2], r, ghosts=True, models=(model, None),
                                                   ghost_robots=True),
            }
            for scene in scenes.values():
                scene.set_env([data], [np.zeros(3, np.float32)])
                scene.show_frame(0)  # the first frame sends the meshes
            times: dict[str, list[float]] = {k: [] for k in scenes}
            for _ in range(repeats):
                for name, scene in scenes.items():
                    t0 = time.perf_counter()
                    for t in range(r.T):
                        scene.show_frame(t)
                    times[name].append((time.perf_counter() - t0) / r.T)
            ghosts = len(scenes["robot, ghost robots"].ghosts.robots.envs)
            parts = len(scenes["robot, ghost robots"].robots[0].bodies.parts)
            faces = sum(len(p.faces) for p in scenes["robot, ghost robots"].robots[0].bodies.parts)
    finally:
        for server in servers:
            server.stop()
    out = {"ghost_envs": ghosts, "robot_parts": parts, "robot_triangles": faces}
    for name, ts in times.items():
        ms = 1e3 * statistics.median(ts)
        out[name] = {"ms_per_update": round(ms, 3), "updates_per_s": round(1e3 / ms, 1),
                     "vs_30hz": round(1e3 / ms / TARGET_HZ, 2)}
    return out


def without_model(path: Path) -> Path:
    """A copy of the rollout without its model: what the viewer showed before (sticks, sphere ghosts)."""
    import rollrec

    with rollrec.load(path) as r:
        fields = {k: np.asarray(r[k]) for k in r if not k.startswith("model_")}
        meta = {k: v for k, v in r.meta.items() if k not in ("model", "format", "format_version", "num_steps",
                                                              "num_envs", "dt", "env_name", "created", "extras")}
        return rollrec.save(path.with_name(path.stem + "_sticks.npz"), fields, dt=r.dt,
                            env_name=r.env_name, meta=meta)


def browser_rate(path: Path, seconds: float, ghost_robots: bool = True) -> dict:
    """Updates pushed per second with Chromium connected, playing at 2x (ghost robots on if asked)."""
    from playwright.sync_api import sync_playwright

    from rollrec.viewer.server import serve, stop_app

    app = serve(path, port=0, block=False, ghost_robots=ghost_robots)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{app.server.get_port()}")
            page.get_by_text("Frame 0").wait_for(timeout=30000)
            time.sleep(2.0)  # meshes sent and drawn
            app.set_speed(2.0)
            app.set_loop(True)
            page.evaluate("() => { window.__frames = 0; const f = () => { window.__frames++; "
                          "requestAnimationFrame(f); }; requestAnimationFrame(f); }")
            pushes0, t0 = app.pushes, time.perf_counter()
            app.play()
            time.sleep(seconds)
            elapsed = time.perf_counter() - t0
            pushes = app.pushes - pushes0
            drawn = page.evaluate("() => window.__frames")
            app.pause()
            browser.close()
    finally:
        stop_app(app)
    rate = pushes / elapsed
    return {"updates_per_s": round(rate, 1), "vs_30hz": round(rate / TARGET_HZ, 2),
            "browser_animation_frames_per_s": round(drawn / elapsed, 1), "seconds": round(elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--go1", action="store_true", help="also mjlab's Go1 (meshes; about a minute to record)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="rollrec-bench-viewer-") as tmp:
        files = {"Ant-v5": record_ant(Path(tmp), args.envs, args.steps)}
        if args.go1:
            files["Go1 (mjlab)"] = record_go1(Path(tmp), args.envs, min(args.steps, 60))
        for name, path in files.items():
            results[name] = viewer_figures(path, args.seconds)
    print(json.dumps({"envs": args.envs, "target_hz": TARGET_HZ, **results}, indent=2))
    return 0


def viewer_figures(path: Path, seconds: float) -> dict:
    """The scene's cost per update and the browser's update rate for the rollout at ``path``, each
    against the 30 Hz target and the old view (the same file without its model)."""
    old = browser_rate(without_model(path), seconds, ghost_robots=False)
    spheres = browser_rate(path, seconds, ghost_robots=False)
    new = browser_rate(path, seconds)
    for row in (spheres, new):
        row["vs_old_view"] = round(row["updates_per_s"] / old["updates_per_s"], 2)
    return {"scene": scene_costs(path), "browser (robot, ghost robots)": new,
            "browser (robot, sphere ghosts)": spheres, "browser (old: sticks, sphere ghosts)": old}


def test_viewer_with_ghost_robots(tmp_path, report):
    """Ant-v5, 16 envs x 100 steps, 3 s of play per view (``main`` runs 64 x 300, 8 s)."""
    import pytest

    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    pytest.importorskip("playwright")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs /usr/bin/chromium")
    figures = viewer_figures(record_ant(tmp_path, 16, 100), 3.0)
    report(json.dumps(figures, indent=1))
    assert figures["browser (robot, ghost robots)"]["updates_per_s"] > 0


if __name__ == "__main__":
    raise SystemExit(main())
