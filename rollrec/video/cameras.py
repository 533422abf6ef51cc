"""Recorded cameras as video scenes: ``rollrec video run.npz --camera front`` (alone or beside the 3D render).

`CameraScene` is env ``env``'s frames of a recorded camera (`Rollout.images`, decoded in order as
the video advances), drawn as RGB (depth through the Turbo colour map with one scale for the whole
video, labels through a palette: `rollrec.media.colormap`), scaled to fit the frame with its
aspect kept, with a one-line overlay (env, camera, time, step). A step without a frame (a camera
kept in captured windows only) is a dark frame that says so. `BesideScene` puts a recorded camera
to the right of the 3D render (`rollrec.video.scene.EnvScene`) of the same env and step. Both
have the interface `rollrec.video.render.render_frames` takes (``frame(t, size, overlay, label)``,
``env``, ``start``, ``stop``), so grids (``--envs``) and ``--per-env`` work as for the render.
"""

from __future__ import annotations

import cv2
import numpy as np

from rollrec.io.protocol import ReadableRollout
from rollrec.media.colormap import DepthRange, kind_of, picture
from rollrec.video.draw import BACKGROUND, TEXT_COLOR, text_scale
from rollrec.video.scene import EnvScene

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE_SAMPLES = 9


class CameraScene:
    """Env ``env``'s frames of recorded camera ``camera`` at steps ``[start, stop)``; see the module docstring.

    ValueError when the env has no frame of the camera at all (naming the envs that have)."""

    def __init__(self, rollout: ReadableRollout, env: int, camera: str, *, start: int = 0, stop: int | None = None):
        self.rollout, self.env, self.camera = rollout, int(env), camera
        self.start, self.stop = int(start), int(rollout.T if stop is None else stop)
        self.frames = rollout.images(camera, self.env)
        if not len(self.frames):
            raise ValueError(str(_empty_reason(self.frames)))
        spec = rollout.cameras[camera]
        self.kind = kind_of(camera, spec.shape, np.dtype(spec.dtype))
        self.aspect = spec.shape[1] / spec.shape[0]
        self.scale: DepthRange | None = None
        if self.kind == "depth":
            inside = np.flatnonzero((self.frames.steps >= self.start) & (self.frames.steps < self.stop))
            picks = inside[np.linspace(0, len(inside) - 1, min(_SCALE_SAMPLES, len(inside))).astype(int)] if len(inside) else []
            self.scale = DepthRange.of(self.frames[int(i)] for i in picks)

    def __len__(self) -> int:
        return self.stop - self.start

    def frame(self, t: int, size: tuple[int, int], *, overlay: bool = True, label: str | None = None) -> np.ndarray:
        """The camera's picture of step ``t`` in a frame of ``size = (w, h)`` (a new RGB array)."""
        w, h = size
        img = np.empty((h, w, 3), np.uint8)
        img[...] = BACKGROUND
        i = self.frames.position(t)
        if i is None:
            img[...] = 24
            _text(img, "no camera frame at this step", (8, h // 2))
        else:
            pic = picture(self.frames[i], self.kind, self.scale)
            fw, fh = fit(pic.shape[1], pic.shape[0], w, h)
            upscale = fw > pic.shape[1]
            method = cv2.INTER_NEAREST if self.kind == "labels" else cv2.INTER_LINEAR if upscale else cv2.INTER_AREA
            x, y = (w - fw) // 2, (h - fh) // 2
            img[y : y + fh, x : x + fw] = cv2.resize(pic, (fw, fh), interpolation=method)
        if overlay:
            head = f"{label + '  ' if label else ''}{self.camera}  t={t * self.rollout.dt:.2f}s  step {t}"
            if self.scale is not None:
                head += f"  depth {self.scale.near:.4g} (blue) - {self.scale.far:.4g} (red)"
            _text(img, head, (6, 6 + round(18 * text_scale(h) / 0.5)), background=True)
        return img


class BesideScene:
    """The 3D render of an env (``render``) with its recorded camera (``camera``) on the right."""

    def __init__(self, render: EnvScene, camera: CameraScene):
        self.render, self.camera = render, camera
        self.env, self.start, self.stop = render.env, render.start, render.stop

    def __len__(self) -> int:
        return self.stop - self.start

    def widths(self, size: tuple[int, int]) -> tuple[int, int]:
        """How ``size``'s width splits: the camera takes its aspect at full height (at most half)."""
        w, h = size
        right = min(w // 2, round(h * self.camera.aspect)) // 2 * 2
        return w - right, right

    def frame(self, t: int, size: tuple[int, int], *, overlay: bool = True, label: str | None = None) -> np.ndarray:
        left, right = self.widths(size)
        h = size[1]
        out = np.empty((h, size[0], 3), np.uint8)
        out[:, :left] = self.render.frame(t, (left, h), overlay=overlay, label=label)
        out[:, left:] = self.camera.frame(t, (right, h), overlay=overlay)
        return out


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest ``(w, h)`` with the aspect of ``width x height`` that fits in the box."""
    s = min(box_w / width, box_h / height)
    return max(1, min(box_w, round(width * s))), max(1, min(box_h, round(height * s)))


def _text(img: np.ndarray, text: str, at: tuple[int, int], background: bool = False) -> None:
    scale = text_scale(img.shape[0])
    if background:
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
        x, y = at
        roi = img[max(0, y - th - 3) : y + base + 2, max(0, x - 3) : x + tw + 3]
        roi[...] = (roi.astype(np.uint16) * 2 // 7).astype(np.uint8)
    cv2.putText(img, text, at, _FONT, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def _empty_reason(frames) -> str:
    try:
        frames[0]
    except (IndexError, KeyError) as exc:
        return exc.args[0] if exc.args else "no frames"
    return "no frames"


__all__ = ["BesideScene", "CameraScene", "fit"]
