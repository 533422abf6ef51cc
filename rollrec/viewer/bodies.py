"""The robot's real geometry in the replay viewer (viser handles), from `Rollout.model`.

A model's visible geoms are baked per (link, colour) into parts (`rollrec.model.shapes.link_parts`),
each part's vertices in its link's frame, so a part's pose *is* its link's recorded pose: no math
per frame, only pose updates.

- `BodiesView`: the selected env's robot. One mesh per part, sent once; each frame moves them
  (one position and one orientation per part).
- `GhostBodies`: other envs as whole translucent robots. One batched mesh per part with one
  instance per ghost env (meshes decimated so hundreds of robots stay light); each frame sends
  ``[G, 3]`` positions and ``[G, 4]`` orientations per part, read from one row of
  ``link_pos``/``link_quat``.
- `draw_terrain`: static geoms (height fields, boxes, ...) once. Planes are left to the grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import viser

from rollrec.io.protocol import ReadableRollout
from rollrec.model.robot import PLANE, RobotModel
from rollrec.model.shapes import Part, fit_budget, link_parts

#: Faces per mesh and height field for ghosts (instanced many times) and for the terrain.
GHOST_MESH_FACES = 1500
TERRAIN_FACES = 200_000
#: Most triangles of the selected env's robot, and of one ghost robot (`rollrec.model.shapes.fit_budget`:
#: coarser primitives, then decimated meshes; a model that cannot fit is not drawn, see `check_drawable`).
MAX_FACES = 2_000_000
GHOST_MAX_FACES = 50_000


def check_drawable(model: RobotModel) -> None:
    """Raise `rollrec.model.shapes.ModelTooLarge` (one line) when the viewer cannot draw ``model``
    within `MAX_FACES` triangles (or it has more visible geoms than any renderer draws)."""
    fit_budget(model, max_faces=MAX_FACES, detail=24, planes=False)
GHOST_OPACITY = 0.3
#: A ghost robot whose root link is closer to the selected robot's root than this many times the
#: selected robot's reach (its links' farthest part from its root) is not drawn: it would cover it.
GHOST_CLEARANCE = 1.0


def _moving(parts: list[Part]) -> list[Part]:
    return [p for p in parts if p.link >= 0]


#: How much of a compare-mode tint a robot part's colour takes (0: the model's colours, 1: flat tint).
TINT_STRENGTH = 0.6


def tinted(rgb: tuple[int, int, int], tint: tuple[int, int, int] | None, strength: float = TINT_STRENGTH) -> tuple[int, int, int]:
    """``rgb`` blended towards ``tint`` (compare mode: A and B in their own colours, the model's
    shading kept); ``rgb`` itself without a tint."""
    if tint is None:
        return rgb
    return tuple(round((1 - strength) * c + strength * t) for c, t in zip(rgb, tint))  # type: ignore[return-value]


def part_reach(parts: Sequence[Part]) -> float:
    """How far (metres) any part's geometry extends from its link's frame: what a robot's link
    positions leave out of its size."""
    return max((float(np.linalg.norm(p.vertices, axis=1).max()) for p in parts if len(p.vertices)), default=0.0)


class BodiesView:
    """The robot of one env under scene node ``name`` (e.g. ``/replay/a/bodies``); ``tint`` blends
    every part's colour towards one colour (compare mode: A and B told apart)."""

    def __init__(self, server: viser.ViserServer, name: str, model: RobotModel, *, detail: int = 24,
                 offset: np.ndarray | None = None, tint: tuple[int, int, int] | None = None):
        self._server = server
        detail, mesh_faces = fit_budget(model, max_faces=MAX_FACES, detail=detail, planes=False)
        self.parts = _moving(link_parts(model, detail=detail, max_mesh_faces=mesh_faces, planes=False))
        self.offset = np.zeros(3, np.float32) if offset is None else np.asarray(offset, np.float32)
        self.tint = tint
        self.handles = [
            server.scene.add_mesh_simple(
                f"{name}/part_{i}", p.vertices, p.faces, color=tinted(p.rgb255, tint),
                opacity=None if p.rgba[3] >= 1 else float(p.rgba[3]), flat_shading=False, visible=False,
            )
            for i, p in enumerate(self.parts)
        ]
        self._links = np.array([p.link for p in self.parts], np.int64)

    def show(self, link_pos: np.ndarray, link_quat: np.ndarray) -> None:
        """Pose every part: ``link_pos [L, 3]``, ``link_quat [L, 4]`` wxyz; links with a
        missing (NaN) pose hide their parts."""
        if not self.handles:
            return
        pos = np.asarray(link_pos, np.float32)[self._links] + self.offset
        quat = np.asarray(link_quat, np.float32)[self._links]
        ok = np.isfinite(pos).all(1) & np.isfinite(quat).all(1)
        for h, p, q, good in zip(self.handles, pos, quat, ok):
            if good:
                h.position = p
                h.wxyz = q
            if h.visible != bool(good):
                h.visible = bool(good)

    def set_visible(self, visible: bool) -> None:
        for h in self.handles:
            h.visible = visible

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


