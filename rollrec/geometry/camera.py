"""The follow camera's rule, one for the browser replay and the video renderer.

World frame: z up, metres. The ``follow`` preset looks at the tracked base from behind-left and
above it, at `FOLLOW_OFFSET` times a scale (further out to frame two robots, closer for a small
one), and moves with the base. `rollrec.viewer` and `rollrec.video` both place it with
`follow_eye`.
"""

from __future__ import annotations

import numpy as np

#: Eye minus target of the follow camera at scale 1 (metres, world frame).
FOLLOW_OFFSET = np.array([-2.5, -2.5, 1.5])


def follow_eye(target: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``[3]`` float64 position of the follow camera looking at ``target`` ``[3]``."""
    return np.asarray(target, np.float64).reshape(3) + scale * FOLLOW_OFFSET


__all__ = ["FOLLOW_OFFSET", "follow_eye"]
