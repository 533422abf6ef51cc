"""Geometry shared by the robot models, the browser replay and the video renderer (plain numpy).

`quaternion`: wxyz quaternion arithmetic (products, rotations, matrices, URDF roll-pitch-yaw);
`camera`: where the camera presets sit relative to what they look at, and the follow rule.

May import: numpy only (nothing else of rollrec); every other package may import it.
"""

from rollrec.geometry.camera import FOLLOW_OFFSET, follow_eye
from rollrec.geometry.quaternion import quat_conj, quat_mul, quat_rotate, quat_to_matrix, rpy_to_quat

__all__ = ["FOLLOW_OFFSET", "follow_eye", "quat_conj", "quat_mul", "quat_rotate", "quat_to_matrix", "rpy_to_quat"]
