"""RGB <-> YCbCr 4:4:4 planes, BT.601 full range (JPEG's matrix), for the H.264 streams.

OpenCV's ``RGB2YCrCb`` is that matrix with integer rounding, vectorised and run without the GIL;
it orders the chroma Cr, Cb, so the planes are reordered to the Y, Cb, Cr order of ``yuv444p``.
"""

from __future__ import annotations

import cv2
import numpy as np


def rgb_to_planes(frames: np.ndarray) -> np.ndarray:
    """``[n, H, W, 3]`` uint8 RGB -> ``[n, 3, H, W]`` uint8 Y, Cb, Cr planes (new memory)."""
    n, h, w, _ = frames.shape
    ycrcb = cv2.cvtColor(np.ascontiguousarray(frames).reshape(n * h, w, 3), cv2.COLOR_RGB2YCrCb).reshape(n, h, w, 3)
    planes = np.empty((n, 3, h, w), np.uint8)
    planes[:, 0] = ycrcb[..., 0]
    planes[:, 1] = ycrcb[..., 2]
    planes[:, 2] = ycrcb[..., 1]
    return planes


def planes_to_rgb(planes: np.ndarray) -> np.ndarray:
    """``[3, H, W]`` uint8 Y, Cb, Cr planes -> ``[H, W, 3]`` uint8 RGB."""
    ycrcb = np.stack((planes[0], planes[2], planes[1]), axis=-1)
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


__all__ = ["planes_to_rgb", "rgb_to_planes"]
