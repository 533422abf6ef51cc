"""Export one env's episode as a viser scene recording: a ``.viser`` file, or a self-contained
``.html`` page that plays it in a browser without rollrec, Python or a server (for sharing a failure).

The scene is the replay viewer's (`rollrec.viewer.scene.RobotView`): ground grid, the robot (its
geometry when the rollout stores its model, else its link skeleton and frames), its base frame
and its base trail, the model's terrain, and a label naming the rollout, env, episode, how it
ended and its return. viser's scene serializer (``ViserServer.get_scene_serializer``) records
the scene, then one pose update per step with a sleep of ``dt`` between steps; viser's client
plays the recording back in real time, with its own playback controls. A local viser server is
started on 127.0.0.1 only to build the messages; no client ever connects to it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rollrec.exports.deps import require
from rollrec.exports.reading import BlockReader
from rollrec.exports.selection import Episode, Selection
from rollrec.io.protocol import ReadableRollout

POSE_KEYS = ("base_pos", "base_quat", "link_pos", "link_quat")


def pick_episode(selection: Selection, env: int, episode: int, r: ReadableRollout) -> Episode:
    """The ``episode``-th (negative counts from the end) of env ``env``'s selected episodes."""
    eps = [e for e in selection.episodes if e.env == env % r.N]
    if not -len(eps) <= episode < len(eps):
        raise IndexError(f"episode {episode} out of range: env {env} has {len(eps)} matching episode(s)")
    return eps[episode]


def _episode_rows(r: ReadableRollout, ep: Episode) -> dict[str, np.ndarray]:
    keys = [k for k in (*POSE_KEYS, "rew") if k in r]
    reader = BlockReader(r, keys, [ep.env])
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for _, rows in reader.chunks(ep):
        for k, v in rows.items():
            parts[k].append(np.array(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def write_viser(r: ReadableRollout, path: Path, ep: Episode, *, html: bool,
                advance: Callable[[int], None] = lambda n: None) -> None:
    """Write episode ``ep`` to ``path``: a ``.viser`` recording, or with ``html`` a standalone page."""
    viser = require("viser", "viser")
    from rollrec.viewer.bodies import draw_terrain
    from rollrec.viewer.scene import RobotView, skeleton_edges
    from rollrec.viewer.state import EnvData

    d = _episode_rows(r, ep)
    n = ep.length
    rew = np.asarray(d["rew"], np.float64)
    data = EnvData(env=ep.env, base_pos=np.asarray(d["base_pos"], np.float32), base_quat=np.asarray(d["base_quat"], np.float32),
                   rew=rew.astype(np.float32), rew_terms=np.zeros((n, 0), np.float32),
                   link_pos=d.get("link_pos"), link_quat=d.get("link_quat"),
                   episodes=np.array([[0, n]], np.int64), episode_of=np.zeros(n, np.int64), return_so_far=np.cumsum(rew))
    with contextlib.redirect_stdout(io.StringIO()):  # viser prints its address: no one is to connect
        server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        server.scene.set_up_direction("+z")
        server.scene.add_grid("/replay/ground", width=40.0, height=40.0, cell_size=0.5, section_size=2.0,
                              infinite_grid=True, fade_distance=60.0)
        model = r.model
        edges = skeleton_edges(d["link_pos"].shape[1], r.meta.get("link_parents")) if "link_pos" in d else None
        robot = RobotView(server, "/replay/a", edges=edges, model=model if "link_pos" in d else None)
        if model is not None:
            draw_terrain(server, "/replay/terrain", model)
        robot.set_env(data)
        robot.show_frame(0)
        server.scene.add_label("/replay/a/base/label", f"{r.path.name} env {ep.env}: steps {ep.start}..{ep.stop}, "
                               f"{ep.end}, return {ep.ret:.4g}", position=(0.0, 0.0, 0.5))
        _aim_camera(server, data.base_pos)
        serializer = server.get_scene_serializer()
        for t in range(n):
            if t:
                serializer.insert_sleep(r.dt)
                robot.show_frame(t)
            advance(1)
        serializer.insert_sleep(r.dt)
        if html:
            path.write_text(serializer.as_html())
        else:
            path.write_bytes(serializer.serialize())
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()


def _aim_camera(server, base_pos: np.ndarray) -> None:
    """Look at the episode's base path from above and to the side, far enough to see all of it."""
    pts = base_pos[np.isfinite(base_pos).all(1)]
    center = pts.mean(0) if len(pts) else np.zeros(3)
    extent = float(np.ptp(pts, axis=0).max()) if len(pts) else 1.0
    distance = max(2.5, 1.2 * extent)
    server.initial_camera.look_at = tuple(center)
    server.initial_camera.position = tuple(center + distance * np.array([0.8, -0.8, 0.6]))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = ["POSE_KEYS", "pick_episode", "write_viser"]
