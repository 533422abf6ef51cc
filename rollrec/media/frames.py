"""Frames as the video writer takes them: normalisation to ``H x W x 3`` uint8 and tiling of batches.

A *frame* is a numpy array or torch tensor (on any device) shaped ``[H, W]`` (gray),
``[H, W, 1]``, ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA, alpha dropped), either uint8
(0..255) or floating point in [0, 1] (clipped; NaN becomes 0). A *batch* is ``[N, H, W, C]``
(or ``[N, H, W]`` gray): one frame per env, shown as a grid of labelled tiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Background of grid cells without an env.
_EMPTY_TILE = 0


def _to_numpy(frame: Any) -> np.ndarray:
    """Host numpy view/copy of ``frame``; a torch tensor is detached and moved to the CPU.

    A CUDA tensor is copied on the calling thread's current stream and the call waits for it:
    ordered after the work that made the frame when it is called on the thread that made it (as
    `rollrec.video.VideoWriter.write` is). `rollrec.media.background` brings frames of other
    threads to the host itself, with an event.
    """
    if isinstance(frame, np.ndarray):
        return frame
    if type(frame).__module__.startswith("torch"):
        return frame.detach().to("cpu").numpy()
    try:
        return np.asarray(frame)
    except Exception as exc:
        raise TypeError(f"a frame must be a numpy array or torch tensor, got {type(frame).__name__}") from exc


def _to_uint8(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise TypeError(f"{what} has dtype {arr.dtype}; expected uint8 (0..255) or float in [0, 1]")


def _channels_to_rgb(arr: np.ndarray, what: str) -> np.ndarray:
    """``[..., H, W, C]`` or ``[..., H, W]`` uint8 -> ``[..., H, W, 3]``."""
    c = arr.shape[-1]
    if c == 3:
        return arr
    if c == 4:
        return arr[..., :3]
    if c == 1:
        return np.repeat(arr, 3, axis=-1)
    raise ValueError(f"{what} has {c} channels (shape {tuple(arr.shape)}); expected 1, 3 or 4")


def is_batch(frame: Any) -> bool:
    """True when ``frame`` is a batch ``[N, H, W, C]`` rather than one frame (judged by rank)."""
    return len(getattr(frame, "shape", np.shape(frame))) == 4


def to_uint8_rgb(frame: Any) -> np.ndarray:
    """One frame (see module doc) as a C-contiguous ``[H, W, 3]`` uint8 numpy array.

    Accepts numpy arrays and torch tensors on any device (a CUDA tensor is copied to the host,
    which synchronises with its stream). Returns ``frame`` itself when it already is such an
    array, else a new array. Raises ValueError for a wrong shape, TypeError for a wrong dtype.
    """
    arr = _to_numpy(frame)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"a frame must be [H, W], [H, W, C]; got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"a frame must not be empty; got shape {tuple(arr.shape)}")
    arr = _channels_to_rgb(_to_uint8(arr, "frame"), "frame")
    return np.ascontiguousarray(arr)


def batch_to_uint8_rgb(batch: Any) -> np.ndarray:
    """A batch ``[N, H, W, C]`` (or ``[N, H, W]``) as ``[N, H, W, 3]`` uint8, C-contiguous."""
    arr = _to_numpy(batch)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or 0 in arr.shape[:3]:
        raise ValueError(f"a batch of frames must be [N, H, W, C]; got shape {tuple(arr.shape)}")
    return np.ascontiguousarray(_channels_to_rgb(_to_uint8(arr, "batch"), "batch"))


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of the grid `tile_frames` uses for ``n`` tiles (near-square by default)."""
    if n < 1:
        raise ValueError(f"cannot tile {n} frames")
    cols = int(cols) if cols else math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"cols must be at least 1, got {cols}")
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def draw_label(img: np.ndarray, text: str, *, scale: float | None = None) -> None:
    """Draw ``text`` in white on a dark box in the top-left corner of ``img`` (in place, uint8 RGB)."""
    import cv2

    h = img.shape[0]
    scale = scale if scale is not None else max(0.35, min(1.0, h / 500.0))
    thick = 1 if scale < 0.8 else 2
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, int(4 * scale))
    x1, y1 = min(img.shape[1], tw + 2 * pad), min(h, th + base + 2 * pad)
    img[:y1, :x1] = (img[:y1, :x1] // 3).astype(np.uint8)  # darken, keep a hint of the scene
    cv2.putText(
        img, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
    )


def tile_frames(
    batch: Any,
    labels: Sequence[str] | bool = True,
    cols: int | None = None,
) -> np.ndarray:
    """Arrange a batch ``[N, H, W, C]`` of frames as one grid image ``[rows*H, cols*W, 3]`` uint8.

    Tile ``i`` sits at row ``i // cols``, column ``i % cols``; cells past ``N`` are black.
    ``cols`` defaults to ``ceil(sqrt(N))`` (see `grid_shape`). ``labels``: True draws
    ``"env i"`` on tile ``i``, False draws nothing, a sequence of N strings draws those.
    """
    frames = batch_to_uint8_rgb(batch)
    n, h, w, _ = frames.shape
    rows, cols = grid_shape(n, cols)
    if labels is True:
        names: Sequence[str] | None = [f"env {i}" for i in range(n)]
    elif labels is False or labels is None:
        names = None
    else:
        names = [str(s) for s in labels]
        if len(names) != n:
            raise ValueError(f"got {len(names)} labels for {n} frames")
    grid = np.full((rows * h, cols * w, 3), _EMPTY_TILE, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = grid[r * h : (r + 1) * h, c * w : (c + 1) * w]
        tile[...] = frames[i]
        if names is not None:
            draw_label(tile, names[i])
    return grid
