"""Reading cameras from files that break the format: one `RolloutFormatError` naming the file and the
problem, at open (members, meta) or when the camera is first read (its index), never a crash."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rollrec
from rollrec.engine import Recorder
from rollrec.format.errors import RolloutFormatError
from rollrec.io.summary import summarize

pytest.importorskip("av")
pytest.importorskip("zstandard")


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory, camera_frames):
    path = tmp_path_factory.mktemp("images") / "run.npz"
    with Recorder(path, 3, max_steps=12, image_keyframe_interval=4) as rec:
        for t in range(12):
            rec.record(obs=np.zeros((3, 2), np.float32), act=np.zeros((3, 1), np.float32), rew=np.zeros(3, np.float32),
                       done=np.zeros(3, bool), images={"front": camera_frames.pattern(t, range(3), (8, 10, 3)),
                                                       "depth": camera_frames.pattern(t, range(3), (8, 10), np.uint16)})
    return path


def rewrite(src, dst, *, drop=(), meta=None, **members):
    """``src`` saved again by numpy with members changed (and ``meta`` entries replaced)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    if meta is not None:
        m = json.loads(str(arrays["meta"][()]))
        m.update(meta)
        arrays["meta"] = np.array(json.dumps(m))
    arrays.update(members)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def test_info_summarises_the_cameras(camera_file):
    s = summarize(camera_file)
    assert set(s["cameras"]) == {"front", "depth"} and not any(k.startswith("images/") for k in s["fields"])
    front = s["cameras"]["front"]
    assert front["codec"] == "h264" and front["frames"] == 36 and front["raw_bytes"] == 36 * 8 * 10 * 3
    assert front["ratio"] == front["raw_bytes"] / front["bytes"]
    from rollrec.cli.info import format_summary

    text = format_summary(s)
    assert "cameras" in text and "h264 (lossy, CRF 16, veryfast)" in text and "zstd (lossless)" in text


def test_a_file_numpy_rewrote_still_reads(camera_file, tmp_path, camera_frames):
    path = rewrite(camera_file, tmp_path / "copy.npz")
    with rollrec.load(path) as r:
        np.testing.assert_array_equal(r.images("depth", 2)[11], camera_frames.pattern(11, [2], (8, 10), np.uint16)[0])


@pytest.mark.parametrize(("change", "message"), [
    (dict(drop=("images/front/index",)), "member 'images/front/index' the file does not hold"),
    (dict(meta={"images": {"front": {"codec": "vp9", "shape": [8, 10, 3], "dtype": "|u1", "keyframe_interval": 4}}}),
     "unknown codec 'vp9'"),
    (dict(meta={"images": {"front": {"codec": "h264", "shape": [8, 10], "dtype": "|u1", "keyframe_interval": 4}}}),
     "codec 'h264' stores uint8 RGB frames"),
    (dict(meta={"images": {"front": {"codec": "zstd", "shape": [8, 10, 3], "dtype": "|O", "keyframe_interval": 4}}}),
     "'dtype' must be a numeric numpy dtype"),
    (dict(meta={"format_version": 2}), "meta 'images' needs format version 3"),
    (dict(**{"images/extra/packets": np.zeros(4, np.uint8)}), "'images/extra/packets' is named like an image stream"),
    (dict(**{"images/front/index": np.zeros((3, 4), np.int64)}), "'images/front/index' must be int64 [F, 5]"),
    (dict(**{"images/front/packets": np.zeros(4, np.float32)}), "'images/front/packets' must be uint8 [B]"),
])
def test_broken_members_and_meta_are_refused_at_open(camera_file, tmp_path, change, message):
    path = rewrite(camera_file, tmp_path / "bad.npz", **change)
    with pytest.raises(RolloutFormatError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        rollrec.load(path)


def index_of(camera_file, camera="front"):
    with np.load(camera_file) as z:
        return z[f"images/{camera}/index"].copy(), z[f"images/{camera}/packets"].copy()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda ix, pk: ix.__setitem__((0, 2), pk.size), "packet lies outside the packets member"),
    (lambda ix, pk: ix.__setitem__((5, 3), -1), "packet lies outside the packets member"),
    (lambda ix, pk: ix.__setitem__((5, 0), 12), "row is outside 0..11"),
    (lambda ix, pk: ix.__setitem__((5, 1), 3), "column is outside 0..2"),
    (lambda ix, pk: ix.__setitem__((5, 4), 7), "other than 0 and 1"),
    (lambda ix, pk: ix.__setitem__((0, 4), 0), "do not start with a key frame"),
    (lambda ix, pk: ix.__setitem__((3, 0), 0), "two frames for one step"),
])
def test_a_broken_index_is_refused_when_the_camera_is_read(camera_file, tmp_path, edit, message):
    index, packets = index_of(camera_file)
    edit(index, packets)
    path = rewrite(camera_file, tmp_path / "bad.npz", **{"images/front/index": index})
    with rollrec.load(path) as r, pytest.raises(RolloutFormatError, match=message):  # opening reads no index
        r.images("front", 0)[0]


@pytest.mark.parametrize("camera", ["front", "depth"])
def test_damaged_packets_are_refused_when_decoded(camera_file, tmp_path, camera):
    index, packets = index_of(camera_file, camera)
    packets[index[1, 2] : index[1, 2] + index[1, 3]] = 0xFF  # env 1's first frame
    path = rewrite(camera_file, tmp_path / "bad.npz", **{f"images/{camera}/packets": packets})
    with rollrec.load(path) as r:
        r.images(camera, 0)[3]  # other streams decode
        with pytest.raises(RolloutFormatError, match=f"camera '{camera}'"):
            r.images(camera, 1)[2]


def test_an_unknown_camera_names_the_cameras(camera_file):
    with rollrec.load(camera_file) as r, pytest.raises(KeyError, match=r"no camera 'back' \(cameras: depth, front\)"):
        r.images("back", 0)


def test_a_sharded_rollout_reads_each_envs_frames_from_its_shard(tmp_path, make_fields, write_sharded, camera_frames):
    """Shards of 1 and 3 envs, each recorded by a `Recorder` with its envs' camera frames."""
    fields = make_fields(7, 4)
    run = write_sharded(tmp_path / "run", fields, (1, 3))
    for shard in sorted(run.glob("rank-*.npz")):
        with rollrec.load(shard) as r:
            info, steps = r.meta["shard"], [{k: np.array(r[k][t]) for k in ("obs", "act", "rew", "done")}
                                            for t in range(r.T)]
        envs = range(info["env_offset"], info["env_offset"] + info["num_envs"])
        with Recorder(shard, len(envs), meta={"shard": info}, dt=0.02, env_name="sharded") as rec:
            for t, step in enumerate(steps):
                rec.record(**step, images={"depth": camera_frames.pattern(t, envs, (6, 5), np.uint16)})
    with rollrec.load(run) as r:
        assert list(r.cameras) == ["depth"]
        for env in range(4):
            frames = r.images("depth", env)
            assert frames.env == env and len(frames) == 7
            np.testing.assert_array_equal(frames[6], camera_frames.pattern(6, [env], (6, 5), np.uint16)[0])
