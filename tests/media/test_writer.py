"""Writing videos: what a player decodes, how batches are tiled, and how bad input fails."""

from __future__ import annotations

import os
import time

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from rollrec.media.frames import tile_frames, to_uint8_rgb
from rollrec.media.writer import VideoWriter, partial_video_path, save_env_videos, save_video


def decode(path) -> tuple[np.ndarray, float]:
    with imageio.get_reader(str(path)) as reader:
        fps = reader.get_meta_data()["fps"]
        return np.stack([f for f in reader.iter_data()]), fps


def ramp(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A frame whose brightness encodes ``t`` (survives compression)."""
    return np.full((h, w, 3), 20 + 10 * t, np.uint8)


# ---- frames ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame",
    [
        np.full((4, 6, 3), 255, np.uint8),
        np.ones((4, 6, 3), np.float32),
        np.ones((4, 6), np.float64),
        np.ones((4, 6, 1), np.float32),
        np.concatenate([np.ones((4, 6, 3)), np.zeros((4, 6, 1))], -1),
        torch.ones(4, 6, 3),
        torch.full((4, 6, 4), 255, dtype=torch.uint8),
    ],
    ids=["uint8", "float32", "gray2d", "gray1", "rgba", "torch-float", "torch-rgba-u8"],
)
def test_to_uint8_rgb_accepts_every_frame_kind(frame):
    out = to_uint8_rgb(frame)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert (out == 255).all()


def test_to_uint8_rgb_clips_floats_and_rejects_bad_input():
    assert to_uint8_rgb(np.array([[[-1.0, 0.5, 2.0]]])).tolist() == [[[0, 128, 255]]]
    with pytest.raises(TypeError, match="uint8.*float"):
        to_uint8_rgb(np.zeros((4, 4, 3), np.int64))
    with pytest.raises(ValueError, match="channels"):
        to_uint8_rgb(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        to_uint8_rgb(np.zeros((4,), np.uint8))


def test_tile_frames_lays_out_rows_and_columns_with_labels():
    batch = np.stack([np.full((20, 30, 3), 40 * (i + 1), np.uint8) for i in range(5)])
    grid = tile_frames(batch, labels=False)
    assert grid.shape == (2 * 20, 3 * 30, 3)  # 5 tiles -> 2 rows x 3 cols
    for i in range(5):
        r, c = divmod(i, 3)
        assert (grid[r * 20 + 15, c * 30 + 15] == 40 * (i + 1)).all()
    assert (grid[20:, 60:] == 0).all()  # empty cell
    labelled = tile_frames(batch[:2], cols=1)
    assert labelled.shape == (40, 30, 3)
    assert labelled[:12, :].max() == 255  # white label text on each tile
    with pytest.raises(ValueError, match="labels"):
        tile_frames(batch, labels=["a"])


# ---- writing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: [ramp(t) for t in range(12)],
        lambda: (ramp(t) for t in range(12)),
        lambda: np.stack([ramp(t) for t in range(12)]),
        lambda: torch.from_numpy(np.stack([ramp(t) for t in range(12)])).float() / 255.0,
    ],
    ids=["list", "generator", "array", "torch-float"],
)
def test_save_video_round_trips_count_size_fps_and_content(tmp_path, make):
    path = save_video(make(), tmp_path / "v.mp4", fps=24)
    assert path == tmp_path / "v.mp4"
    frames, fps = decode(path)
    assert frames.shape == (12, 48, 64, 3)
    assert fps == pytest.approx(24.0)
    means = frames.reshape(12, -1).mean(1)
    assert np.all(np.diff(means) > 5)  # frames change over time, in order
    assert not partial_video_path(path).exists()


def test_odd_sizes_are_padded_to_even_not_resized(tmp_path):
    frames, _ = decode(save_video([ramp(t, 31, 45) for t in range(3)], tmp_path / "odd.mp4"))
    assert frames.shape == (3, 32, 46, 3)


def test_batched_frames_become_a_grid_or_one_file_per_env(tmp_path):
    steps = [np.stack([ramp(t + 3 * e, 32, 40) for e in range(4)]) for t in range(5)]  # [N=4, H, W, 3]
    grid, _ = decode(save_video(steps, tmp_path / "grid.mp4", fps=10))
    assert grid.shape == (5, 64, 80, 3)  # 2x2 tiles
    sel, _ = decode(save_video(steps, tmp_path / "sel.mp4", envs=[3, 1, 2], cols=3))
    assert sel.shape == (5, 32, 120, 3)
    paths = save_env_videos(iter(steps), tmp_path / "each.mp4", envs=[0, 2])
    assert [p.name for p in paths] == ["each_env0.mp4", "each_env2.mp4"]
    f0, f2 = decode(paths[0])[0], decode(paths[1])[0]
    assert f0.shape == f2.shape == (5, 32, 40, 3)
    assert f2.mean() > f0.mean() + 30  # env 2 is brighter than env 0


def test_video_writer_streams_frame_by_frame(tmp_path):
    with VideoWriter(tmp_path / "w.mp4", fps=5, size=(64, 48)) as writer:
        for t in range(7):
            writer.write(ramp(t))
            assert not (tmp_path / "w.mp4").exists()  # only the partial file exists while writing
        assert writer.frames_written == 7
    frames, fps = decode(tmp_path / "w.mp4")
    assert frames.shape[0] == 7 and fps == pytest.approx(5.0)


# ---- errors leave no file -------------------------------------------------------------------
def _bad_sizes():
    yield ramp(0)
    yield ramp(1, 40, 64)


@pytest.mark.parametrize(
    "frames, error, match",
    [
        ([np.zeros((4, 4, 2), np.uint8)], ValueError, "channels"),
        ([np.zeros((4, 4, 3), np.int32)], TypeError, "dtype int32"),
        (_bad_sizes(), ValueError, "frame 1 is 64x40.*64x48"),
        ([], ValueError, "no frames"),
        (np.zeros((5, 6), np.uint8), ValueError, "T, H, W"),
    ],
    ids=["channels", "dtype", "mixed-sizes", "empty", "rank"],
)
def test_bad_frames_raise_and_leave_no_file(tmp_path, frames, error, match):
    path = tmp_path / "bad.mp4"
    with pytest.raises(error, match=match):
        save_video(frames, path)
    assert os.listdir(tmp_path) == []


def test_error_inside_writer_block_removes_the_partial(tmp_path):
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "x.mp4") as writer:
        writer.write(ramp(0))
        deadline = time.monotonic() + 5
        while not partial_video_path(tmp_path / "x.mp4").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # ffmpeg creates the file when it starts
        assert partial_video_path(tmp_path / "x.mp4").exists()
        raise RuntimeError("simulated crash")
    assert os.listdir(tmp_path) == []


def test_unwritable_path_is_a_clear_os_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_video([ramp(0)], tmp_path / "nope" / "v.mp4")
    with pytest.raises(IsADirectoryError):
        save_video([ramp(0)], tmp_path)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="not writable"):
            save_video([ramp(0)], locked / "v.mp4")


def test_existing_file_survives_a_failed_rewrite(tmp_path):
    path = save_video([ramp(t) for t in range(3)], tmp_path / "keep.mp4")
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_video([ramp(0), ramp(1, 10, 10)], path)
    assert path.read_bytes() == before


def test_env_out_of_range_in_a_batch(tmp_path):
    steps = [np.zeros((2, 8, 8, 3), np.uint8)]
    with pytest.raises(ValueError, match="env 5 out of range"):
        save_video(steps, tmp_path / "g.mp4", envs=[5])
    with pytest.raises(ValueError, match="env 2 out of range"):
        save_env_videos(steps, tmp_path / "e.mp4", envs=[0, 2])
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
def test_a_symlink_planted_at_the_partial_video_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.mp4"
    os.symlink(victim, partial_video_path(out))
    save_video([ramp(t) for t in range(4)], out, fps=10)
    assert victim.read_text() == "precious"
    assert decode(out)[0].shape[0] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "victim.txt"]


@pytest.mark.parametrize("how", ["save_video", "VideoWriter"])
def test_a_gif_path_writes_a_gif_from_the_library_too(tmp_path, how, gif_frames):
    """The extension picks the format in the library, not only in ``rollrec video`` (ffmpeg's gif
    muxer takes only the gif codec: with the mp4 defaults it failed with "no output")."""
    frames = np.zeros((5, 32, 48, 3), np.uint8)
    for t in range(5):
        frames[t, :, 8 * t : 8 * t + 8] = (255, 40, 0)  # a red bar moving right
    out = tmp_path / "x.gif"
    if how == "save_video":
        assert save_video(frames, out, fps=10) == out
    else:
        with VideoWriter(out, 10) as writer:
            writer.write_many(frames)
    assert out.read_bytes()[:6] == b"GIF89a"
    got = gif_frames(out)
    assert got.shape == (5, 32, 48, 3)
    assert np.abs(got.astype(int) - frames).mean() < 3.0  # palette rounding only
    assert not list(tmp_path.glob("*.partial*"))
