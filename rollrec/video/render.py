"""Render a recorded rollout to a video, headless, on the CPU (no simulator, no GPU)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from rollrec.io.protocol import ReadableRollout
from rollrec.io.opening import load
from rollrec.model.robot import RobotModel
from rollrec.media.frames import grid_shape
from rollrec.video.cameras import BesideScene, CameraScene
from rollrec.video.scene import EnvScene, scenes_for
from rollrec.media.writer import VideoWriter, env_video_path

__all__ = ["default_fps", "render_frames", "render_rollout"]


#: Most frames per second a video is written at (ffmpeg's containers take no sensible rate past it).
MAX_FPS = 1000.0


def default_fps(dt: float) -> float:
    """Real-time playback: ``1 / dt`` frames per second (at least 1), rounded to a whole number when
    within 1e-3 of one, else to 3 decimals (``dt`` 0.08, e.g. a file kept with ``every=4`` at
    0.02 s, plays at 12.5 fps, not 12)."""
    if not dt > 0:
        return 30.0
    fps = 1.0 / dt
    whole = round(fps)
    return float(max(1, whole if abs(fps - whole) < 1e-3 else round(fps, 3)))


def _tile_size(size: tuple[int, int], n: int, cols: int | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((tile_w, tile_h), (rows, cols))``: even-sized tiles whose grid fits in ``size``."""
    rows, cols = grid_shape(n, cols)
    tw, th = (size[0] // cols) // 2 * 2, (size[1] // rows) // 2 * 2
    if tw < 16 or th < 16:
        raise ValueError(f"size {size[0]}x{size[1]} is too small for a {rows}x{cols} grid of envs")
    return (tw, th), (rows, cols)


def render_frames(
    scenes: Sequence[EnvScene], size: tuple[int, int], cols: int | None = None, overlay: bool = True
) -> Iterator[np.ndarray]:
    """Yield one ``[H, W, 3]`` uint8 frame per step: the scene, or a grid of scenes (env labels in
    each tile's overlay). All scenes must cover the same step range."""
    if len(scenes) == 1:
        scene = scenes[0]
        for t in range(scene.start, scene.stop):
            yield scene.frame(t, size, overlay=overlay, label=f"env {scene.env}")
        return
    (tw, th), (rows, cols) = _tile_size(size, len(scenes), cols)
    first = scenes[0]
    for t in range(first.start, first.stop):
        grid = np.zeros((rows * th, cols * tw, 3), np.uint8)
        for j, scene in enumerate(scenes):
            r, c = divmod(j, cols)
            grid[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = scene.frame(
                t, (tw, th), overlay=overlay, label=f"env {scene.env}"
            )
        yield grid


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="frame", desc=desc, leave=False, dynamic_ncols=True)


def render_rollout(
    rollout: ReadableRollout | str | os.PathLike,
    path: str | os.PathLike,
    *,
    env: int = 0,
    envs: Sequence[int] | None = None,
    camera: str = "follow",
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    start: int = 0,
    stop: int | None = None,
    per_env: bool = False,
    cols: int | None = None,
    overlay: bool = True,
    progress: bool = True,
    style: str = "auto",
    model: RobotModel | None = None,
    image: str | None = None,
    beside: bool = False,
    **writer_options,
) -> Path | list[Path]:
    """Render env ``env`` (or envs ``envs``) of a recorded rollout to a video at ``path``.

    ``image``: a recorded camera's name (``Rollout.cameras``): the video shows that camera's frames
    (`rollrec.video.cameras.CameraScene`) instead of the 3D render, or, with ``beside=True``, to the
    right of the render from ``camera``. ``size`` None: 640x480 for the render, the camera's aspect
    at 480 pixels high for a camera alone, both side by side with ``beside``.

    Draws the ground grid, the base trail and the robot from ``camera`` (top, side, front or
    follow), with an overlay of the reward terms and their total at each step. ``style``:
    ``"bodies"`` draws the robot's real geometry (`Rollout.model`), ``"sticks"`` the links as a
    skeleton (``meta["link_parents"]``) with the base frame, ``"auto"`` (default) bodies when the
    file has a model; ``model`` draws another one, e.g. ``rollrec.model_from_urdf(...)``, posed by
    link name). ``rollout`` is a `Rollout` or a file path.

    ``size`` is ``(width, height)`` of the video; several ``envs`` are tiled in a near-square
    grid that fits in it (``cols`` to choose), labelled ``"env k"``, or with ``per_env=True``
    written one file per env (`rollrec.media.writer.env_video_path`: ``out_env3.mp4``), in which
    case a list of paths is returned and each file has ``size``. ``fps`` defaults to real time
    (`default_fps` of the rollout's ``dt``). Steps ``[start, stop)`` are rendered (default all).
    Streams: memory does not grow with the number of frames.

    Raises ValueError for an env out of range, an unknown camera or an empty step range, and
    OSError for an unwritable path, before any file is created.
    """
    if isinstance(rollout, (str, bytes, os.PathLike)):
        with load(rollout) as opened:
            return render_rollout(
                opened, path, env=env, envs=envs, camera=camera, size=size, fps=fps, start=start, stop=stop,
                per_env=per_env, cols=cols, overlay=overlay, progress=progress, style=style, model=model,
                image=image, beside=beside, **writer_options,
            )  # fmt: skip
    if beside and image is None:
        raise ValueError("beside=True puts a recorded camera beside the render: name it with image=")
    if image is not None and image not in rollout.cameras:
        have = ", ".join(rollout.cameras) or "none"
        raise ValueError(f"{rollout.path} has no recorded camera {image!r} (cameras: {have})")
    size = _default_size(rollout, image, beside) if size is None else size
    size = (int(size[0]), int(size[1]))
    if min(size) < 16:
        raise ValueError(f"size {size[0]}x{size[1]} is too small (at least 16x16)")
    stop = rollout.T if stop is None else int(stop)
    if not 0 <= start < stop <= rollout.T:
        raise ValueError(f"step range [{start}, {stop}) is empty or outside 0..{rollout.T}")
    selected = [int(env)] if envs is None else [int(e) for e in envs]
    if not selected:
        raise ValueError("no envs selected")
    if fps is None and rollout.dt > 0 and default_fps(rollout.dt) > MAX_FPS:
        raise ValueError(f"{rollout.path.name}: its dt ({rollout.dt:g} s) plays at {1 / rollout.dt:.3g} frames per "
                         f"second, more than {MAX_FPS:g}; pass fps= (CLI: --fps)")
    fps = default_fps(rollout.dt) if fps is None else float(fps)
    if not 0 < fps <= MAX_FPS:
        raise ValueError(f"fps must be in (0, {MAX_FPS:g}], got {fps:g}")
    scenes: list = scenes_for(rollout, selected, camera, start, stop, style, model) if image is None or beside else [
        _checked_env(rollout, e) for e in selected]
    if image is not None:
        cams = [CameraScene(rollout, s if isinstance(s, int) else s.env, image, start=start, stop=stop) for s in scenes]
        scenes = cams if not beside else [BesideScene(r, c) for r, c in zip(scenes, cams)]
    if per_env:
        return [
            _write(
                render_frames([s], size, overlay=overlay),
                env_video_path(path, s.env),
                fps,
                len(s),
                progress,
                writer_options,
            )
            for s in scenes
        ]
    return _write(
        render_frames(scenes, size, cols, overlay), Path(path), fps, stop - start, progress, writer_options
    )


def _default_size(rollout: ReadableRollout, image: str | None, beside: bool) -> tuple[int, int]:
    if image is None:
        return (640, 480)
    h, w = rollout.cameras[image].shape[:2]
    cam_w = max(16, round(480 * w / h) // 2 * 2)
    return (640 + cam_w, 480) if beside else (cam_w, 480)


def _checked_env(rollout: ReadableRollout, env: int) -> int:
    """``env`` in ``0..N-1`` (negative counts from the end); ValueError when out of range."""
    if not -rollout.N <= env < rollout.N:
        raise ValueError(f"env {env} out of range: {rollout.path} has {rollout.N} envs (0..{rollout.N - 1}, "
                         f"or -{rollout.N}..-1 from the end)")
    return env % rollout.N


def _write(
    frames: Iterator[np.ndarray], path: Path, fps: float, total: int, progress: bool, options: dict
) -> Path:
    with VideoWriter(path, fps, **options) as writer, _progress(total, progress, Path(path).name) as bar:
        for frame in frames:
            writer.write(frame)
            bar.update(1)
    return writer.path