class GhostBodies:
    """Envs ``envs`` of ``rollout`` as translucent whole robots at the shown frame. With a
    ``selected`` env (`set_envs`), the ghosts that would cover its robot at that frame (root
    within `GHOST_CLEARANCE` reaches of its root, e.g. every env at the origin at a reset) are
    not drawn, so the selected robot always stands clear and opaque among them."""

    def __init__(self, server: viser.ViserServer, name: str, rollout: ReadableRollout, model: RobotModel, *,
                 color: tuple[int, int, int] | None = None, opacity: float = GHOST_OPACITY):
        self._server = server
        self._name = name
        self._rollout = rollout
        detail, mesh_faces = fit_budget(model, max_faces=GHOST_MAX_FACES, detail=10, max_mesh_faces=GHOST_MESH_FACES,
                                        planes=False)
        self.parts = _moving(link_parts(model, detail=detail, max_mesh_faces=mesh_faces, planes=False))
        self._links = np.array([p.link for p in self.parts], np.int64)
        self.color = color
        self.opacity = opacity
        self.envs = np.zeros(0, np.int64)
        self.selected: int | None = None
        self._part_reach = part_reach(self.parts)
        self.handles: list[viser.BatchedMeshHandle] = []
        self._hidden: np.ndarray | None = None
        self.visible = True

    def set_envs(self, envs: Sequence[int], selected: int | None = None) -> None:
        """Draw envs ``envs`` (rebuilt at the next frame when they change), keeping clear of env
        ``selected``'s robot (None: draw them all)."""
        self.selected = None if selected is None else int(selected)
        envs = np.asarray(envs, np.int64)
        if np.array_equal(envs, self.envs):
            return
        self.envs = envs
        self._clear()

    def _clear(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        self._hidden = None

    def poses(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """``([P, G, 3], [P, G, 4])`` float32 poses of every part of every ghost at frame ``t``
        (one row of ``link_pos`` and ``link_quat`` read, with pread: a file truncated meanwhile
        raises `RolloutFormatError` rather than killing the process)."""
        return self._poses(np.asarray(self._row("link_pos", t), np.float32), t)

    def _poses(self, row_pos: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        pos = row_pos[self.envs][:, self._links]  # [G, P, 3]
        quat = np.asarray(self._row("link_quat", t), np.float32)[self.envs][:, self._links]
        return pos.transpose(1, 0, 2), quat.transpose(1, 0, 2)

    def covering(self, row_pos: np.ndarray) -> np.ndarray:
        """``[G]`` bool: the ghosts that would cover the selected env's robot, given every env's
        link positions ``row_pos`` ``[N, L, 3]`` at one frame (none without a selected env)."""
        if self.selected is None or not len(self.envs) or row_pos.shape[1] == 0:
            return np.zeros(len(self.envs), bool)
        links = row_pos[self.selected]  # [L, 3]
        root = links[0]
        if not np.isfinite(root).all():
            return np.zeros(len(self.envs), bool)
        spread = np.linalg.norm(links - root, axis=-1)
        reach = float(np.nanmax(spread, initial=0.0)) + self._part_reach
        distance = np.linalg.norm(row_pos[self.envs, 0] - root, axis=-1)  # NaN (a lost root): drawn as recorded
        return distance < GHOST_CLEARANCE * max(reach, 1e-3)

    def _row(self, key: str, t: int) -> np.ndarray:
        return self._rollout.read(key, (t, t + 1))[0]

    def set_visible(self, visible: bool, t: int) -> None:
        self.visible = visible
        for h in self.handles:
            h.visible = visible
        if visible:
            self.show_frame(t)

    def show_frame(self, t: int) -> None:
        if not self.visible or not len(self.envs) or not self.parts:
            return
        row_pos = np.asarray(self._row("link_pos", t), np.float32)
        pos, quat = self._poses(row_pos, t)
        missing = ~(np.isfinite(pos).all(-1) & np.isfinite(quat).all(-1))  # [P, G]
        if missing.any():
            pos = np.where(missing[..., None], 0.0, pos)
            quat = np.where(missing[..., None], np.array([1.0, 0, 0, 0], np.float32), quat)
        hidden = missing | self.covering(row_pos)[None, :]  # covering ghosts keep their pose, at scale 0
        if not self.handles:
            for i, p in enumerate(self.parts):
                self.handles.append(self._server.scene.add_batched_meshes_simple(
                    f"{self._name}/part_{i}", p.vertices, p.faces, batched_wxyzs=quat[i], batched_positions=pos[i],
                    batched_scales=(~hidden[i]).astype(np.float32), batched_colors=self.color or p.rgb255,
                    opacity=self.opacity, cast_shadow=False, receive_shadow=False, lod="off",
                ))
            self._hidden = hidden
            return
        for i, h in enumerate(self.handles):
            h.batched_positions = pos[i]
            h.batched_wxyzs = quat[i]
        if self._hidden is None or not np.array_equal(hidden, self._hidden):
            for i, h in enumerate(self.handles):
                h.batched_scales = (~hidden[i]).astype(np.float32)  # a missing pose or a covering ghost: not drawn
            self._hidden = hidden

    def remove(self) -> None:
        self._clear()


def draw_terrain(server: viser.ViserServer, name: str, model: RobotModel) -> list[viser.MeshHandle]:
    """The model's static geoms but planes (height fields, boxes, ...), each (merged by colour) once."""
    detail, mesh_faces = fit_budget(model, max_faces=MAX_FACES, detail=24, max_mesh_faces=TERRAIN_FACES, planes=False)
    static = [p for p in link_parts(model, detail=detail, max_mesh_faces=mesh_faces, planes=False) if p.link < 0]
    return [server.scene.add_mesh_simple(f"{name}/static_{i}", p.vertices, p.faces, color=p.rgb255,
                                         opacity=None if p.rgba[3] >= 1 else float(p.rgba[3]))
            for i, p in enumerate(static) if p.kinds != frozenset({PLANE})]
