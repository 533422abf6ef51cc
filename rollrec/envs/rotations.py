"""Batched quaternion helpers in torch. Quaternions are ``[..., 4]`` in **wxyz** order."""

from __future__ import annotations

import torch


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` of wxyz quaternions, broadcasting over leading dims."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v [..., 3]`` by wxyz quaternions ``q [..., 4]``."""
    # v + 2w (u x v) + 2 u x (u x v) with u the vector part, written out per component:
    # torch.cross on broadcast (expanded) operands is several times slower on the CPU.
    w, x, y, z = q.unbind(-1)
    vx, vy, vz = v.unbind(-1)
    tx, ty, tz = 2.0 * (y * vz - z * vy), 2.0 * (z * vx - x * vz), 2.0 * (x * vy - y * vx)
    return torch.stack(
        (vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx)), dim=-1
    )


def quat_from_axis_angle(axis: tuple[float, float, float], angle: torch.Tensor) -> torch.Tensor:
    """Quaternions ``[..., 4]`` rotating by ``angle [...]`` radians about a fixed unit ``axis``."""
    half = 0.5 * angle
    s = torch.sin(half)
    return torch.stack((torch.cos(half), axis[0] * s, axis[1] * s, axis[2] * s), dim=-1)


def quat_from_euler(roll: torch.Tensor, pitch: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """``yaw(z) * pitch(y) * roll(x)`` as wxyz quaternions."""
    qz = quat_from_axis_angle((0.0, 0.0, 1.0), yaw)
    qy = quat_from_axis_angle((0.0, 1.0, 0.0), pitch)
    qx = quat_from_axis_angle((1.0, 0.0, 0.0), roll)
    return quat_mul(quat_mul(qz, qy), qx)
