"""Drawing primitives of the CPU renderer, on ``[H, W, 3]`` uint8 RGB images, with OpenCV.

Each function projects its 3D geometry with a `Camera` in one vectorised call and draws it with
one or a few OpenCV calls (anti-aliased, sub-pixel coordinates), in place. Colours are RGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from rollrec.geometry.quaternion import quat_to_matrix
from rollrec.video.camera import Camera

BACKGROUND = (28, 30, 36)
GRID_COLOR = (78, 84, 96)
GRID_AXIS_COLOR = (120, 128, 142)
TRAIL_COLOR = (70, 190, 255)
LINK_COLOR = (225, 225, 232)
JOINT_COLOR = (160, 170, 185)
#: The base marker: a disk of exactly this colour (tests find the base by it).
BASE_COLOR = (255, 150, 0)
AXIS_COLORS = ((235, 64, 64), (64, 205, 90), (80, 130, 255))
POSITIVE_COLOR = (90, 200, 120)
NEGATIVE_COLOR = (225, 90, 90)
TEXT_COLOR = (240, 240, 240)

_SHIFT = 4  # sub-pixel bits for OpenCV coordinates
_SCALE = 1 << _SHIFT
_LIMIT = 1 << 20  # pixel coordinates are clamped here so they fit int32 after shifting
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fixed(uv: np.ndarray) -> np.ndarray:
    return np.round(np.clip(uv, -_LIMIT, _LIMIT) * _SCALE).astype(np.int32)


def draw_segments(
    img: np.ndarray, cam: Camera, a: np.ndarray, b: np.ndarray, color: Sequence[int], thickness: int = 1
) -> None:
    """Draw 3D segments ``a[i] -> b[i]`` (``[M, 3]``), clipped at the camera's near plane."""
    if len(a) == 0:
        return
    ua, ub, vis = cam.project_segments(np.asarray(a, float), np.asarray(b, float))
    vis &= np.isfinite(ua).all(-1) & np.isfinite(ub).all(-1)  # NaN poses draw nothing
    if not vis.any():
        return
    lines = np.stack((_fixed(ua[vis]), _fixed(ub[vis])), axis=1)  # [M, 2, 2]
    cv2.polylines(img, list(lines), False, tuple(int(c) for c in color), thickness, cv2.LINE_AA, _SHIFT)


def draw_polyline(
    img: np.ndarray, cam: Camera, points: np.ndarray, color: Sequence[int], thickness: int = 1
) -> None:
    """Draw the 3D polyline through ``points`` ``[M, 3]``."""
    points = np.asarray(points, float)
    if len(points) >= 2:
        draw_segments(img, cam, points[:-1], points[1:], color, thickness)


def draw_points(img: np.ndarray, cam: Camera, points: np.ndarray, color: Sequence[int], radius: int) -> None:
    """Draw filled disks of ``radius`` pixels at the 3D ``points`` ``[M, 3]`` in front of the camera."""
    uv, vis = cam.project(np.asarray(points, float).reshape(-1, 3))
    vis &= np.isfinite(uv).all(-1)
    color = tuple(int(c) for c in color)
    for p in _fixed(uv[vis]):
        cv2.circle(img, (int(p[0]), int(p[1])), radius * _SCALE, color, -1, cv2.LINE_AA, _SHIFT)


def nice_spacing(extent: float, target_lines: int = 16) -> float:
    """A round grid spacing (1, 2 or 5 times a power of ten) giving about ``target_lines`` lines."""
    raw = max(extent, 1e-3) / target_lines
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * power >= raw:
            return m * power
    return 10.0 * power


def draw_ground_grid(
    img: np.ndarray, cam: Camera, center: np.ndarray, half_extent: float, z: float, spacing: float
) -> None:
    """Grid lines on the plane ``z`` every ``spacing`` metres around ``center`` (snapped to the
    world grid, so the ground appears to slide under a following camera); x=0 and y=0 brighter."""
    cx, cy = float(center[0]), float(center[1])
    xs = (
        np.arange(math.floor((cx - half_extent) / spacing), math.ceil((cx + half_extent) / spacing) + 1)
        * spacing
    )
    ys = (
        np.arange(math.floor((cy - half_extent) / spacing), math.ceil((cy + half_extent) / spacing) + 1)
        * spacing
    )
    y0, y1, x0, x1 = ys[0], ys[-1], xs[0], xs[-1]
    a = np.concatenate(
        (
            np.stack((xs, np.full_like(xs, y0), np.full_like(xs, z)), -1),
            np.stack((np.full_like(ys, x0), ys, np.full_like(ys, z)), -1),
        )
    )
    b = np.concatenate(
        (
            np.stack((xs, np.full_like(xs, y1), np.full_like(xs, z)), -1),
            np.stack((np.full_like(ys, x1), ys, np.full_like(ys, z)), -1),
        )
    )
    on_axis = np.isclose(np.concatenate((xs, ys)), 0.0, atol=spacing * 1e-3)
    draw_segments(img, cam, a[~on_axis], b[~on_axis], GRID_COLOR, 1)
    draw_segments(img, cam, a[on_axis], b[on_axis], GRID_AXIS_COLOR, 2)


