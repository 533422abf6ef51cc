"""Cameras recorded as encoded streams (format v3, ``Recorder.record(images=...)``) export for real:
every exported frame is the frame recorded at that step for that env (lossless streams, so exact),
read back by each target's own reader (PyAV for LeRobot's videos, h5py, Rerun's dataframe API),
and a camera kept only in captured windows exports exactly the rows that hold its frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rollrec
from rollrec.exports.cameras import cameras, frame_rows, read_frames
from rollrec.exports.selection import Episode, Selection, keep_rows_held

pytest.importorskip("av")
pytest.importorskip("zstandard")

N, T = 3, 30
FRONT, DEPTH = ((16, 24, 3), np.uint8), ((16, 24), np.uint16)


def _done(T: int, N: int) -> np.ndarray:
    t = np.arange(T)[:, None]
    return (t + 5 * np.arange(N)[None]) % 11 == 10  # staggered episodes of 11 steps


def _record(path, pattern, *, done, cameras, **options):
    import torch

    from rollrec.engine import Recorder

    T, N = done.shape
    rng = np.random.default_rng(0)
    with Recorder(path, N, max_steps=T, dt=0.02, env_name="cams", **options) as rec:
        for t in range(T):
            rec.record(obs=torch.from_numpy(rng.standard_normal((N, 4)).astype(np.float32)),
                       act=torch.from_numpy(rng.standard_normal((N, 2)).astype(np.float32)),
                       rew=torch.from_numpy(rng.random(N).astype(np.float32)), done=torch.from_numpy(done[t]),
                       images={name: torch.from_numpy(np.ascontiguousarray(pattern(t, range(N), *spec)))
                               for name, spec in cameras.items()})
    return path


@pytest.fixture(scope="module")
def streams(tmp_path_factory, camera_frames):
    """3 envs x 30 steps with an RGB camera ``front`` and a uint16 ``depth`` camera, stored lossless."""
    path = tmp_path_factory.mktemp("streams") / "run.npz"
    return _record(path, camera_frames.pattern, done=_done(T, N), cameras={"front": FRONT, "depth": DEPTH},
                   image_quality="lossless", image_keyframe_interval=4)


def _episodes(r):
    return sorted((e["env"], e["start"], e["stop"]) for e in r.episodes())


def test_streams_are_cameras_read_by_step(streams, camera_frames):
    with rollrec.load(streams) as r:
        depth, front = cameras(r)  # by name
        assert (front.name, front.member, front.is_rgb, front.shape) == ("front", None, True, FRONT[0])
        assert (depth.name, depth.is_rgb, depth.shape, depth.dtype) == ("depth", False, DEPTH[0], np.uint16)
        np.testing.assert_array_equal(frame_rows(r, front, 1), np.arange(T))
        np.testing.assert_array_equal(read_frames(r, front, 1, (5, 13)),
                                      np.stack([camera_frames.pattern(t, [1], *FRONT)[0] for t in range(5, 13)]))
        np.testing.assert_array_equal(read_frames(r, depth, 2, (0, 3)),
                                      np.stack([camera_frames.pattern(t, [2], *DEPTH)[0] for t in range(3)]))


def test_robomimic_holds_every_frame_of_both_cameras(streams, camera_frames, tmp_path):
    h5py = pytest.importorskip("h5py")
    out = rollrec.export(streams, tmp_path / "d.hdf5", to="robomimic")
    with rollrec.load(streams) as r:
        assert r.meta["format_version"] == 3 and set(r.cameras) == {"front", "depth"}
        expected = _episodes(r)
    with h5py.File(out) as f:
        demos = sorted(f["data"], key=lambda k: int(k.split("_")[1]))
        assert len(demos) == len(expected)
        for name, (env, start, stop) in zip(demos, expected):
            g = f["data"][name]
            assert (g.attrs["env"], g.attrs["start"], g.attrs["stop"]) == (env, start, stop)
            front, depth = g["obs/front_image"][()], g["obs/depth"][()]
            assert front.dtype == np.uint8 and depth.dtype == np.uint16
            for i, t in enumerate(range(start, stop)):
                np.testing.assert_array_equal(front[i], camera_frames.pattern(t, [env], *FRONT)[0])
                np.testing.assert_array_equal(depth[i], camera_frames.pattern(t, [env], *DEPTH)[0])


def test_lerobot_videos_hold_the_stream_frames_and_a_depth_camera_is_refused(streams, camera_frames, tmp_path):
    av = pytest.importorskip("av")
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    with pytest.raises(ValueError, match=r"camera 'depth' \(uint16 \[16, 24\]\): a LeRobot v3 video holds RGB"):
        rollrec.export(streams, tmp_path / "refused", to="lerobot")
    assert not (tmp_path / "refused").exists()
    out = rollrec.export(streams, tmp_path / "ds", to="lerobot", cameras=["front"], lossless_video=True)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.front"]["shape"] == [16, 24, 3]
    episodes = pq.read_table(sorted((out / "meta" / "episodes").rglob("*.parquet"))).to_pylist()
    key = "observation.images.front"
    decoded = {}
    for ep in episodes:
        path = out / info["video_path"].format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                               file_index=ep[f"videos/{key}/file_index"])
        if path not in decoded:
            with av.open(str(path)) as c:
                decoded[path] = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24"))
                                 for f in c.decode(c.streams.video[0])]
        times = np.array([t for t, _ in decoded[path]])
        env, start, stop = ep["rollrec/env"], ep["rollrec/start"], ep["rollrec/stop"]
        t0 = ep[f"videos/{key}/from_timestamp"]
        for i, t in enumerate(range(start, stop)):
            k = int(np.argmin(np.abs(times - (t0 + i * 0.02))))
            assert abs(times[k] - (t0 + i * 0.02)) < 1e-4
            np.testing.assert_array_equal(decoded[path][k][1], camera_frames.pattern(t, [env], *FRONT)[0])
    assert sum(ep["length"] for ep in episodes) == N * T


def test_rerun_logs_each_steps_image_and_depth(streams, camera_frames, tmp_path):
    rr = pytest.importorskip("rerun")
    pytest.importorskip("datafusion")
    out = rollrec.export(streams, tmp_path / "r.rrd", to="rerun", envs=[2])
    table = rr.chunk.RrdReader(str(out)).stream().collect().reader(index="step").to_arrow_table()
    steps = table.column("step").to_numpy()
    for camera, column, (shape, dtype) in (("front", "Image:buffer", FRONT), ("depth", "DepthImage:buffer", DEPTH)):
        values = table.column(f"/envs/2/cameras/{camera}:{column}").to_pylist()
        rows = [i for i, v in enumerate(values) if v is not None]
        np.testing.assert_array_equal(steps[rows], np.arange(T))
        for i in rows:
            buf = np.asarray(values[i][0] if len(values[i]) == 1 else values[i], np.uint8)
            np.testing.assert_array_equal(buf.view(dtype).reshape(shape),
                                          camera_frames.pattern(int(steps[i]), [2], shape, dtype)[0])


def test_a_camera_kept_in_captured_windows_exports_those_rows(tmp_path, camera_frames):
    h5py = pytest.importorskip("h5py")
    W = 5
    done = _done(40, 4)
    path = _record(tmp_path / "w.npz", camera_frames.pattern, done=done, cameras={"front": FRONT},
                   capture=lambda ends: ends.done, window=W, segment_steps=8, image_quality="lossless")
    with rollrec.load(path) as r:
        assert r.kind("images/front") == "window"
        held = {env: list(r.images("front", env).steps) for env in range(4)}
    out = rollrec.export(path, tmp_path / "w.hdf5", to="robomimic")
    with h5py.File(out) as f:
        assert len(f["data"]) > 0
        for name in f["data"]:
            g = f["data"][name]
            env, start, stop = (int(g.attrs[k]) for k in ("env", "start", "stop"))
            front = g["obs/front_image"][()]
            assert 0 < len(front) <= min(W, stop - start)
            for i, row in enumerate(range(stop - len(front), stop)):
                assert row in held[env]
                np.testing.assert_array_equal(front[i], camera_frames.pattern(row, [env], *FRONT)[0])


def _episode(env: int, start: int, stop: int) -> Episode:
    return Episode(index=0, env=env, start=start, stop=stop, row_start=start, row_stop=stop, end="terminated",
                   ret=0.0, captured=True)


def test_keep_rows_held_keeps_each_episodes_held_tail():
    selection = Selection([_episode(0, 0, 10), _episode(0, 10, 20), _episode(1, 0, 8), _episode(1, 8, 12)], skipped=1)
    held = {0: np.array([2, 3, 5, 6, 7, 8, 9, 12, 13]), 1: np.arange(0, 12)}
    out = keep_rows_held(selection, held.__getitem__)
    # env 0: rows 5..9 are the held tail of 0..10; 10..20 does not hold its last row (19): left out
    assert [(e.env, e.row_start, e.row_stop) for e in out.episodes] == [(0, 5, 10), (1, 0, 8), (1, 8, 12)]
    assert out.skipped == 2 and out.rows == 5 + 8 + 4
