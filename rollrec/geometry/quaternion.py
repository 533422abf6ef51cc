"""Quaternions in **wxyz** order (scalar first, as MuJoCo and rollrec files store them), numpy.

`quat_mul` and `quat_conj` work on one quaternion ``[4]``; `quat_rotate` rotates one vector
``[3]``; `quat_to_matrix` converts any batch ``[..., 4]`` (normalised first) to rotation matrices
``[..., 3, 3]``. Results are float64.
"""

from __future__ import annotations

import numpy as np


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of two wxyz quaternions ``[4]``: rotate by ``b``, then by ``a``."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def quat_conj(q: np.ndarray) -> np.ndarray:
    """The conjugate of wxyz quaternion ``q`` ``[4]`` (the inverse rotation of a unit quaternion)."""
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vector ``v`` ``[3]`` rotated by unit wxyz quaternion ``q`` ``[4]`` (``q v q*``)."""
    return quat_mul(quat_mul(q, np.array([0.0, *v])), quat_conj(q))[1:]


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """``[..., 4]`` wxyz quaternions -> ``[..., 3, 3]`` rotation matrices (normalised first)."""
    q = np.asarray(q, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def rpy_to_quat(rpy: np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, y, z) -> wxyz quaternion of ``Rz(yaw) Ry(pitch) Rx(roll)``."""
    r, p, y = np.asarray(rpy, np.float64) / 2
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy])


__all__ = ["quat_conj", "quat_mul", "quat_rotate", "quat_to_matrix", "rpy_to_quat"]
