"""A real browser shows the real robot: Gymnasium's Ant from the model stored in its rollout.

The robot's parts are scene nodes on the 3D canvas, drawn in the Ant's own colour where its
torso is; asking for ghost robots puts translucent copies of the other envs in the scene.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import rollrec

from .conftest import open_replay, project, readout, wait_for

pytestmark = pytest.mark.browser
gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")

#: JS: how many scene nodes have a name starting with ``prefix``, and how many of them are visible.
NODES_JS = """(prefix) => {
  const refs = window.__viserMutable.nodeRefFromName;
  const names = Object.keys(refs).filter(n => n.startsWith(prefix) && refs[n]);
  return [names.length, names.filter(n => refs[n].visible).length];
}"""


@pytest.fixture(scope="module")
def ant_file(tmp_path_factory):
    env = gym.make_vec("Ant-v5", num_envs=6, vectorization_mode="sync")
    env.action_space.seed(0)
    env.reset(seed=0)
    try:
        return rollrec.RolloutRecorder(env, max_steps=40, progress=False).run(
            lambda obs: 0.3 * env.action_space.sample(), tmp_path_factory.mktemp("ant"), filename="ant.npz")
    finally:
        env.close()


def test_replay_shows_the_ant(chromium, ant_file, tmp_path):
    from rollrec.viewer.server import serve, stop_app

    app = serve(ant_file, port=0, block=False)
    page = open_replay(chromium, f"http://127.0.0.1:{app.server.get_port()}")
    try:
        parts = len(app.scene.robots[0].bodies.parts)
        assert parts == 13  # torso + 12 leg segments, each its own link
        wait_for(lambda: page.evaluate(NODES_JS, "/replay/a/bodies/")[1] == parts, what="the robot's parts")
        app.set_camera("side")
        app.set_trail(False)  # the trail is orange too
        app.step(5)
        wait_for(lambda: readout(page)[0] == 5, what="frame 5")
        time.sleep(1.0)  # let the scene render
        torso = project(page, "/replay/a/bodies/part_0")
        assert torso is not None and torso["visible"] and torso["onCanvas"]
        shot = tmp_path / "ant.png"  # (kept under pytest's tmp dir: look at it when this fails)
        page.screenshot(path=str(shot))
        import imageio.v3 as iio

        img = iio.imread(shot)[..., :3].astype(int)
        x, y = int(torso["x"]), int(torso["y"])
        patch = img[max(0, y - 40): y + 40, max(0, x - 40): x + 40]
        r, g, b = patch[..., 0], patch[..., 1], patch[..., 2]
        ant_coloured = (r > g + 15) & (g > b + 15) & (b > 40)  # the Ant's rgba is (0.8, 0.6, 0.4), lit
        assert ant_coloured.sum() > 200, "no Ant-coloured pixels where the torso is"

        app.set_ghost_robots(True)
        wait_for(lambda: page.evaluate(NODES_JS, "/replay/ghost_robots/")[0] == parts, what="ghost robots")
        ghosts = app.scene.ghosts.robots
        assert len(ghosts.envs) == 5 and np.isfinite(ghosts.poses(5)[0]).all()
    finally:
        page.close()
        stop_app(app)
