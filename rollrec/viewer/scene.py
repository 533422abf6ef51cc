"""The 3D scene of the replay viewer (viser handles): ground, robots, trails, ghosts.

`RobotView` draws one env of one rollout (base frame, trail, and its links: the robot's real
geometry when the file stores its model (`rollrec.viewer.bodies`), else a skeleton with link
frames); compare mode has two, B in another colour and possibly shifted. `GhostView` draws other
envs' bases at the same frame as small translucent spheres, at most `MAX_GHOSTS` of them (one
batched mesh, one ``[G, 3]`` position update per frame), or, when asked and the model is there,
as whole translucent robots (at most `MAX_GHOST_ROBOTS`). `ReplayScene` holds them and the
model's static terrain. Nothing here reads the file except the ghosts, which read one row
``base_pos[t]`` (or ``link_pos[t]``/``link_quat[t]``) per shown frame.
"""

from __future__ import annotations

import numpy as np
import viser

from rollrec.io.protocol import ReadableRollout
from rollrec.model.robot import RobotModel
from rollrec.viewer.bodies import BodiesView, GhostBodies, draw_terrain, part_reach
from rollrec.viewer.state import EnvData

#: Most other envs drawn as ghosts; above that, an evenly spaced subset.
MAX_GHOSTS = 256
#: Most other envs drawn as whole ghost robots (each is one instance of every part of the robot).
MAX_GHOST_ROBOTS = 64
GHOST_RADIUS = 0.04  # metres
GHOST_OPACITY = 0.45
_TRAIL_COLOR = (255, 140, 0)
#: Compare mode: each rollout's colour (A blue, B orange, C green, D purple, ...), and its trail's.
RUN_COLORS = ((40, 90, 200), (230, 110, 20), (40, 160, 60), (150, 60, 190), (200, 40, 50), (120, 90, 60))
_TRAIL_COLORS = ((255, 140, 0), (120, 60, 200), (200, 60, 140), (60, 170, 170), (230, 190, 30), (90, 90, 90))
_GHOST_COLOR = (90, 110, 150)


def run_color(index: int) -> tuple[int, int, int]:
    """The colour rollout ``index`` (0: A) is drawn in."""
    return RUN_COLORS[index % len(RUN_COLORS)]


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


def ghost_envs(num_envs: int, selected: int, cap: int = MAX_GHOSTS) -> np.ndarray:
    """``[G]`` int64 envs drawn as ghosts: every env but ``selected``, or ``cap`` of them evenly
    spaced over ``0..N-1`` when there are more."""
    others = num_envs - 1
    if others <= 0 or cap <= 0:
        return np.zeros(0, np.int64)
    if others <= cap:
        envs = np.arange(num_envs, dtype=np.int64)
    else:
        envs = np.unique(np.linspace(0, num_envs - 1, cap + 1).round().astype(np.int64))
    envs = envs[envs != selected]
    return envs[:cap]


