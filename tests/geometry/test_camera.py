"""One follow-camera rule: the browser replay and the video renderer place the follow camera
at the same point for the same base and scale."""

import numpy as np

from rollrec.geometry.camera import FOLLOW_OFFSET, follow_eye
from rollrec.video.camera import preset_camera
from rollrec.viewer.camera import camera_pose


def test_viewer_and_video_follow_from_the_same_point():
    base = np.array([1.0, -2.0, 0.4])
    for scale in (0.5, 1.0, 2.0):
        viewer = camera_pose("follow", base, distance_scale=scale)
        video = preset_camera("follow", (320, 240), center=np.zeros(3), radius=1.0, base=base, follow_scale=scale)
        np.testing.assert_allclose(viewer.position, follow_eye(base, scale))
        np.testing.assert_allclose(video.eye, follow_eye(base, scale))
        np.testing.assert_allclose(viewer.look_at, base)
        np.testing.assert_allclose(video.target, base)


def test_follow_sits_behind_left_and_above():
    eye = follow_eye(np.zeros(3))
    np.testing.assert_allclose(eye, FOLLOW_OFFSET)
    assert eye[0] < 0 and eye[1] < 0 and eye[2] > 0
