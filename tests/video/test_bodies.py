"""The robot's bodies in the video: drawn from the stored model where the recorded links are."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.model import RobotModel
from rollrec.video.draw import BASE_COLOR
from rollrec.video.scene import scenes_for

RED = (1.0, 0.0, 0.0, 1.0)


def _box_model(half=(0.4, 0.1, 0.1)) -> RobotModel:
    """One red box on link ``base`` and a grey floor plane (drawn by the grid, not as a body)."""
    return RobotModel(["base"], geom_type=[6, 0], geom_link=[0, -1], geom_size=[half, [0, 0, 1]],
                      geom_pos=[[0, 0, 0]] * 2, geom_quat=[[1, 0, 0, 0]] * 2, geom_rgba=[RED, [0.5, 0.5, 0.5, 1]],
                      geom_group=[0, 0], geom_dataid=[-1, -1], info={"source": "test"})


def _file(tmp_path, moving_fields, yaw_at_end=False, model=True):
    f = moving_fields()
    f["link_pos"] = f["base_pos"][:, :, None, :].copy()
    f["link_quat"] = f["base_quat"][:, :, None, :].copy()
    if yaw_at_end:  # the last step turns the box 90 degrees about z
        f["link_quat"][-1, :, 0] = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]
    f["link_names"] = ["base"]
    return rollrec.save(tmp_path / "box.npz", f, dt=0.05, model=_box_model() if model else None)


def _red(img: np.ndarray) -> np.ndarray:
    return (img[..., 0] > 120) & (img[..., 1] < 60) & (img[..., 2] < 60)


def test_bodies_follow_the_recorded_link_pose(tmp_path, moving_fields):
    path = _file(tmp_path, moving_fields, yaw_at_end=True)
    with rollrec.load(path) as r:
        scene = scenes_for(r, [0], "top")[0]
        assert scene.bodies is not None and scene.bodies.num_faces == 12
        cam = scene.camera_at(0, (320, 240))
        centres, extents = [], []
        for t in (0, 20, r.T - 1):
            img = scene.frame(t, (320, 240), overlay=False)
            ys, xs = np.nonzero(_red(img))
            assert len(xs) > 50
            centres.append((xs.mean(), ys.mean()))
            extents.append((np.ptp(xs), np.ptp(ys)))
            want, _ = cam.project(np.asarray(r["base_pos"][t, 0], float))
            assert np.hypot(xs.mean() - want[0], ys.mean() - want[1]) < 4  # drawn where the link is
        assert centres[1][0] > centres[0][0] + 40  # it moved along +x (right, from the top)
        assert extents[0][0] > 2.5 * extents[0][1]  # long along x ...
        assert extents[2][1] > 2.5 * extents[2][0]  # ... until the last step turns it about z
        assert not (img == BASE_COLOR).all(-1).any()  # no stick base marker over the body


def test_sticks_stay_the_fallback(tmp_path, moving_fields):
    with_model = _file(tmp_path, moving_fields)
    with rollrec.load(with_model) as r:
        sticks = scenes_for(r, [0], "top", style="sticks")[0]
        assert sticks.bodies is None
        assert (sticks.frame(0, (320, 240)) == BASE_COLOR).all(-1).any()
    plain = rollrec.save(tmp_path / "plain.npz", moving_fields(), dt=0.05)
    with rollrec.load(plain) as r:
        assert scenes_for(r, [0], "top")[0].bodies is None  # auto: no model, sticks
        with pytest.raises(ValueError, match="no robot model"):
            scenes_for(r, [0], "top", style="bodies")
        with pytest.raises(ValueError, match="unknown style 'wire'"):
            scenes_for(r, [0], "top", style="wire")


def test_cli_style_option(tmp_path, moving_fields, capsys):
    from rollrec.cli import main

    path = _file(tmp_path, moving_fields)
    out = tmp_path / "sticks.mp4"
    assert main(["video", str(path), "--style", "sticks", "--size", "160x120", "-o", str(out), "--quiet"]) == 0
    assert out.exists()
    plain = rollrec.save(tmp_path / "plain.npz", moving_fields(), dt=0.05)
    assert main(["video", str(plain), "--style", "bodies", "-o", str(tmp_path / "x.mp4"), "--quiet"]) == 1
    assert "no robot model" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
