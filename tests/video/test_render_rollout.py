"""Rendering recorded rollouts: what the video shows, its size and timing, and its errors."""

from __future__ import annotations

import itertools

import imageio.v2 as imageio
import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.video import render_frames, render_rollout
from rollrec.video.draw import BASE_COLOR
from rollrec.video.scene import scenes_for


def decode(path) -> tuple[np.ndarray, float]:
    """All frames ``[T, H, W, 3]`` of a video and its fps, read back with imageio."""
    with imageio.get_reader(str(path)) as reader:
        fps = reader.get_meta_data()["fps"]
        return np.stack([f for f in reader.iter_data()]), fps


def base_centroid(frame: np.ndarray, tol: int = 0) -> np.ndarray:
    """``(u, v)`` mean pixel of the base marker (pixels within ``tol`` of BASE_COLOR)."""
    mask = (np.abs(frame.astype(int) - np.array(BASE_COLOR)) <= tol).all(-1)
    assert mask.sum() > 5, "base marker not found"
    v, u = np.nonzero(mask)
    return np.array([u.mean(), v.mean()])


def test_video_of_walker_has_one_frame_per_step_at_real_time_fps(walker_file, tmp_path):
    out = render_rollout(walker_file, tmp_path / "walk.mp4", env=2, progress=False)
    frames, fps = decode(out)
    assert frames.shape == (120, 480, 640, 3)
    assert fps == pytest.approx(50.0)  # dt = 0.02
    assert np.abs(frames[0].astype(int) - frames[60]).mean() > 1.0  # the picture changes over time
    assert not list(tmp_path.glob("*.partial*"))


@pytest.mark.parametrize("camera", ["top", "side", "front", "follow"])
def test_every_camera_draws_the_base_and_the_overlay(walker_file, camera):
    with rollrec.load(walker_file) as r:
        frame = next(render_frames(scenes_for(r, [0], camera, 0, 5), (320, 240)))
    assert frame.shape == (240, 320, 3)
    base_centroid(frame)  # the base is on screen
    assert frame[:20, :60].max() > 200  # overlay text at the top-left


def test_drawn_base_moves_where_the_recorded_base_moves(moving_file, tmp_path):
    with rollrec.load(moving_file) as r:
        scenes = scenes_for(r, [0], "top")
        frames = list(render_frames(scenes, (320, 240), overlay=False))
        first, last = base_centroid(frames[0]), base_centroid(frames[-1])
        assert last[0] - first[0] > 100  # +x in the world is to the right from the top
        assert abs(last[1] - first[1]) < 3
        side = list(render_frames(scenes_for(r, [1], "top"), (320, 240), overlay=False))
        assert base_centroid(side[0])[1] - base_centroid(side[-1])[1] > 100  # +y is up the image
    # and the encoded video shows the same motion (colours approximate after compression)
    video, _ = decode(
        render_rollout(moving_file, tmp_path / "m.mp4", camera="top", size=(320, 240), progress=False)
    )
    assert video.shape[0] == 40
    us = [base_centroid(f, tol=40)[0] for f in video[::13]]
    assert all(b > a + 20 for a, b in itertools.pairwise(us))


def test_follow_camera_keeps_the_base_centred(moving_file):
    with rollrec.load(moving_file) as r:
        frames = list(render_frames(scenes_for(r, [0], "follow"), (320, 240), overlay=False))
    for frame in (frames[0], frames[-1]):
        assert np.allclose(base_centroid(frame), (160, 120), atol=2)


def test_several_envs_make_a_labelled_grid(walker_file, tmp_path):
    out = render_rollout(
        walker_file, tmp_path / "grid.mp4", envs=[0, 1, 3], camera="top", fps=10, stop=20, progress=False
    )
    frames, fps = decode(out)
    assert frames.shape == (20, 480, 640, 3) and fps == pytest.approx(10.0)
    with rollrec.load(walker_file) as r:
        grid = next(render_frames(scenes_for(r, [0, 1, 3], "top", 0, 1), (640, 480)))
    # 2x2 grid of 320x240 tiles; the fourth is empty (black)
    assert grid[240:, 320:].max() == 0
    for r0, c0 in ((0, 0), (0, 320), (240, 0)):
        base_centroid(grid[r0 : r0 + 240, c0 : c0 + 320])


def test_per_env_writes_one_file_per_env(walker_file, tmp_path):
    paths = render_rollout(
        walker_file, tmp_path / "e.mp4", envs=[1, 2], per_env=True, size=(160, 120), stop=8, progress=False
    )
    assert [p.name for p in paths] == ["e_env1.mp4", "e_env2.mp4"]
    for p in paths:
        assert decode(p)[0].shape == (8, 120, 160, 3)


def test_env_out_of_range_is_a_clear_error_and_leaves_no_file(walker_file, tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="env 7 out of range.*4 envs"):
        render_rollout(walker_file, out, env=7, progress=False)
    with pytest.raises(ValueError, match="unknown camera"):
        render_rollout(walker_file, out, camera="orbit", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_renders_and_reports_errors_in_one_line(walker_file, tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    assert main(["video", str(walker_file), "--envs", "0,1", "-o", str(out), "--size", "320x240", "--fps", "25",
                 "--stop", "10", "--camera", "side"]) == 0  # fmt: skip
    frames, fps = decode(out)
    assert frames.shape == (10, 240, 320, 3) and fps == pytest.approx(25.0)
    assert main(["video", str(walker_file), "--env", "9", "-o", str(tmp_path / "x.mp4")]) == 1
    err = capsys.readouterr().err
    assert "env 9 out of range" in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()
    assert main(["video", str(tmp_path / "missing.npz")]) == 1


def test_missing_poses_draw_nothing_instead_of_failing(tmp_path, moving_fields):
    fields = moving_fields(steps=10)
    fields["base_pos"][3:6] = np.nan  # e.g. an env whose pose was not recorded for a while
    path = rollrec.save(tmp_path / "nan.npz", fields, dt=0.1)
    for camera in ("top", "follow"):
        frames, _ = decode(
            render_rollout(path, tmp_path / f"{camera}.mp4", camera=camera, size=(160, 120), progress=False)
        )
        assert frames.shape == (10, 120, 160, 3)
