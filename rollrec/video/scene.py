"""One env of a recorded rollout as a picture per step: ground, trail, the robot, overlay.

`EnvScene` reads the small per-step members of one env (base pose, rewards, done) once, and the
link poses in chunks as frames advance, so memory does not grow with the number of frames.
The robot is drawn by ``style``: ``"bodies"`` (its real geometry from `Rollout.model`, shaded:
`rollrec.video.bodies`), ``"sticks"`` (the skeleton of link positions and the base frame: what
files without a model get), or ``"auto"`` (bodies when the file has a model).
"""

from __future__ import annotations

import warnings

from collections.abc import Sequence

import numpy as np

from rollrec.io.protocol import ReadableRollout
from rollrec.io.sharded import ShardedRollout
from rollrec.model.robot import RobotModel
from rollrec.video.draw import (
    BACKGROUND,
    BASE_COLOR,
    TRAIL_COLOR,
    draw_frame_axes,
    draw_ground_grid,
    draw_links,
    draw_points,
    draw_polyline,
    draw_terms_overlay,
    nice_spacing,
)
from rollrec.model.shapes import ModelTooLarge
from rollrec.video.bodies import BodiesDrawer
from rollrec.video.camera import CAMERA_PRESETS, Camera, preset_camera

STYLES = ("auto", "bodies", "sticks")

#: Seconds of past base positions drawn as the trail (within the current episode).
TRAIL_SECONDS = 2.0
_LINK_CHUNK = 512
_FOLLOW_GRID_HALF = 6.0


def link_parents_of(rollout: ReadableRollout) -> list[int] | None:
    """Skeleton edges from ``meta["link_parents"]`` when present and consistent, else None."""
    parents = rollout.meta.get("link_parents")
    if not rollout.has_links or parents is None:
        return None
    num_links = rollout["link_pos"].shape[2]
    if len(parents) != num_links:
        return None
    return [int(p) for p in parents]


