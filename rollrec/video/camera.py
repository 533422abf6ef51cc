"""A pinhole camera for the CPU renderer: look-at pose, vectorised projection, and the presets.

World frame: z up, metres. Image frame: pixel ``(u, v)``, u to the right, v down, origin at
the top-left corner of pixel (0, 0). Projection is vectorised over any number of points.

Presets (the viewer's names, same geometry):

* ``top``: straight down on the scene, +x to the right, +y up the image.
* ``side``: from -y, 15 degrees above, looking along +y; +x to the right.
* ``front``: from +x, 15 degrees above, looking along -x (the walker faces the camera).
* ``follow``: from behind-left and above the base, at a fixed world offset, tracking the base.

The view directions are those of the viewer's presets (`rollrec.viewer.camera`: side and front
about 15 degrees above the horizon); ``follow`` is placed by the rule both share
(`rollrec.geometry.camera.follow_eye`: `FOLLOW_OFFSET` from the base).
``top``/``side``/``front`` frame a fixed region (the env's whole trajectory) so motion shows as
the base moving across the image; ``follow`` keeps the base at the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rollrec.geometry.camera import follow_eye

CAMERA_PRESETS = ("top", "side", "front", "follow")
#: Vertical field of view of every preset, degrees.
DEFAULT_FOV_DEG = 45.0
_ELEVATION = math.radians(15.0)
_NEAR = 0.05


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-12:
        raise ValueError("degenerate camera: eye and target coincide, or up is parallel to the view")
    return v / n


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from ``eye`` at ``target``; ``up`` fixes the roll.

    ``size`` is ``(width, height)`` in pixels, ``fov_deg`` the vertical field of view.
    """

    eye: np.ndarray
    target: np.ndarray
    up: np.ndarray
    size: tuple[int, int]
    fov_deg: float = DEFAULT_FOV_DEG

    @property
    def rotation(self) -> np.ndarray:
        """``[3, 3]`` world-to-camera rotation; rows are right, up and forward (depth)."""
        forward = _unit(np.asarray(self.target, float) - np.asarray(self.eye, float))
        right = _unit(np.cross(forward, np.asarray(self.up, float)))
        return np.stack((right, np.cross(right, forward), forward))

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return 0.5 * self.size[1] / math.tan(math.radians(self.fov_deg) / 2)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` world points -> ``[..., 3]`` camera coordinates (right, up, depth)."""
        return (np.asarray(points, np.float64) - np.asarray(self.eye, float)) @ self.rotation.T

    def _pixels(self, cam: np.ndarray) -> np.ndarray:
        w, h = self.size
        z = np.maximum(cam[..., 2], _NEAR)
        f = self.focal
        return np.stack((0.5 * w + f * cam[..., 0] / z, 0.5 * h - f * cam[..., 1] / z), axis=-1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[..., 3]`` world points -> ``(uv [..., 2] float pixels, visible [...] bool)``.

        ``visible`` is False for points behind the near plane (their ``uv`` is meaningless).
        """
        cam = self.to_camera(points)
        return self._pixels(cam), cam[..., 2] > _NEAR

    def project_segments(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segments ``a[i] -> b[i]`` (``[M, 3]`` each), clipped at the near plane, in pixels.

        Returns ``(ua [M, 2], ub [M, 2], visible [M])``; a segment wholly behind the camera is
        not visible, one crossing the near plane is cut where it crosses.
        """
        ca, cb = self.to_camera(a), self.to_camera(b)
        za, zb = ca[:, 2], cb[:, 2]
        visible = (za > _NEAR) | (zb > _NEAR)
        denom = np.where(np.abs(zb - za) < 1e-12, 1.0, zb - za)
        s = ((_NEAR - za) / denom)[:, None]
        cut = ca + s * (cb - ca)
        ca = np.where((za <= _NEAR)[:, None], cut, ca)
        cb = np.where((zb <= _NEAR)[:, None], cut, cb)
        return self._pixels(ca), self._pixels(cb), visible

    def pixels_per_metre(self, point: np.ndarray) -> float:
        """Approximate scale at ``point``: pixels covered by one metre facing the camera."""
        depth = float(self.to_camera(np.asarray(point, float))[2])
        return self.focal / max(depth, _NEAR)


def fit_distance(radius: float, size: tuple[int, int], fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Distance at which a sphere of ``radius`` metres fills the narrower image side."""
    w, h = size
    half_v = math.radians(fov_deg) / 2
    half_h = math.atan(math.tan(half_v) * w / h)
    return radius / math.sin(min(half_v, half_h))


def preset_camera(
    name: str,
    size: tuple[int, int],
    *,
    center: np.ndarray,
    radius: float,
    base: np.ndarray | None = None,
    follow_scale: float = 1.0,
) -> Camera:
    """The camera of preset ``name`` (see module doc) for an image of ``size`` ``(w, h)``.

    ``center``/``radius``: the region (metres) fixed presets frame. ``base``: the tracked base
    position, required by ``follow``; ``follow_scale`` multiplies its offset (a small robot is
    followed from closer). Raises ValueError for an unknown name.
    """
    center = np.asarray(center, float)
    if name == "follow":
        if base is None:
            raise ValueError("the follow camera needs the base position")
        base = np.asarray(base, float)
        return Camera(follow_eye(base, follow_scale), base, np.array([0.0, 0.0, 1.0]), size)
    d = fit_distance(max(radius, 0.1), size)
    ce, se = math.cos(_ELEVATION), math.sin(_ELEVATION)
    if name == "top":
        return Camera(center + [0.0, 0.0, d], center, np.array([0.0, 1.0, 0.0]), size)
    if name == "side":
        return Camera(center + d * np.array([0.0, -ce, se]), center, np.array([0.0, 0.0, 1.0]), size)
    if name == "front":
        return Camera(center + d * np.array([ce, 0.0, se]), center, np.array([0.0, 0.0, 1.0]), size)
    raise ValueError(f"unknown camera {name!r}; choose one of {', '.join(CAMERA_PRESETS)}")
