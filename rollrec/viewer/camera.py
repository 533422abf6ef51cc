"""Camera presets of the replay viewer and the follow camera's arithmetic (plain Python).

A preset is an offset from its target (the selected base). "follow" keeps whatever offset the
viewer's camera has from its target and moves both with the base, so a user who orbits or
zooms while following keeps that view; the other presets are placed once and stay put.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rollrec.geometry.camera import follow_eye

#: Camera presets, in GUI order. "follow" tracks the selected env's base while playing.
CAMERA_MODES: tuple[str, ...] = ("follow", "top", "side", "front")
#: Offset of each fixed preset's camera from its target (the base position), metres, world frame (z up).
_CAMERA_OFFSETS: dict[str, tuple[float, float, float]] = {
    "top": (-0.01, 0.0, 4.0),  # a hair off vertical: looking straight down has no defined up
    "side": (0.0, -2.5, 0.7),
    "front": (2.5, 0.0, 0.7),
}  # "follow" starts at `rollrec.geometry.camera.follow_eye`, the rule the video renderer follows too


@dataclass(frozen=True)
class CameraPose:
    """Where a camera sits and what it looks at, world frame, metres."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]

    @property
    def offset(self) -> np.ndarray:
        """``[3]`` position minus look-at."""
        return np.subtract(self.position, self.look_at)


def camera_pose(mode: str, target: np.ndarray, *, distance_scale: float = 1.0) -> CameraPose:
    """The pose of camera preset ``mode`` (one of `CAMERA_MODES`) aimed at ``target`` ``[3]``;
    ``distance_scale`` moves it further out (compare mode frames two robots)."""
    if mode not in CAMERA_MODES:
        raise ValueError(f"unknown camera mode {mode!r}; choose one of {', '.join(CAMERA_MODES)}")
    t = np.asarray(target, dtype=np.float64).reshape(3)
    if mode == "follow":
        pos = follow_eye(t, distance_scale)
    else:
        pos = t + distance_scale * np.asarray(_CAMERA_OFFSETS[mode])
    return CameraPose(_triple(pos), _triple(t))


def follow(current: CameraPose | None, target: np.ndarray, *, distance_scale: float = 1.0) -> CameraPose:
    """Move camera ``current`` (None: the follow preset) so it looks at ``target`` from the
    same offset it has now."""
    if current is None:
        return camera_pose("follow", target, distance_scale=distance_scale)
    t = np.asarray(target, dtype=np.float64).reshape(3)
    offset = current.offset
    if not np.all(np.isfinite(offset)) or np.linalg.norm(offset) < 1e-6:
        return camera_pose("follow", t, distance_scale=distance_scale)
    return CameraPose(_triple(t + offset), _triple(t))


def _triple(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))