def draw_frame_axes(
    img: np.ndarray, cam: Camera, pos: np.ndarray, quat: np.ndarray, length: float, thickness: int
) -> None:
    """The body frame at ``pos`` with orientation ``quat`` (wxyz): x red, y green, z blue."""
    rot = quat_to_matrix(quat)
    pos = np.asarray(pos, float)
    for i in range(3):
        draw_segments(img, cam, pos[None], (pos + length * rot[:, i])[None], AXIS_COLORS[i], thickness)


def draw_links(
    img: np.ndarray,
    cam: Camera,
    link_pos: np.ndarray,
    parents: Sequence[int] | None,
    thickness: int,
    joint_radius: int,
) -> None:
    """Links ``[L, 3]``: bones from each link to its parent (skeleton) when ``parents`` is given,
    else bodies only; a disk at every link."""
    link_pos = np.asarray(link_pos, float)
    if parents is not None:
        child = np.array([i for i, p in enumerate(parents) if 0 <= p < len(link_pos)], dtype=np.int64)
        if child.size:
            par = np.asarray(parents, dtype=np.int64)[child]
            draw_segments(img, cam, link_pos[par], link_pos[child], LINK_COLOR, thickness)
    draw_points(img, cam, link_pos, JOINT_COLOR, joint_radius)


def text_scale(height: int) -> float:
    """OpenCV font scale that reads well on an image ``height`` pixels high."""
    return max(0.3, min(0.9, height / 900.0))


def draw_terms_overlay(
    img: np.ndarray,
    header: str,
    names: Sequence[str],
    values: np.ndarray,
    total: float,
    bar_scale: np.ndarray,
) -> None:
    """A panel at the top-left: ``header``, one row per reward term (name, signed bar, value) and
    the total. ``bar_scale[k]`` is the magnitude that fills term k's half-bar."""
    h, w = img.shape[:2]
    scale = text_scale(h)
    thick = 1
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thick)
    row = th + base + 3
    name_w = max([cv2.getTextSize(n, _FONT, scale, thick)[0][0] for n in names] + [10])
    val_w = cv2.getTextSize("-00.000", _FONT, scale, thick)[0][0]
    bar_w = max(20, int(60 * scale / 0.5))
    pad = 4
    panel_w = min(
        w, max(pad * 4 + name_w + bar_w + val_w, cv2.getTextSize(header, _FONT, scale, thick)[0][0] + 2 * pad)
    )
    panel_h = min(h, pad * 2 + row * (len(names) + 2))
    roi = img[:panel_h, :panel_w]
    roi[...] = (roi.astype(np.uint16) * 2 // 7).astype(np.uint8)  # darken: text stays readable
    y = pad + th
    cv2.putText(img, header, (pad, y), _FONT, scale, TEXT_COLOR, thick, cv2.LINE_AA)
    bar_x = pad * 2 + name_w
    mid = bar_x + bar_w // 2
    rows = list(zip(names, values, bar_scale)) + [("total", total, None)]
    for name, value, mag in rows:
        y += row
        value = float(value)
        cv2.putText(img, name, (pad, y), _FONT, scale, TEXT_COLOR, thick, cv2.LINE_AA)
        if mag is not None and np.isfinite(value):
            frac = max(-1.0, min(1.0, value / mag)) if mag > 0 else 0.0
            end = mid + round(frac * (bar_w // 2))
            color = POSITIVE_COLOR if value >= 0 else NEGATIVE_COLOR
            top = y - th
            cv2.rectangle(img, (min(mid, end), top), (max(mid, end), y - 1), color, -1)
            cv2.line(img, (mid, top - 1), (mid, y), GRID_AXIS_COLOR, 1)
        cv2.putText(
            img, f"{value:+.3f}", (bar_x + bar_w + pad, y), _FONT, scale, TEXT_COLOR, thick, cv2.LINE_AA
        )
