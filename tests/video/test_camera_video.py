"""``rollrec video --camera NAME``: the recorded camera's frames make the video (alone, in a grid of
envs, or beside the 3D render), each frame the one recorded at its step for its env."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.engine import Recorder

av = pytest.importorskip("av")
pytest.importorskip("zstandard")

T, N, H, W = 30, 3, 24, 32


def color(t: int, env: int) -> np.ndarray:
    return np.array([(37 * t) % 256, (11 * t + 60 * env) % 256, 128], np.uint8)


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera_video") / "run.npz"
    with Recorder(path, N, max_steps=T, envs=[0, 2], link_names=["base", "foot"]) as rec:
        for t in range(T):
            pos = np.zeros((N, 2, 3), np.float32)
            pos[:, 0, 0] = t * 0.02
            front = np.stack([np.broadcast_to(color(t, e), (H, W, 3)) for e in range(N)])
            depth = np.broadcast_to((1000 + 10 * t + np.arange(W)).astype(np.uint16), (N, H, W)).copy()
            rec.record(obs=np.zeros((N, 2), np.float32), act=np.zeros((N, 1), np.float32), rew=np.zeros(N, np.float32),
                       done=np.zeros(N, bool), base_pos=pos[:, 0], link_pos=pos,
                       link_quat=np.tile(np.array([1, 0, 0, 0], np.float32), (N, 2, 1)),
                       images={"front": front, "depth": depth})
    return path


def frames_of(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def center(frames: np.ndarray, x0: int = 0, x1: int | None = None) -> np.ndarray:
    """Mean colour of the middle of each frame (between columns x0 and x1), ``[n, 3]``."""
    part = frames[:, :, x0:x1]
    h, w = part.shape[1:3]
    return part[:, h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(len(frames), -1, 3).mean(1)


def test_a_recorded_camera_alone(camera_file, tmp_path):
    out = tmp_path / "front.mp4"
    assert main(["video", str(camera_file), "--camera", "front", "--env", "2", "-o", str(out), "--quiet",
                 "--no-overlay"]) == 0
    frames = frames_of(out)
    assert frames.shape == (T, 480, 640, 3)  # the camera's aspect, 480 high
    want = np.stack([color(t, 2) for t in range(T)])
    assert np.abs(center(frames) - want).max() <= 8


def test_a_grid_of_envs_and_per_env_files(camera_file, tmp_path):
    out = tmp_path / "grid.mp4"
    assert main(["video", str(camera_file), "--camera", "front", "--envs", "0,2", "--size", "640x240", "-o", str(out),
                 "--quiet", "--no-overlay"]) == 0
    frames = frames_of(out)
    for k, env in enumerate((0, 2)):
        got = center(frames, 320 * k, 320 * (k + 1))
        assert np.abs(got - np.stack([color(t, env) for t in range(T)])).max() <= 8
    assert main(["video", str(camera_file), "--camera", "front", "--envs", "0,2", "--per-env", "-o",
                 str(tmp_path / "each.mp4"), "--quiet"]) == 0
    assert (tmp_path / "each_env0.mp4").exists() and (tmp_path / "each_env2.mp4").exists()


def test_beside_the_render(camera_file, tmp_path):
    out = tmp_path / "both.mp4"
    assert main(["video", str(camera_file), "--camera", "front", "--beside", "--view", "top", "--env", "0",
                 "-o", str(out), "--quiet", "--no-overlay", "--stop", "10"]) == 0
    frames = frames_of(out)
    assert frames.shape == (10, 480, 1280, 3)  # the render 640 wide, the camera 640 (its aspect at 480)
    assert np.abs(center(frames, 640) - np.stack([color(t, 0) for t in range(10)])).max() <= 8
    render = center(frames, 0, 640)
    assert np.abs(render - np.stack([color(t, 0) for t in range(10)])).max() > 30  # the left half is the render


def test_depth_is_drawn_with_a_colour_map(camera_file, tmp_path):
    out = tmp_path / "depth.mp4"
    assert main(["video", str(camera_file), "--camera", "depth", "--env", "0", "-o", str(out), "--quiet",
                 "--no-overlay"]) == 0
    frames = frames_of(out)
    first, last = center(frames[:1])[0], center(frames[-1:])[0]  # one scale for the video: 1000 .. 1321
    assert first[2] > first[0] and last[0] > last[2] + 40  # near (the first frames) blue, far (the last) red


def test_view_presets_still_work_and_errors_are_one_line(camera_file, tmp_path, capsys):
    assert main(["video", str(camera_file), "--camera", "top", "-o", str(tmp_path / "top.mp4"), "--stop", "3",
                 "--quiet"]) == 0  # not a recorded camera: the render's preset, as before
    for args, message in (
        (["--camera", "nope"], "has no recorded camera of that name (cameras: depth, front) and it is not a view preset"),
        (["--beside"], "--beside puts a recorded camera beside the render"),
        (["--camera", "top", "--view", "side"], "both choose the render's view"),
        (["--camera", "front", "--env", "1"], "camera 'front' has no frame for env 1 (it keeps the frames of the "
                                              "detail envs only: 0, 2)"),
    ):
        assert main(["video", str(camera_file), *args, "-o", str(tmp_path / "x.mp4"), "--quiet"]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    assert not (tmp_path / "x.mp4").exists()


def test_render_video_takes_a_recorded_camera(camera_file, tmp_path):
    out = rollrec.render_video(camera_file, tmp_path / "api.mp4", env=2, image="front", size=(64, 48), progress=False)
    assert frames_of(out).shape == (T, 48, 64, 3)
