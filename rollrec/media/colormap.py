"""Camera frames as RGB pictures: depth through a colour map, labels through a palette.

Shared by the replay's camera panel and ``rollrec video --camera`` (both sit above this layer).
`picture` turns any recorded frame into ``[H, W, 3]`` uint8 RGB:

- uint8 ``[H, W, 3]``: as is; ``[H, W, 4]``: its RGB; ``[H, W]`` or ``[H, W, 1]`` uint8: gray;
- integer labels (a camera named like ``seg``, ``label``, ``mask`` or ``instance``, or any
  signed or wider-than-16-bit integer image): a fixed colour per label (0 black);
- depth (uint16, float, or any other single-channel image): OpenCV's Turbo colour map from
  ``near`` (blue) to ``far`` (red); 0, negative and non-finite values (no return) are black.

`DepthRange.of` picks ``near``/``far`` from frames (2nd and 98th percentiles of the valid values),
so a sequence keeps one scale rather than flickering frame to frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

_LABEL_WORDS = ("seg", "label", "mask", "instance", "class")


@dataclass(frozen=True)
class DepthRange:
    """The values drawn at the two ends of the colour map."""

    near: float
    far: float

    @classmethod
    def of(cls, frames: Iterable[np.ndarray]) -> DepthRange:
        """From the valid values (finite, > 0) of ``frames``; (0, 1) when there are none."""
        values = [f[np.isfinite(f) & (f > 0)].astype(np.float64) for f in (np.asarray(x) for x in frames)]
        valid = np.concatenate([v.reshape(-1) for v in values]) if values else np.zeros(0)
        if valid.size == 0:
            return cls(0.0, 1.0)
        near, far = np.percentile(valid, [2, 98])
        return cls(float(near), float(max(far, near + 1e-6)))


def kind_of(name: str, shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``"rgb"``, ``"gray"``, ``"labels"`` or ``"depth"``: how `picture` draws such frames."""
    dtype = np.dtype(dtype)
    channels = shape[2] if len(shape) == 3 else 1
    if dtype == np.uint8 and channels in (3, 4):
        return "rgb"
    if channels != 1:
        return "labels" if dtype.kind in "iub" else "depth"
    if any(w in name.lower() for w in _LABEL_WORDS) or dtype.kind == "b" or (dtype.kind == "i") or (
            dtype.kind == "u" and dtype.itemsize > 2):
        return "labels"
    return "gray" if dtype == np.uint8 else "depth"


def picture(frame: np.ndarray, kind: str, depth: DepthRange | None = None) -> np.ndarray:
    """``frame`` as ``[H, W, 3]`` uint8 RGB, drawn as ``kind`` (`kind_of`)."""
    frame = np.asarray(frame)
    if kind == "rgb":
        return np.ascontiguousarray(frame[..., :3])
    plane = frame[..., 0] if frame.ndim == 3 else frame
    if kind == "gray":
        return np.repeat(plane[..., None], 3, axis=-1)
    if kind == "labels":
        return label_colors(plane)
    return depth_colors(plane, depth or DepthRange.of([plane]))


def depth_colors(depth: np.ndarray, scale: DepthRange) -> np.ndarray:
    """``[H, W]`` values -> ``[H, W, 3]`` uint8 Turbo colours from ``scale.near`` to ``scale.far``."""
    d = depth.astype(np.float64)
    valid = np.isfinite(d) & (d > 0)
    u = np.clip((np.where(valid, d, scale.near) - scale.near) / (scale.far - scale.near), 0, 1)
    rgb = cv2.cvtColor(cv2.applyColorMap(np.round(u * 255).astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def label_colors(labels: np.ndarray) -> np.ndarray:
    """``[H, W]`` integer labels -> ``[H, W, 3]`` uint8: a fixed bright colour per label, 0 black."""
    v = labels.astype(np.int64).astype(np.uint64)
    h = (v * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)  # a multiplicative hash: neighbours differ
    rgb = np.stack([(h >> np.uint64(s)) & np.uint64(0xFF) for s in (0, 8, 16)], axis=-1).astype(np.uint8)
    rgb = (rgb // 2 + 96).astype(np.uint8)  # bright enough to read on black
    rgb[v == 0] = 0
    return rgb


__all__ = ["DepthRange", "depth_colors", "kind_of", "label_colors", "picture"]
