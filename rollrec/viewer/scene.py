"""The 3D scene of the replay viewer: ground grid, base frame, trail, links, ghosts (viser handles).

`ReplayScene` only draws what it is told: `set_env` when the selected env changes (trail,
whose links exist), `show_frame` for a frame. It reads nothing from the file except ghosts,
which read one row ``base_pos[t]`` ``[N, 3]`` per shown frame.
"""

from __future__ import annotations

import numpy as np
import viser

from rollrec.io.reader import Rollout
from rollrec.viewer.state import EnvData

#: Ghosts (other envs' bases) are on by default up to this many envs.
GHOSTS_DEFAULT_MAX_ENVS = 1024
_TRAIL_COLOR = (255, 140, 0)
_SKELETON_COLOR = (40, 90, 200)
_GHOST_COLOR = (150, 150, 150)


def skeleton_edges(num_links: int, parents: list[int] | None) -> np.ndarray:
    """``[E, 2]`` int (child, parent) link index pairs to draw as bones.

    With ``parents`` (``meta["link_parents"]``, -1 for a root) the kinematic tree; without it,
    links are chained in order. Parents out of range are ignored.
    """
    if parents is not None and len(parents) == num_links:
        pairs = [(i, int(p)) for i, p in enumerate(parents) if 0 <= int(p) < num_links and int(p) != i]
    else:
        pairs = [(i, i - 1) for i in range(1, num_links)]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


class ReplayScene:
    """Scene nodes under ``/replay`` for one rollout on ``server``."""

    def __init__(self, server: viser.ViserServer, rollout: Rollout):
        self._server = server
        self._rollout = rollout
        scene = server.scene
        scene.set_up_direction("+z")
        self.grid = scene.add_grid("/replay/ground", width=40.0, height=40.0, cell_size=0.5, section_size=2.0,
                                   infinite_grid=True, fade_distance=60.0)
        self.base = scene.add_frame("/replay/base", axes_length=0.3, axes_radius=0.015)
        self.trail: viser.LineSegmentsHandle | None = None
        self.ghosts: viser.PointCloudHandle | None = None
        self.show_ghosts = rollout.N > 1 and rollout.N <= GHOSTS_DEFAULT_MAX_ENVS
        self.show_trail = True
        self.bones: viser.LineSegmentsHandle | None = None
        self.link_axes: viser.BatchedAxesHandle | None = None
        self._edges: np.ndarray | None = None
        if rollout.has_links:
            num_links = rollout["link_pos"].shape[2]
            self._edges = skeleton_edges(num_links, rollout.meta.get("link_parents"))
        self._data: EnvData | None = None

    # ---- per env ---------------------------------------------------------------------------
    def set_env(self, data: EnvData) -> None:
        """Draw the trail of the newly selected env (a line through all its base positions,
        broken at episode boundaries so resets do not draw jumps)."""
        self._data = data
        pos = data.base_pos
        seg = np.stack([pos[:-1], pos[1:]], axis=1)  # [T-1, 2, 3]
        keep = np.ones(len(seg), dtype=bool)
        keep[data.episodes[:-1, 1] - 1] = False  # no segment from an episode's end to the next start
        seg = seg[keep]
        if len(seg) == 0:
            seg = np.zeros((1, 2, 3), np.float32)
        if self.trail is not None:
            self.trail.remove()
        self.trail = self._server.scene.add_line_segments(
            "/replay/trail", seg.astype(np.float32), _TRAIL_COLOR, thickness=2.0, thickness_units="screen",
            visible=self.show_trail,
        )

    def set_trail_visible(self, visible: bool) -> None:
        self.show_trail = visible
        if self.trail is not None:
            self.trail.visible = visible

    def set_ghosts_visible(self, visible: bool, frame: int) -> None:
        self.show_ghosts = visible
        if self.ghosts is not None:
            self.ghosts.visible = visible
        if visible:
            self._draw_ghosts(frame)

    # ---- per frame -------------------------------------------------------------------------
    def show_frame(self, t: int) -> None:
        """Move everything to frame ``t`` of the selected env."""
        data = self._data
        assert data is not None, "set_env first"
        self.base.position = data.base_pos[t]
        self.base.wxyz = data.base_quat[t]
        if data.link_pos is not None and self._edges is not None:
            self._draw_links(data.link_pos[t], data.link_quat[t] if data.link_quat is not None else None)
        if self.show_ghosts:
            self._draw_ghosts(t)

    def _draw_links(self, pos: np.ndarray, quat: np.ndarray | None) -> None:
        pos = np.asarray(pos, dtype=np.float32)
        assert self._edges is not None
        if len(self._edges):
            seg = np.stack([pos[self._edges[:, 0]], pos[self._edges[:, 1]]], axis=1)
            if self.bones is None:
                self.bones = self._server.scene.add_line_segments(
                    "/replay/links/bones", seg, _SKELETON_COLOR, thickness=0.03, thickness_units="world"
                )
            else:
                self.bones.points = seg
        if quat is not None:
            wxyz = np.asarray(quat, dtype=np.float32)
            if self.link_axes is None:
                self.link_axes = self._server.scene.add_batched_axes(
                    "/replay/links/frames", wxyz, pos, axes_length=0.06, axes_radius=0.006
                )
            else:
                self.link_axes.batched_positions = pos
                self.link_axes.batched_wxyzs = wxyz

    def _draw_ghosts(self, t: int) -> None:
        pts = np.asarray(self._rollout["base_pos"][t], dtype=np.float32)  # one row: [N, 3]
        if self.ghosts is None:
            self.ghosts = self._server.scene.add_point_cloud(
                "/replay/ghosts", pts, _GHOST_COLOR, point_size=0.05, point_shape="circle", precision="float32"
            )
        else:
            self.ghosts.points = pts