def _icosphere() -> tuple[np.ndarray, np.ndarray]:
    """A unit icosahedron: ``(vertices [12, 3] float32, faces [20, 3] uint32)``."""
    p = (1 + 5**0.5) / 2
    v = np.array([(-1, p, 0), (1, p, 0), (-1, -p, 0), (1, -p, 0), (0, -1, p), (0, 1, p), (0, -1, -p), (0, 1, -p),
                  (p, 0, -1), (p, 0, 1), (-p, 0, -1), (-p, 0, 1)], np.float32)
    f = np.array([(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
                  (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
                  (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)], np.uint32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), f


class RobotView:
    """One env of one rollout under scene node ``name`` (e.g. ``/replay/a``), in ``slot``'s colours
    (the rollout's index: 0 A, 1 B, ...); ``label`` floats above the base when given (compare mode),
    and then the robot's geometry is tinted in that colour too."""

    def __init__(self, server: viser.ViserServer, name: str, *, slot: int = 0, edges: np.ndarray | None,
                 label: str | None = None, model: RobotModel | None = None):
        self._server = server
        self._name = name
        self._color = run_color(slot)
        self._trail_color = _TRAIL_COLORS[slot % len(_TRAIL_COLORS)]
        self._edges = edges
        self.base = server.scene.add_frame(f"{name}/base", axes_length=0.3, axes_radius=0.015)
        self.label = server.scene.add_label(f"{name}/base/label", label, position=(0.0, 0.0, 0.45)) if label else None
        self.trail: viser.LineSegmentsHandle | None = None
        self.bones: viser.LineSegmentsHandle | None = None
        self.link_axes: viser.BatchedAxesHandle | None = None
        self.show_trail = True
        self.trail_all_episodes = False  # the trail of every episode of the env, not the shown one's only
        self._trail_of: int | None = None  # the episode the trail shows (-1: all of them; None: to draw)
        self._data: EnvData | None = None
        self._offset = np.zeros(3, np.float32)
        self.bodies = BodiesView(server, f"{name}/bodies", model, tint=self._color if label else None) \
            if model is not None else None

    def remove(self) -> None:
        """Take this robot out of the scene."""
        for handle in (self.trail, self.bones, self.link_axes, self.label, self.base):
            if handle is not None:
                handle.remove()
        if self.bodies is not None:
            self.bodies.remove()

    def set_env(self, data: EnvData, offset: np.ndarray | None = None, frame: int | None = None) -> None:
        """Show a newly selected env, shifted by ``offset`` ``[3]``; its trail (the episode shown, or
        all of them: `set_trail_all_episodes`) is drawn now for ``frame``, else at the next `show_frame`."""
        self._data = data
        self._offset = np.zeros(3, np.float32) if offset is None else np.asarray(offset, np.float32)
        if self.bodies is not None:
            self.bodies.offset = self._offset
        if self.trail is not None:
            self.trail.remove()
            self.trail = None
        self._trail_of = None
        if frame is not None:
            self._show_trail(frame)

    def grow(self, data: EnvData) -> None:
        """The same env's trajectory over more steps (a recording in progress): the trail's
        points are replaced in place at the next `show_frame`."""
        self._data = data
        self._trail_of = None

    def set_trail_all_episodes(self, all_episodes: bool) -> None:
        """Trail every episode of the env (True) or the one shown only (the default); redrawn at the next frame."""
        self.trail_all_episodes = bool(all_episodes)
        self._trail_of = None

    def _show_trail(self, t: int) -> None:
        """The trail for frame ``t``: the base path of its episode (or of every episode, broken at
        their boundaries so resets draw no jumps); redrawn only when that changes."""
        data = self._data
        assert data is not None
        episode = -1 if self.trail_all_episodes else int(data.episode_of[t])
        if episode == self._trail_of and self.trail is not None:
            return
        self._trail_of = episode
        seg = self._trail_segments(data, None if episode < 0 else episode)
        if self.trail is None:
            self.trail = self._server.scene.add_line_segments(
                f"{self._name}/trail", seg, self._trail_color, thickness=2.0,
                thickness_units="screen", visible=self.show_trail,
            )
            return
        with self._server.atomic():  # per-point colours and points change size together
            self.trail.colors = np.broadcast_to(np.asarray(self._trail_color, np.uint8), seg.shape).copy()
            self.trail.points = seg

    def _trail_segments(self, data: EnvData, episode: int | None = None) -> np.ndarray:
        """``[S, 2, 3]`` float32 segments of the base path of ``episode`` (None: every episode)."""
        pos = data.base_pos + self._offset
        seg = np.stack([pos[:-1], pos[1:]], axis=1)  # [T-1, 2, 3]
        keep = np.ones(len(seg), dtype=bool)
        keep[data.episodes[:-1, 1] - 1] = False  # no segment from an episode's end to the next start
        if episode is not None:
            start, stop = (int(x) for x in data.episodes[episode])
            keep[:start] = False
            keep[max(stop - 1, 0):] = False  # segment i joins steps i and i + 1
        keep &= np.all(np.isfinite(seg), axis=(1, 2))
        seg = seg[keep]
        if len(seg) == 0:
            seg = np.zeros((1, 2, 3), np.float32)
        return seg.astype(np.float32)

    def set_trail_visible(self, visible: bool) -> None:
        self.show_trail = visible
        if self.trail is not None:
            self.trail.visible = visible

    def show_frame(self, t: int) -> None:
        """Move the base and links to frame ``t``; a missing (NaN) pose hides them."""
        data = self._data
        assert data is not None, "set_env first"
        self._show_trail(t)
        pos = data.base_pos[t] + self._offset
        ok = bool(np.all(np.isfinite(pos)) and np.all(np.isfinite(data.base_quat[t])))
        self.base.visible = ok
        if ok:
            self.base.position = pos
            self.base.wxyz = data.base_quat[t]
        if self.bodies is not None and data.link_pos is not None and data.link_quat is not None:
            self.bodies.show(data.link_pos[t], data.link_quat[t])
        elif data.link_pos is not None and self._edges is not None:
            quat = data.link_quat[t] if data.link_quat is not None else None
            self._draw_links(np.asarray(data.link_pos[t], np.float32) + self._offset, quat)

    def _draw_links(self, pos: np.ndarray, quat: np.ndarray | None) -> None:
        ok = bool(np.all(np.isfinite(pos)))
        assert self._edges is not None
        if len(self._edges):
            seg = np.stack([pos[self._edges[:, 0]], pos[self._edges[:, 1]]], axis=1) if ok else None
            if self.bones is None and seg is not None:
                self.bones = self._server.scene.add_line_segments(
                    f"{self._name}/links/bones", seg, self._color, thickness=0.03, thickness_units="world")
            elif self.bones is not None:
                self.bones.visible = ok
                if seg is not None:
                    self.bones.points = seg
        if quat is not None:
            wxyz = np.asarray(quat, dtype=np.float32)
            ok = ok and bool(np.all(np.isfinite(wxyz)))
            if self.link_axes is None and ok:
                self.link_axes = self._server.scene.add_batched_axes(
                    f"{self._name}/links/frames", wxyz, pos, axes_length=0.06, axes_radius=0.006)
            elif self.link_axes is not None:
                self.link_axes.visible = ok
                if ok:
                    self.link_axes.batched_positions = pos
                    self.link_axes.batched_wxyzs = wxyz


class GhostView:
    """Other envs' bases at the shown frame: small translucent spheres, one batched mesh."""

    def __init__(self, server: viser.ViserServer, rollout: ReadableRollout, *, visible: bool, model: RobotModel | None = None,
                 robots: bool = False):
        self._server = server
        self._rollout = rollout
        self.visible = visible
        self.envs = np.zeros(0, np.int64)
        self.handle: viser.BatchedMeshHandle | None = None
        self._missing: np.ndarray | None = None
        has_poses = "link_pos" in rollout and "link_quat" in rollout
        self.robots = GhostBodies(server, "/replay/ghost_robots", rollout, model) \
            if model is not None and has_poses else None
        if self.robots is not None:
            self.robots.visible = visible
        self.as_robots = bool(robots and self.robots is not None)
        self._selected = 0

    def set_selected(self, env: int) -> None:
        """Draw every other env (up to `MAX_GHOSTS`; `MAX_GHOST_ROBOTS` as robots): the selected one is the robot."""
        self._selected = env
        if self.robots is not None:
            self.robots.set_envs(ghost_envs(self._rollout.N, env, MAX_GHOST_ROBOTS) if self.as_robots else [], selected=env)
        envs = ghost_envs(self._rollout.N, env)
        if np.array_equal(envs, self.envs):
            return
        self.envs = envs
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    def set_robots(self, robots: bool, t: int) -> None:
        """Ghosts as whole translucent robots (when the model is there) or as spheres at their bases."""
        self.as_robots = bool(robots and self.robots is not None)
        self.set_selected(self._selected)
        if self.handle is not None:
            self.handle.visible = self.visible and not self.as_robots
        self.show_frame(t)

    def set_visible(self, visible: bool, t: int) -> None:
        self.visible = visible
        if self.handle is not None:
            self.handle.visible = visible and not self.as_robots
        if self.robots is not None:
            self.robots.set_visible(visible, t)
        if visible:
            self.show_frame(t)

    def positions(self, t: int) -> np.ndarray:
        """``[G, 3]`` float32 ghost positions at frame ``t`` (one row of ``base_pos`` read)."""
        row = np.asarray(self._rollout.read("base_pos", (t, t + 1))[0], dtype=np.float32)  # [N, 3], pread
        return row[self.envs]

    def show_frame(self, t: int) -> None:
        if self.as_robots:
            self.robots.show_frame(t)
            return
        if not self.visible or len(self.envs) == 0:
            return
        pts = self.positions(t)
        missing = ~np.all(np.isfinite(pts), axis=1)
        pts = np.where(missing[:, None], 0.0, pts).astype(np.float32)
        if self.handle is None:
            verts, faces = _icosphere()
            self.handle = self._server.scene.add_batched_meshes_simple(
                "/replay/ghosts", verts * GHOST_RADIUS, faces,
                batched_wxyzs=np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (len(pts), 1)),
                batched_positions=pts, batched_scales=(~missing).astype(np.float32),
                batched_colors=_GHOST_COLOR, opacity=GHOST_OPACITY, cast_shadow=False, receive_shadow=False,
                flat_shading=True,
            )
            self._missing = missing
            return
        self.handle.batched_positions = pts
        if self._missing is None or not np.array_equal(missing, self._missing):
            self.handle.batched_scales = (~missing).astype(np.float32)  # a missing pose: scale 0, not drawn
            self._missing = missing


class ReplayScene:
    """Scene nodes under ``/replay``: ground, robot A (and B in compare mode), ghosts of A's envs."""

    def __init__(self, server: viser.ViserServer, rollout: ReadableRollout, *, other: ReadableRollout | None = None, ghosts: bool | None = None,
                 labels: tuple[str, str] = ("A", "B"), models: tuple[RobotModel | None, RobotModel | None] = (None, None),
                 ghost_robots: bool = False, slots: tuple[int, int] = (0, 1)):
        """``models``: the robots' geometry for A and B (`ReplayState`'s, stored or from a URDF),
        None for the skeleton. ``ghost_robots``: draw ghosts as whole robots when A has a model.
        ``slots``: the two rollouts' indices (their colours)."""
        self._server = server
        scene = server.scene
        scene.set_up_direction("+z")
        self.grid = scene.add_grid("/replay/ground", width=40.0, height=40.0, cell_size=0.5, section_size=2.0,
                                   infinite_grid=True, fade_distance=60.0)
        self.robots: list[RobotView] = []
        self.trail_all_episodes = False
        self._add_robots(rollout, other, labels, models, slots)
        self.terrain = draw_terrain(server, "/replay/terrain", models[0]) if models[0] is not None else []
        self.ghosts = GhostView(server, rollout, visible=(rollout.N > 1) if ghosts is None else ghosts,
                                model=models[0], robots=ghost_robots)

    def _add_robots(self, rollout: ReadableRollout, other: ReadableRollout | None, labels: tuple[str, str],
                    models: tuple[RobotModel | None, RobotModel | None], slots: tuple[int, int]) -> None:
        compare = other is not None
        self.robots = [RobotView(self._server, "/replay/a", slot=slots[0], edges=_edges(rollout),
                                 label=labels[0] if compare else None, model=models[0])]
        if compare:
            self.robots.append(RobotView(self._server, "/replay/b", slot=slots[1], edges=_edges(other),
                                         label=labels[1], model=models[1]))
        for robot in self.robots:
            robot.trail_all_episodes = self.trail_all_episodes

    def set_pair(self, rollout: ReadableRollout, other: ReadableRollout, labels: tuple[str, str],
                 models: tuple[RobotModel | None, RobotModel | None], slots: tuple[int, int]) -> None:
        """Compare mode: draw ``rollout`` and ``other`` (indices ``slots``) as the two robots; the
        ghosts become ``rollout``'s envs. Call `set_env` next."""
        for robot in self.robots:
            robot.remove()
        self._add_robots(rollout, other, labels, models, slots)
        old = self.ghosts
        old.set_visible(False, 0)
        if old.handle is not None:
            old.handle.remove()
        if old.robots is not None:
            old.robots.remove()
        self.ghosts = GhostView(self._server, rollout, visible=old.visible, model=models[0], robots=old.as_robots)

    def part_reach(self) -> float:
        """How far the drawn robots' geometry extends past their link frames (0 for skeletons)."""
        return max((part_reach(r.bodies.parts) for r in self.robots if r.bodies is not None), default=0.0)

    @property
    def show_ghosts(self) -> bool:
        return self.ghosts.visible

    def set_env(self, datas: list[EnvData], offsets: list[np.ndarray], frame: int | None = None) -> None:
        """Show the newly selected env: ``datas[i]`` drawn by robot i, shifted by ``offsets[i]``
        (trails drawn for ``frame`` when given)."""
        for robot, data, offset in zip(self.robots, datas, offsets):
            robot.set_env(data, offset, frame)
        self.ghosts.set_selected(datas[0].env)

    def set_trail_visible(self, visible: bool) -> None:
        for robot in self.robots:
            robot.set_trail_visible(visible)

    def set_trail_all_episodes(self, all_episodes: bool) -> None:
        """Trails of every episode of the env, or of the episode shown only (the default)."""
        self.trail_all_episodes = bool(all_episodes)
        for robot in self.robots:
            robot.set_trail_all_episodes(all_episodes)

    def set_ghosts_visible(self, visible: bool, frame: int) -> None:
        self.ghosts.set_visible(visible, frame)

    def show_frame(self, t: int) -> None:
        """Move everything to frame ``t``."""
        for robot in self.robots:
            robot.show_frame(t)
        self.ghosts.show_frame(t)


def _edges(rollout: ReadableRollout) -> np.ndarray | None:
    if "link_pos" not in rollout:
        return None
    return skeleton_edges(rollout["link_pos"].shape[2], rollout.meta.get("link_parents"))
