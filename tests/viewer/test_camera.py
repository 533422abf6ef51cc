"""Camera presets and the follow camera's arithmetic; which envs are drawn as ghosts."""

from __future__ import annotations

import numpy as np
import pytest

from rollrec.viewer.camera import CAMERA_MODES, CameraPose, camera_pose, follow
from rollrec.viewer.scene import MAX_GHOSTS, ghost_envs


def test_presets_aim_at_the_target():
    for mode in CAMERA_MODES:
        pose = camera_pose(mode, np.array([1.0, 2.0, 0.3]))
        assert pose.look_at == (1.0, 2.0, 0.3)
        assert np.linalg.norm(pose.offset) > 1.0
    far = camera_pose("follow", np.zeros(3), distance_scale=2.0)
    np.testing.assert_allclose(far.offset, 2 * camera_pose("follow", np.zeros(3)).offset)
    with pytest.raises(ValueError, match="unknown camera mode 'orbit'"):
        camera_pose("orbit", np.zeros(3))


def test_follow_keeps_the_viewers_own_offset():
    user = CameraPose((0.0, -6.0, 3.0), (1.0, 0.0, 0.5))  # the user orbited and zoomed out
    moved = follow(user, np.array([4.0, 1.0, 0.4]))
    assert moved.look_at == (4.0, 1.0, 0.4)
    np.testing.assert_allclose(moved.offset, user.offset)
    # no camera yet, or a degenerate one: the follow preset
    assert follow(None, np.zeros(3)) == camera_pose("follow", np.zeros(3))
    assert follow(CameraPose((1.0, 1.0, 1.0), (1.0, 1.0, 1.0)), np.zeros(3)) == camera_pose("follow", np.zeros(3))


def test_ghosts_are_the_other_envs_capped_and_spread():
    assert ghost_envs(1, 0).tolist() == []
    assert ghost_envs(5, 2).tolist() == [0, 1, 3, 4]
    many = ghost_envs(4096, 0)
    assert 0 not in many and len(many) == MAX_GHOSTS
    assert many.min() < 64 and many.max() == 4095  # spread over the whole range
    assert len(np.unique(many)) == len(many)
    assert len(ghost_envs(4096, 4095)) == MAX_GHOSTS
