"""Take the docs' screenshots (docs/img/) of ``rollrec replay`` in headless Chromium.

    .venv/bin/python scripts/screenshots.py [--a A.npz --b B.npz] [--out docs/img]

Without ``--a``/``--b`` it records two checkpoints of the built-in walker first (512 envs x 300
steps each: the gait policy at full and at 60% amplitude). Writes ``viewer.png`` (replay and
overview), ``plots.png`` (fields plotted by name) and ``compare.png`` (two checkpoints), as
256-colour PNGs; with Gymnasium's MuJoCo envs installed, also ``robot.png``: Ant-v5 (64 envs,
random actions: ``--ant`` to give another file) with its real geometry and ghost robots.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def record(out: Path, amplitude: float, name: str) -> Path:
    from rollrec.loop.rollout import RolloutRecorder
    from rollrec.envs import GaitPolicy, WalkerEnv

    env = WalkerEnv(512, seed=0)
    return RolloutRecorder(env, max_steps=300, progress=True).run(GaitPolicy(amplitude=amplitude), out, filename=name)


def record_ant(out: Path) -> Path | None:
    """Gymnasium's Ant-v5, 64 envs x 200 steps of half-scale random actions, with its model."""
    try:
        import gymnasium as gym
        import mujoco  # noqa: F401
    except ImportError:
        print("no gymnasium[mujoco]: robot.png skipped")
        return None
    from rollrec.loop.rollout import RolloutRecorder

    env = gym.make_vec("Ant-v5", num_envs=64, vectorization_mode="sync")
    env.action_space.seed(0)
    env.reset(seed=0)
    try:
        return RolloutRecorder(env, max_steps=200, progress=True).run(
            lambda obs: 0.5 * env.action_space.sample(), out, filename="ant.npz")
    finally:
        env.close()


def save(page, path: Path) -> None:
    from PIL import Image

    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=256).save(path, optimize=True)
    print(path)


def main() -> int:
    parser = argparse.ArgumentParser(description="Take the docs' screenshots (docs/img/) of rollrec replay.")
    parser.add_argument("--a", type=Path, help="rollout to show (default: record the walker)")
    parser.add_argument("--b", type=Path, help="second checkpoint for the compare screenshot")
    parser.add_argument("--ant", type=Path, help="rollout with a robot model for robot.png (default: record Ant-v5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from rollrec.viewer import serve, stop_app

    tmp = Path(tempfile.mkdtemp(prefix="rollrec_shots_"))
    a = args.a or record(tmp, 0.8, "walker_a.npz")
    b = args.b or record(tmp, 0.6, "walker_b.npz")
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)

        def open_page(app):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{app.server.get_port()}")
            page.get_by_text("Frame 0").wait_for()
            close = page.locator(".mantine-Notification-closeButton")
            if close.count():
                close.first.click()
            return page

        app = serve(a, port=0, block=False)
        try:
            page = open_page(app)
            app.wait_overview(60)
            # The triage story: the terminated episodes, lowest return first; open the worst one.
            page.get_by_text("Ended by").click()
            page.get_by_role("option", name="termination", exact=True).click()
            page.get_by_role("button", name="Return", exact=True).click()
            ov = app.wait_overview()
            rows = [i for i in range(len(ov)) if ov.ended[i] == 1]
            worst = min(rows, key=lambda i: ov.ret[i])
            page.get_by_role("button", name=f"{ov.ret[worst]:+.2f}", exact=True).click()
            page.mouse.move(800, 990)
            time.sleep(0.5)
            app.play()
            time.sleep(0.8 * (ov.stop[worst] - ov.start[worst]) * app.state.rollout.dt)
            app.pause()
            time.sleep(1.5)
            save(page, args.out / "viewer.png")
            page.get_by_role("tab", name="Plots").click()
            for field in ("obs[0]", "act[0]", "FL_foot height"):
                app.add_field(field)
            time.sleep(1.5)
            save(page, args.out / "plots.png")
        finally:
            stop_app(app)

        ant = args.ant or record_ant(tmp)
        if ant is not None:
            app = serve(ant, port=0, block=False, ghost_robots=True)
            try:
                page = open_page(app)
                app.select_env(int(app.state.env_totals().argmax()))
                app.seek(60)
                app.set_camera("side")
                time.sleep(10.0)  # software WebGL takes seconds per frame with 64 translucent robots
                save(page, args.out / "robot.png")
                page.close()  # software WebGL drawing 64 robots would slow the next page's load
            finally:
                stop_app(app)

        app = serve(a, b, port=0, block=False)
        try:
            page = open_page(app)
            app.wait_overview(60)
            page.get_by_role("tab", name="Compare").click()
            app.select_env(int(app.state.env_totals().argmax()))
            app.seek(120)
            time.sleep(2.0)
            save(page, args.out / "compare.png")
        finally:
            stop_app(app)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
