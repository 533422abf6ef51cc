"""Camera frames for the exporters: the one place that knows where a rollout's images come from.

Two sources, read through one function (`read_frames`):

- camera members of format v3 (`rollout.cameras` and ``rollout.images(camera, env)``, the encoded
  streams of the camera issue), when the rollout has them;
- raw image members: per-step extras ``[T, N, H, W, 3]`` uint8 (RGB), which any rollout can hold.

A frame is ``[H, W, 3]`` uint8 RGB, or ``[H, W]`` for depth (float32 or uint16) and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rollrec.io.protocol import ReadableRollout


@dataclass(frozen=True)
class Camera:
    """One camera: its ``name``, one frame's ``shape`` and ``dtype``, and ``member``: the raw
    per-step member it is read from, or None for a v3 camera stream."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    member: str | None

    @property
    def is_rgb(self) -> bool:
        return len(self.shape) == 3 and self.shape[2] == 3 and self.dtype == np.uint8


def is_image_member(r: ReadableRollout, key: str) -> bool:
    """Whether per-step member ``key`` holds RGB images: ``[T, N, H, W, 3]`` uint8."""
    arr = r[key]
    return arr.ndim == 5 and arr.shape[4] == 3 and arr.dtype == np.uint8


def cameras(r: ReadableRollout) -> list[Camera]:
    """The rollout's cameras: its v3 camera streams, then its raw image members, by name."""
    out = []
    for name, spec in sorted(dict(getattr(r, "cameras", None) or {}).items()):
        out.append(Camera(name, tuple(int(s) for s in spec.shape), np.dtype(spec.dtype), None))
    for key in r.step_keys:
        if is_image_member(r, key):
            out.append(Camera(key, tuple(r[key].shape[2:]), r[key].dtype, key))
    return out


def frame_rows(r: ReadableRollout, camera: Camera, env: int) -> np.ndarray | None:
    """The sorted rows that hold a frame of ``camera`` for ``env`` (int64), for a camera stream;
    None for a raw member (its rows are those of its kind, ``r.kind(member)``)."""
    if camera.member is not None:
        return None
    return np.asarray(r.images(camera.name, env).steps, np.int64)  # type: ignore[attr-defined]


def read_frames(r: ReadableRollout, camera: Camera, env: int, rows: tuple[int, int]) -> np.ndarray:
    """``[n, *camera.shape]`` frames of ``camera`` for env ``env``, rows ``rows = (t0, t1)`` (a new array).

    A raw member is read with one pread per row; a v3 stream decodes from the key frame before t0
    (``frames.at(step)``), so reading an episode in consecutive pieces decodes each frame once."""
    t0, t1 = rows
    if camera.member is not None:
        return r.read(camera.member, (t0, t1), (env, env + 1))[:, 0]
    frames = r.images(camera.name, env)  # type: ignore[attr-defined]  # format v3 (the camera issue)
    out = np.empty((max(t1 - t0, 0), *camera.shape), camera.dtype)
    for i, t in enumerate(range(t0, t1)):
        out[i] = frames.at(t)
    return out


__all__ = ["Camera", "cameras", "frame_rows", "is_image_member", "read_frames"]
