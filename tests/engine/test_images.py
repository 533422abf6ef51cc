"""Cameras in `Recorder.record(images=...)`: what the file holds is what was recorded, frame by frame.

Every frame is a pattern that encodes its step and env (`tests/camera_frames.py`), so each test
compares what `Rollout.images` decodes with the frame recorded at that step for that env:
exactly for lossless cameras (RGB asked lossless, 16-bit and float depth, labels), within the
promised PSNR for the default lossy RGB. Volume options pick the frames of the steps and envs
they keep, checked against the same pattern (and, for windows, against the episode index).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder, flush, gather

pytest.importorskip("av")
pytest.importorskip("zstandard")

#: The constructors as imported, before the ``cuda_branch`` fixture forces their device.
_REAL = {"pipeline": flush.FlushPipeline.__init__, "gather": gather.EpisodeGather.__init__}
SHAPES = {"front": ((12, 16, 3), np.uint8), "depth": ((12, 16), np.uint16), "far": ((6, 8), np.float32),
          "seg": ((6, 8), np.int32)}


def step_fields(N: int, t: int, done: np.ndarray | None = None) -> dict:
    d = np.zeros(N, bool) if done is None else done
    return dict(obs=torch.full((N, 3), float(t)), act=torch.zeros(N, 2), rew=torch.full((N,), float(t)),
                done=torch.from_numpy(d))


def images_at(pattern, t: int, envs, cameras=SHAPES) -> dict:
    return {name: torch.from_numpy(np.ascontiguousarray(pattern(t, envs, shape, dtype)))
            for name, (shape, dtype) in cameras.items()}


def record(path, pattern, *, N=5, T=40, cameras=SHAPES, image_envs=None, done=None, **options):
    """Record T steps of N envs with ``cameras`` (pattern frames; ``image_envs``: the envs the
    images are given for, default all)."""
    with Recorder(path, N, max_steps=T, **options) as rec:
        for t in range(T):
            rec.record(**step_fields(N, t, None if done is None else done[t]),
                       images=images_at(pattern, t, range(N) if image_envs is None else image_envs, cameras))
    return path


def test_every_frame_of_every_env_reads_back_exactly(tmp_path, camera_frames):
    path = record(tmp_path / "run.npz", camera_frames.pattern, image_quality="lossless")
    with np.load(path, allow_pickle=False) as z:  # still a plain npz
        assert {"images/front/packets", "images/front/index", "images/depth/packets", "images/far/index"} <= set(z.files)
        assert z["images/front/packets"].dtype == np.uint8 and z["images/front/index"].shape == (40 * 5, 5)
        meta = json.loads(str(z["meta"][()]))
    assert meta["format_version"] == 3 and set(meta["images"]) == set(SHAPES)
    assert meta["images"]["front"]["codec"] == "zstd" and meta["images"]["depth"]["codec"] == "zstd"
    with rollrec.load(path) as r:
        assert r.step_keys == ["obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms"]
        for name, (shape, dtype) in SHAPES.items():
            assert r.cameras[name].shape == shape and r.cameras[name].dtype == np.dtype(dtype).str
            for env in range(5):
                frames = r.images(name, env)
                assert len(frames) == 40 and list(frames.steps) == list(range(40))
                want = np.stack([camera_frames.pattern(t, [env], shape, dtype)[0] for t in range(40)])
                got = np.stack(list(frames))
                assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_rgb_is_lossy_by_default_and_keeps_35_db(tmp_path, walker_camera, camera_frames):
    rgb, depth = walker_camera
    T, N = rgb.shape[:2]
    with Recorder(tmp_path / "run.npz", N, max_steps=T) as rec:
        for t in range(T):
            rec.record(**step_fields(N, t), images={"front": rgb[t], "depth": depth[t]})
    with rollrec.load(tmp_path / "run.npz") as r:
        assert r.cameras["front"].codec == "h264" and r.cameras["depth"].codec == "zstd"
        for env in range(N):
            front = r.images("front", env)
            assert min(camera_frames.psnr(front[t], rgb[t, env]) for t in range(T)) >= 35
            np.testing.assert_array_equal(r.images("depth", env)[:], depth[:, env])  # depth: always lossless


def test_random_access_returns_the_frame_of_the_asked_step(tmp_path, camera_frames):
    cams = {"front": SHAPES["front"], "depth": SHAPES["depth"]}
    path = record(tmp_path / "run.npz", camera_frames.pattern, T=90, cameras=cams, image_keyframe_interval=8,
                  image_quality="lossless")
    rng = np.random.default_rng(0)
    with rollrec.load(path) as r:
        views = {(c, e): r.images(c, e) for c in cams for e in (0, 3)}
        for _ in range(120):  # jumps back and forth, across key frames, interleaving four streams
            (cam, env), t = list(views)[rng.integers(4)], int(rng.integers(90))
            shape, dtype = cams[cam]
            want = camera_frames.pattern(t, [env], shape, dtype)[0]
            np.testing.assert_array_equal(views[cam, env][t], want)
            np.testing.assert_array_equal(views[cam, env].at(t), want)
        f = views["front", 3]
        np.testing.assert_array_equal(f[-1], camera_frames.pattern(89, [3], *cams["front"])[0])
        np.testing.assert_array_equal(f[[5, 70, 6]], np.stack([camera_frames.pattern(t, [3], *cams["front"])[0]
                                                               for t in (5, 70, 6)]))
        assert f[10:20].shape == (10, 12, 16, 3)
        with pytest.raises(IndexError, match="no frame 90"):
            f[90]
        with pytest.raises(KeyError, match="step 95"):
            f.at(95)
        frame = f[4]
        frame[...] = 0  # the caller's copy: the next read is unchanged
        np.testing.assert_array_equal(f[4], camera_frames.pattern(4, [3], *cams["front"])[0])


def test_lossy_random_access_matches_sequential_decoding(tmp_path, walker_camera):
    rgb, _ = walker_camera
    T, N = rgb.shape[:2]
    with Recorder(tmp_path / "run.npz", N, max_steps=T, image_keyframe_interval=10) as rec:
        for t in range(T):
            rec.record(**step_fields(N, t), images={"front": rgb[t]})
    with rollrec.load(tmp_path / "run.npz") as r:
        in_order = list(r.images("front", 2))
        jumping = r.images("front", 2)
        for t in (37, 3, 29, 30, 11, 47, 0, 19):
            np.testing.assert_array_equal(jumping[t], in_order[t])  # decoding from its key frame: the same pixels


@pytest.mark.parametrize("given", ["all envs", "detail envs only"])
def test_envs_keeps_the_detail_envs_frames(tmp_path, camera_frames, given):
    detail = [1, 3]
    image_envs = None if given == "all envs" else detail
    path = record(tmp_path / "run.npz", camera_frames.pattern, envs=detail, image_envs=image_envs, image_quality="lossless")
    with rollrec.load(path) as r:
        assert r.meta["env_ids"]["images/front"] == detail and r.kind("images/front") == "detail"
        for env in range(5):
            frames = r.images("depth", env)
            if env not in detail:
                assert len(frames) == 0
                with pytest.raises(IndexError, match="detail envs only: 1, 3"):
                    frames[0]
                continue
            want = np.stack([camera_frames.pattern(t, [env], *SHAPES["depth"])[0] for t in range(40)])
            np.testing.assert_array_equal(frames[:], want)


def test_every_keeps_the_frame_of_each_rows_first_step(tmp_path, camera_frames):
    path = record(tmp_path / "run.npz", camera_frames.pattern, T=41, every=4, image_quality="lossless")
    with rollrec.load(path) as r:
        assert r.T == 11
        for env in (0, 4):
            frames = r.images("front", env)
            assert list(frames.steps) == list(range(11))
            for row in range(11):
                np.testing.assert_array_equal(frames[row], camera_frames.pattern(row * 4, [env], *SHAPES["front"])[0])


def test_capture_keeps_the_frames_of_captured_windows(tmp_path, camera_frames):
    N, T, W = 4, 60, 6
    rng = np.random.default_rng(3)
    done = rng.random((T, N)) < 0.06
    cams = {"front": SHAPES["front"], "depth": SHAPES["depth"]}
    path = record(tmp_path / "run.npz", camera_frames.pattern, N=N, T=T, cameras=cams, done=done,
                  capture=lambda ends: ends.done, window=W, segment_steps=8, image_quality="lossless")
    with rollrec.load(path) as r:
        assert r.kind("images/front") == "window"
        windows = r.index.windows_by_env()
        assert windows, "some episodes were captured"
        for env in range(N):
            frames = r.images("front", env)
            spans = windows.get(env, [])
            steps = [s for first, n, _ in spans for s in range(first, first + n)]
            assert list(frames.steps) == steps
            for s in steps:  # each captured step's frame, whichever window it is in
                np.testing.assert_array_equal(frames.at(s), camera_frames.pattern(s, [env], *cams["front"])[0])
            # and the windows are the episodes' last W steps
            for (first, n, _), stop in zip(spans, [e["stop"] for e in r.episodes() if e["env"] == env and e["captured"]]):
                assert first + n == stop and n == min(W, n)


def test_fields_and_all_env_fields_name_cameras(tmp_path, camera_frames):
    cams = {"front": SHAPES["front"], "depth": SHAPES["depth"]}
    path = record(tmp_path / "a.npz", camera_frames.pattern, cameras=cams, fields=["obs", "depth"])
    with rollrec.load(path) as r:
        assert set(r.cameras) == {"depth"}
    path = record(tmp_path / "b.npz", camera_frames.pattern, cameras=cams, envs=[2],
                  all_env_fields=["rew", "done", "truncated", "base_pos", "base_quat", "depth"], image_quality="lossless")
    with rollrec.load(path) as r:
        assert r.kind("images/depth") == "all" and r.kind("images/front") == "detail"
        np.testing.assert_array_equal(r.images("depth", 4)[7], camera_frames.pattern(7, [4], *cams["depth"])[0])
        assert len(r.images("front", 4)) == 0 and len(r.images("front", 2)) == 40


def test_partial_flushes_keep_each_stream_continuous(tmp_path, walker_camera, camera_frames):
    """Jobs of a row or two (the flush interval at every step): streams continue across them."""
    rgb, _ = walker_camera
    T, N = rgb.shape[:2]
    with Recorder(tmp_path / "run.npz", N, max_steps=T, flush_interval_s=1e-6, segment_steps=16) as rec:
        for t in range(T):
            rec.record(**step_fields(N, t), images={"front": rgb[t]})
            time.sleep(0.001)
    with rollrec.load(tmp_path / "run.npz") as r:
        index = np.load(tmp_path / "run.npz")["images/front/index"]
        assert index[:, 4].sum() == N * 2  # key frames at 0 and 32 of each stream only: no stream restarted
        for env in range(N):
            assert min(camera_frames.psnr(f, rgb[t, env]) for t, f in enumerate(r.images("front", env))) >= 35


def test_one_encoder_thread_writes_the_same_streams(tmp_path, camera_frames):
    a = record(tmp_path / "a.npz", camera_frames.pattern, image_threads=1)
    b = record(tmp_path / "b.npz", camera_frames.pattern, image_threads=3)
    with np.load(a) as za, np.load(b) as zb:
        for name in ("images/front/packets", "images/front/index", "images/seg/packets"):
            np.testing.assert_array_equal(za[name], zb[name])


def test_the_cuda_branch_writes_the_same_streams(tmp_path, camera_frames, cuda_branch):
    """The flush pipeline's CUDA branch (staging, events; the stand-in, not a GPU) hands the
    encoders the same rows: the same packets as the CPU branch."""
    cams = {"front": SHAPES["front"], "depth": SHAPES["depth"]}
    options = dict(cameras=cams, segment_steps=8, envs=[0, 2], flush_interval_s=None)
    cuda = record(tmp_path / "cuda.npz", camera_frames.pattern, **options)
    assert cuda_branch.ops("register") and cuda_branch.ops("record"), "the CUDA branch ran (staging pinned, events)"
    with pytest.MonkeyPatch.context() as mp:  # the fixture's device forcing bypassed: the CPU branch
        mp.setattr(flush.FlushPipeline, "__init__", _REAL["pipeline"])
        mp.setattr(gather.EpisodeGather, "__init__", _REAL["gather"])
        cpu = record(tmp_path / "cpu.npz", camera_frames.pattern, **options)
    with np.load(cuda) as zc, np.load(cpu) as zp:
        for name in zp.files:
            if name != "meta":
                np.testing.assert_array_equal(zc[name], zp[name], err_msg=name)


def test_bad_images_are_refused_at_the_first_call(tmp_path, camera_frames):
    base = step_fields(2, 0)

    def first(images, **options):
        rec = Recorder(tmp_path / f"bad{len(list(tmp_path.iterdir()))}.npz", 2, **options)
        try:
            rec.record(**base, images=images)
        finally:
            rec._closed = True  # nothing was written: no file to finish

    with pytest.raises(ValueError, match="identifiers"):
        first({"front cam": torch.zeros(2, 4, 4, 3, dtype=torch.uint8)})
    with pytest.raises(ValueError, match=r"\[N, H, W\] or \[N, H, W, C\]"):
        first({"front": torch.zeros(2, 4, dtype=torch.uint8)})
    with pytest.raises(ValueError, match="expected N=2 envs"):
        first({"front": torch.zeros(3, 4, 4, 3, dtype=torch.uint8)})
    with pytest.raises(ValueError, match="bfloat16"):
        first({"depth": torch.zeros(2, 4, 4, dtype=torch.bfloat16)})
    with pytest.raises(ValueError, match="name of a field"):
        first({"obs": torch.zeros(2, 4, 4, dtype=torch.uint8)})
    with pytest.raises(ValueError, match="a dict of camera name"):
        first(torch.zeros(2, 4, 4, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="keep their dtype"):
        first({"depth": torch.zeros(2, 4, 4, dtype=torch.uint16)}, dtypes={"depth": torch.float32})
    with pytest.raises(ValueError, match="image_quality"):
        Recorder(tmp_path / "q.npz", 2, image_quality="best")
    with pytest.raises(ValueError, match="image_crf"):
        Recorder(tmp_path / "q.npz", 2, image_crf=99)


def test_later_steps_must_give_the_same_cameras(tmp_path):
    rec = Recorder(tmp_path / "run.npz", 2)
    img = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    rec.record(**step_fields(2, 0), images={"front": img})
    with pytest.raises(ValueError, match="camera 'front' is missing"):
        rec.record(**step_fields(2, 1))
    with pytest.raises(ValueError, match="camera 'side' is new"):
        rec.record(**step_fields(2, 1), images={"front": img, "side": img})
    with pytest.raises(ValueError, match=r"expected shape \(2, 4, 4, 3\)"):
        rec.record(**step_fields(2, 1), images={"front": torch.zeros(2, 5, 4, 3, dtype=torch.uint8)})
    rec.record(**step_fields(2, 1), images={"front": img})
    rec.close()
    with rollrec.load(tmp_path / "run.npz") as r:
        assert len(r.images("front", 1)) == 2


def test_detail_images_need_envs(tmp_path):
    rec = Recorder(tmp_path / "run.npz", 4)
    with pytest.raises(ValueError, match="expected N=4 envs"):
        rec.record(**step_fields(4, 0), images={"front": torch.zeros(2, 4, 4, 3, dtype=torch.uint8)})
    rec = Recorder(tmp_path / "run2.npz", 4, envs=[0, 1], all_env_fields=["rew", "done", "truncated", "base_pos",
                                                                          "base_quat", "front"])
    with pytest.raises(ValueError, match="kept for every env"):
        rec.record(**step_fields(4, 0), images={"front": torch.zeros(2, 4, 4, 3, dtype=torch.uint8)})


def test_encoder_threads_yield_the_cpu_to_the_recording_thread(tmp_path, camera_frames, monkeypatch):
    """Where cores are short, `record()` runs first: the encoder threads' nice value is 10 above its own."""
    import os
    import sys
    import threading

    from rollrec.engine import images

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread nice values are Linux's")
    seen = []

    def column_spy(fn):  # a stream's encoder is made on the thread that encodes it
        def wrapped(*args, **kwargs):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return fn(*args, **kwargs)
        return wrapped

    from rollrec.media import codecs

    monkeypatch.setattr(codecs, "encoder", column_spy(codecs.encoder))
    monkeypatch.setattr("rollrec.media.streams.encoder", column_spy(codecs.encoder))
    record(tmp_path / "run.npz", camera_frames.pattern, T=4, image_threads=2)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen and all(nice == min(19, mine + images.ENCODER_NICENESS) for nice in seen), (seen, mine)