class EnvScene:
    """Renders env ``env`` of ``rollout`` at steps ``[start, stop)`` from camera ``camera``.

    Fixed cameras (top/side/front) frame the env's whole trajectory over that range.
    `frame(t, size)` returns a new ``[h, w, 3]`` uint8 RGB image for ``size = (w, h)``.
    ``style``: how the robot is drawn (see the module docstring); ``bodies`` may be shared
    between the scenes of one rollout (it is read-only once built).
    """

    def __init__(
        self, rollout: ReadableRollout, env: int, camera: str = "follow", *, start: int = 0, stop: int | None = None,
        style: str = "auto", bodies: BodiesDrawer | None = None,
    ):
        if camera not in CAMERA_PRESETS:
            raise ValueError(f"unknown camera {camera!r}; choose one of {', '.join(CAMERA_PRESETS)}")
        self.bodies = bodies if bodies is not None else bodies_for(rollout, style)
        self.rollout, self.env, self.camera = rollout, int(env), camera
        self.start, self.stop = int(start), int(rollout.T if stop is None else stop)
        sl = slice(self.start, self.stop)
        self.base_pos = np.asarray(rollout["base_pos"][sl, env], np.float64)
        self.base_quat = np.asarray(rollout["base_quat"][sl, env], np.float64)
        self.rew = np.asarray(rollout["rew"][sl, env], np.float64)
        # A format-v2 file may keep no reward terms (``fields=``): the overlay then shows the total only.
        self.rew_terms = (np.asarray(rollout["rew_terms"][sl, env], np.float64) if "rew_terms" in rollout
                          else np.zeros((self.stop - self.start, 0)))
        self.term_names = [overlay_text(n) for n in rollout.reward_term_names] if "rew_terms" in rollout else []
        self.missing = missing_note(rollout, self.env)
        done = np.asarray(rollout["done"][sl, env], bool)
        # Episode start of every step: the step after the last done at or before t-1.
        idx = np.where(np.concatenate(([True], done[:-1])), np.arange(len(done)), 0)
        self.episode_start = np.maximum.accumulate(idx)
        finite = np.where(np.isfinite(self.rew_terms), np.abs(self.rew_terms), 0.0)
        self.term_scale = finite.max(axis=0) if len(finite) else np.ones(len(self.term_names))
        self.trail_steps = max(2, round(TRAIL_SECONDS / max(rollout.dt, 1e-6)))
        self.parents = link_parents_of(rollout)
        self._chunk_start, self._chunk, self._chunk_quat = -1, None, None
        ok = np.isfinite(self.base_pos).all(axis=1)
        pts = self.base_pos[ok] if ok.any() else np.zeros((1, 3))
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        self.ground_z = min(0.0, float(lo[2]))
        self.center = np.array(
            [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, self.ground_z + 0.5 * (hi[2] - self.ground_z)]
        )
        self.radius = 0.5 * float(np.linalg.norm(hi[:2] - lo[:2])) + 1.0  # + room for the body
        self.fixed_spacing = nice_spacing(2 * self.radius)
        self.follow_scale = self._robot_scale() if self.bodies is not None else 1.0
        # Where the follow camera looks: the base, holding the last known position over missing poses.
        last = np.where(ok, np.arange(len(ok)), -1)
        last = np.maximum.accumulate(last) if len(last) else last
        self.look_at = np.where((last >= 0)[:, None], self.base_pos[np.maximum(last, 0)], pts[0])

    def _robot_scale(self) -> float:
        """How far the follow camera sits, relative to its preset: a robot as large as
        across (an Ant, 2.4 m corner to corner) keeps the preset; a Go1 is seen from nearer (0.4x at least)."""
        links = self._links(0)
        verts = self.bodies.world_vertices(*(links if links is not None else (None, None)))
        moving = verts[self.bodies.vertex_link < self.bodies.num_links]
        moving = moving[np.isfinite(moving).all(1)]
        if not len(moving):
            return 1.0
        extent = float(np.linalg.norm(moving.max(0) - moving.min(0)))
        return float(np.clip(extent / 2.4, 0.4, 2.5))

    def __len__(self) -> int:
        return self.stop - self.start

    def _links(self, i: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``(link_pos [L, 3], link_quat [L, 4] or None)`` at frame ``i``, or None without links."""
        if not self.rollout.has_links:
            return None
        c0 = (i // _LINK_CHUNK) * _LINK_CHUNK
        if c0 != self._chunk_start:
            a = self.start + c0
            b = min(self.stop, a + _LINK_CHUNK)
            self._chunk = np.asarray(self.rollout["link_pos"][a:b, self.env], np.float64)
            if "link_quat" in self.rollout:
                self._chunk_quat = np.asarray(self.rollout["link_quat"][a:b, self.env], np.float64)
            self._chunk_start = c0
        return self._chunk[i - c0], None if self._chunk_quat is None else self._chunk_quat[i - c0]

    def camera_at(self, i: int, size: tuple[int, int]) -> Camera:
        """The camera for frame ``i`` (0-based within the range) of an image of ``size``."""
        return preset_camera(self.camera, size, center=self.center, radius=self.radius, base=self.look_at[i],
                             follow_scale=self.follow_scale)

    def frame(
        self, t: int, size: tuple[int, int], *, overlay: bool = True, label: str | None = None
    ) -> np.ndarray:
        """The picture of rollout step ``t`` (``start <= t < stop``), ``size = (w, h)``."""
        i = t - self.start
        w, h = size
        img = np.empty((h, w, 3), np.uint8)
        img[...] = BACKGROUND
        cam = self.camera_at(i, size)
        base = self.base_pos[i]
        if self.camera == "follow":
            spacing = 0.5
            draw_ground_grid(img, cam, self.look_at[i], _FOLLOW_GRID_HALF, self.ground_z, spacing)
        else:
            draw_ground_grid(img, cam, self.center, self.radius * 1.6, self.ground_z, self.fixed_spacing)
        px = max(1, round(min(w, h) / 240))
        t0 = max(int(self.episode_start[i]), i - self.trail_steps)
        draw_polyline(img, cam, self.base_pos[t0 : i + 1], TRAIL_COLOR, px)
        links = self._links(i)
        if self.bodies is not None:
            pos, quat = links if links is not None else (None, None)
            self.bodies.draw(img, cam, pos, quat)
        else:
            if links is not None:
                draw_links(img, cam, links[0], self.parents, px + 1, px + 1)
            scale = 0.12 * (self.radius if self.camera != "follow" else 2.0)
            draw_frame_axes(img, cam, base, self.base_quat[i], max(0.15, scale), px + 1)
            draw_points(img, cam, base[None], BASE_COLOR, max(3, round(min(w, h) / 70)))
        if overlay:
            header = f"{label + '  ' if label else ''}t={(t) * self.rollout.dt:.2f}s  step {t}"
            if links is not None and not np.isfinite(links[0]).all():
                header += "  base only"  # a format-v2 file kept no link poses for this env at this step
            draw_terms_overlay(
                img, header, self.term_names, self.rew_terms[i], self.rew[i], self.term_scale
            )
        return img


#: Longest reward-term name the overlay draws (a longer one is cut, so a name cannot cover the frame).
OVERLAY_NAME_CHARS = 24


def overlay_text(name: str) -> str:
    """A name from the file as the overlay draws it: printable ASCII (OpenCV's fonts have no other
    glyphs; anything else, control characters included, shows as ``?``), at most
    `OVERLAY_NAME_CHARS` characters."""
    text = "".join(c if " " <= c <= "~" else "?" for c in str(name))
    return text if len(text) <= OVERLAY_NAME_CHARS else text[: OVERLAY_NAME_CHARS - 3] + "..."


def missing_note(rollout: ReadableRollout, env: int) -> str | None:
    """What a format-v2 file lacks to draw env ``env`` whole (None when nothing is): e.g. ``env 4
    is not a detail env of run.npz: its link poses were not kept (drawn: base pose, trail, rewards)``."""
    layout = rollout.layout
    if not (layout.env_ids or layout.window_members) or not rollout.has_links:
        return None
    if layout.kind("link_pos") == "detail":
        if rollout.has_detail(env):
            return None
        return (f"env {env} is not a detail env of {rollout.path.name}: its link poses were not kept "
                f"(drawn: base pose, trail, rewards; detail envs: {_ids(rollout.detail_envs)})")
    if layout.kind("link_pos") == "window":
        windows = rollout.index.windows_by_env().get(env, ())
        if not windows:
            return (f"env {env} has no captured episode in {rollout.path.name}: its link poses were not kept "
                    f"(drawn: base pose, trail, rewards; envs with captured episodes: {_ids(rollout.detail_envs)})")
        spans = ", ".join(f"{a}-{a + n - 1}" for a, n, _ in windows[:4]) + (" ..." if len(windows) > 4 else "")
        return (f"env {env}: link poses kept in its captured episodes' windows only (steps {spans}); "
                "the other steps show the base pose")
    return None


def _ids(envs: np.ndarray) -> str:
    return (", ".join(map(str, envs[:8])) + (", ..." if len(envs) > 8 else "")) if len(envs) else "none"


def bodies_for(rollout: ReadableRollout, style: str, model: RobotModel | None = None) -> BodiesDrawer | None:
    """The drawer of the rollout's bodies for ``style``, or None for the stick skeleton.

    ``model``: draw this model (e.g. `rollrec.model_from_urdf`, matched to the rollout's links
    by name) instead of the one stored in the file. Raises ValueError for an unknown style, or
    ``"bodies"`` asked of a file without a model or of one too large to draw
    (`rollrec.model.shapes.ModelTooLarge`); ``"auto"`` then draws sticks and warns
    (`ModelNotDrawnWarning`).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if style == "sticks":
        return None
    model = rollout.model if model is None else model.bind(rollout.link_names or []).check()
    if model is None:
        if style == "bodies":
            raise ValueError(f"{rollout.path}: the file has no robot model to draw bodies from; use the sticks style")
        return None
    try:
        return BodiesDrawer(model)
    except ModelTooLarge as exc:
        message = f"{rollout.path.name}: the robot model is not drawn ({exc})"
        if style == "bodies":
            raise ModelTooLarge(f"{message}; use the sticks style") from None
        warnings.warn(f"{message}: its links are drawn as sticks", ModelNotDrawnWarning, stacklevel=2)
        return None


class ModelNotDrawnWarning(UserWarning):
    """The video draws the links as sticks: the robot model is too large to draw (`bodies_for`)."""


def scenes_for(
    rollout: ReadableRollout, envs: Sequence[int], camera: str, start: int = 0, stop: int | None = None, style: str = "auto",
    model: RobotModel | None = None,
) -> list[EnvScene]:
    """One `EnvScene` per env (negative envs count from the end, as in `Rollout.env`), sharing
    one `BodiesDrawer`; raises ValueError naming an env out of range (or, in a sharded rollout,
    one whose shard is missing)."""
    for e in envs:
        if not -rollout.N <= e < rollout.N:
            raise ValueError(
                f"env {e} out of range: {rollout.path} has {rollout.N} envs (0..{rollout.N - 1}, "
                f"or -{rollout.N}..-1 from the end)"
            )
        if isinstance(rollout, ShardedRollout):
            rollout.check_present(e % rollout.N)  # MissingEnvsError (a ValueError) rather than a video of NaNs
    bodies = bodies_for(rollout, style, model)
    return [EnvScene(rollout, e % rollout.N, camera, start=start, stop=stop,
                     style="sticks" if bodies is None else style, bodies=bodies) for e in envs]
