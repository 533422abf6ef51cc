"""LeRobot v3.0 export, read back against the rollout value by value.

In CI the dataset is read with pyarrow and PyAV against LeRobot's v3 layout (the paths, columns
and metadata of ``lerobot/datasets/utils.py`` and ``lerobot_dataset.py`` at v0.4.4). Where a venv
with the ``lerobot`` package itself exists (``ROLLREC_LEROBOT_PYTHON``, default
``/work/venvs/lerobot/bin/python``: lerobot 0.4.4, the last release for Python 3.11, installed
beside torch 2.13 CPU; not in CI), `test_lerobot_dataset_reads_every_frame` reads it with
``LeRobotDataset`` too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rollrec

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

LEROBOT_PYTHON = Path(os.environ.get("ROLLREC_LEROBOT_PYTHON", "/work/venvs/lerobot/bin/python"))


def _episodes(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def _frames(root: Path) -> dict[str, np.ndarray]:
    table = pa.concat_tables([pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet"))])
    out = {}
    for name in table.column_names:
        col = table[name].combine_chunks()
        out[name] = np.stack(col.to_numpy(zero_copy_only=False)) if pa.types.is_fixed_size_list(col.type) else col.to_numpy(zero_copy_only=False)
    return out


def test_every_frame_and_episode_matches_the_rollout(camera_rollout, reference, tmp_path):
    ref = reference(camera_rollout)
    out = rollrec.export(camera_rollout, tmp_path / "ds", to="lerobot", cameras=[], task="reach")
    info = json.loads((out / "meta" / "info.json").read_text())
    episodes = _episodes(out)
    data = _frames(out)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 50 and info["video_path"] is None
    assert info["total_episodes"] == len(ref.episodes) == len(episodes)
    assert info["total_frames"] == ref.fields["rew"].size == len(data["index"])
    assert info["splits"] == {"train": f"0:{len(ref.episodes)}"}
    assert info["features"]["observation.state"]["names"] == ["joint_pos[0]", "joint_pos[1]", "joint_pos[2]",
                                                              "phase[0]", "phase[1]"]
    assert info["features"]["next.reward_terms"]["names"] == ["term_0", "term_1", "term_2"]
    assert info["features"]["observation.contacts"] == {"dtype": "int16", "shape": [4], "names": None}
    np.testing.assert_array_equal(data["index"], np.arange(len(data["index"])))
    for i, (ep, (env, start, stop, end, ret)) in enumerate(zip(episodes, ref.episodes)):
        assert (ep["episode_index"], ep["rollrec/env"], ep["rollrec/start"], ep["rollrec/stop"], ep["rollrec/end"]) == \
            (i, env, start, stop, end)
        assert ep["rollrec/return"] == pytest.approx(ret, rel=1e-12)
        assert ep["tasks"] == ["reach"] and ep["length"] == stop - start
        rows = slice(ep["dataset_from_index"], ep["dataset_to_index"])
        np.testing.assert_array_equal(data["episode_index"][rows], i)
        np.testing.assert_array_equal(data["frame_index"][rows], np.arange(stop - start))
        np.testing.assert_array_equal(data["timestamp"][rows], (np.arange(stop - start) / 50).astype(np.float32))
        np.testing.assert_array_equal(data["task_index"][rows], 0)
        f = {k: v[start:stop, env] for k, v in ref.fields.items() if v.ndim >= 2 and v.shape[:2] == ref.fields["rew"].shape}
        np.testing.assert_array_equal(data["observation.state"][rows], f["obs"])
        np.testing.assert_array_equal(data["action"][rows], f["act"])
        np.testing.assert_array_equal(data["next.reward"][rows], f["rew"])
        np.testing.assert_array_equal(data["next.done"][rows], f["done"])
        np.testing.assert_array_equal(data["next.truncated"][rows], f["truncated"])
        np.testing.assert_array_equal(data["next.reward_terms"][rows], f["rew_terms"])
        np.testing.assert_array_equal(data["observation.base_quat"][rows], f["base_quat"])
        np.testing.assert_array_equal(data["observation.link_pos"][rows], f["link_pos"].reshape(stop - start, -1))
        np.testing.assert_array_equal(data["observation.contacts"][rows], f["contacts"].reshape(stop - start, -1))
        assert data["observation.contacts"].dtype == np.int16
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert tasks.to_pylist() == [{"task_index": 0, "__index_level_0__": "reach"}]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]


def test_stats_are_those_of_the_exported_frames(camera_rollout, tmp_path):
    out = rollrec.export(camera_rollout, tmp_path / "ds", to="lerobot", cameras=[])
    stats = json.loads((out / "meta" / "stats.json").read_text())
    data = _frames(out)
    for key in ("observation.state", "action", "next.reward", "observation.link_quat"):
        x = data[key].astype(np.float64).reshape(len(data["index"]), -1)
        s = stats[key]
        np.testing.assert_allclose(s["min"], x.min(0))
        np.testing.assert_allclose(s["max"], x.max(0))
        np.testing.assert_allclose(s["mean"], x.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s["std"], x.std(0), rtol=1e-9, atol=1e-12)
        assert s["count"] == [len(x)]
        assert np.all(np.asarray(s["q01"]) <= np.asarray(s["q50"])) and np.all(np.asarray(s["q50"]) <= np.asarray(s["q99"]))
    for ep in _episodes(out):  # each episode's own stats, in its metadata row
        rows = slice(ep["dataset_from_index"], ep["dataset_to_index"])
        np.testing.assert_allclose(ep["stats/action/mean"], data["action"][rows].astype(np.float64).mean(0), rtol=1e-9)
        np.testing.assert_allclose(ep["stats/action/q50"], np.quantile(data["action"][rows].astype(np.float64), 0.5, axis=0))


def _decode(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as c:
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]
    return [t for t, _ in frames], [img for _, img in frames]


@pytest.mark.parametrize("lossless", [True, False])
def test_camera_frames_lie_at_their_timestamps_in_the_videos(camera_rollout, reference, tmp_path, lossless):
    ref = reference(camera_rollout)
    out = rollrec.export(camera_rollout, tmp_path / "ds", to="lerobot", lossless_video=lossless)
    info = json.loads((out / "meta" / "info.json").read_text())
    feature = info["features"]["observation.images.front"]
    assert feature["dtype"] == "video" and feature["shape"] == [32, 48, 3]
    assert feature["info"]["video.fps"] == 50 and feature["info"]["video.codec"] == "h264"
    decoded: dict[Path, tuple[list[float], list[np.ndarray]]] = {}
    worst = 0.0
    for ep in _episodes(out):
        path = out / info["video_path"].format(video_key="observation.images.front",
                                               chunk_index=ep["videos/observation.images.front/chunk_index"],
                                               file_index=ep["videos/observation.images.front/file_index"])
        times, imgs = decoded.setdefault(path, _decode(path))
        env, start, stop = ep["rollrec/env"], ep["rollrec/start"], ep["rollrec/stop"]
        t0 = ep["videos/observation.images.front/from_timestamp"]
        assert ep["videos/observation.images.front/to_timestamp"] == pytest.approx(t0 + (stop - start) / 50)
        for i in range(stop - start):  # LeRobot looks a frame up at from_timestamp + timestamp
            k = int(np.argmin(np.abs(np.asarray(times) - (t0 + i / 50))))
            assert abs(times[k] - (t0 + i / 50)) < 1e-4
            diff = np.abs(imgs[k].astype(np.int16) - ref.fields["front"][start + i, env].astype(np.int16))
            if lossless:
                assert not diff.any(), f"episode {ep['episode_index']} frame {i} differs"
            worst = max(worst, float(diff.mean()))
    assert worst < (0.5 if lossless else 6.0)
    stats = json.loads((out / "meta" / "stats.json").read_text())["observation.images.front"]
    assert np.asarray(stats["mean"]).shape == (3, 1, 1)
    assert 0 <= np.min(stats["min"]) <= np.max(stats["max"]) <= 1


def test_episode_filters_pick_what_the_index_says(camera_rollout, reference, tmp_path):
    ref = reference(camera_rollout)
    cases = [({"episodes": "terminated"}, ref.of(end="terminated")),
             ({"episodes": "truncated", "envs": [2]}, ref.of(end="truncated", envs=[2])),
             ({"episodes": "unfinished"}, ref.of(end="unfinished")),
             ({"min_return": 0.0}, ref.of(min_return=0.0))]
    for i, (options, expected) in enumerate(cases):
        assert expected, options
        out = rollrec.export(camera_rollout, tmp_path / f"ds{i}", to="lerobot", cameras=[], **options)
        got = [(e["rollrec/env"], e["rollrec/start"], e["rollrec/stop"], e["rollrec/end"]) for e in _episodes(out)]
        assert got == [e[:4] for e in expected], options


def test_a_depth_camera_is_refused_naming_it(tmp_path, make_fields):
    fields = make_fields(6, 2)
    rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    from rollrec.exports.cameras import Camera
    from rollrec.exports.fields import step_fields
    from rollrec.exports.selection import select_episodes
    from rollrec.exports.to_lerobot import write_lerobot

    with rollrec.load(tmp_path / "r.npz") as r:
        depth = Camera("wrist_depth", (8, 8), np.dtype(np.float32), None)
        with pytest.raises(ValueError, match=r"camera 'wrist_depth' \(float32 \[8, 8\]\): a LeRobot v3 video holds RGB"):
            write_lerobot(r, tmp_path, select_episodes(r), step_fields(r), [depth], fps=50, task="t")


def test_a_rate_that_is_no_integer_asks_for_fps(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(6, 2), dt=0.0173)
    with pytest.raises(ValueError, match=r"integer fps; this rollout steps every 0.0173 s .*pass --fps"):
        rollrec.export(path, tmp_path / "ds", to="lerobot")
    assert not (tmp_path / "ds").exists()
    rollrec.export(path, tmp_path / "ds", to="lerobot", fps=60)
    assert json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["fps"] == 60


_LEROBOT_CHECK = r'''
import json, sys, types
# torchvision's PyPI wheel links CUDA's libraries; beside the CPU torch its C ops cannot load and
# registering their fake kernels fails at import. LeRobotDataset never calls those ops (nms, roi_align):
# skip the registrations only.
for m in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
    sys.modules[m] = types.ModuleType(m)
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ref = np.load(sys.argv[2])
ds = LeRobotDataset("rollrec/export-test", root=sys.argv[1])
checked = 0
for i in range(len(ds)):
    item = ds[i]
    ep = ds.meta.episodes[int(item["episode_index"])]
    env, t = ep["rollrec/env"], ep["rollrec/start"] + int(item["frame_index"])
    for key, member in (("observation.state", "obs"), ("action", "act"), ("next.reward", "rew"),
                        ("next.done", "done"), ("observation.base_pos", "base_pos")):
        got = item[key].numpy().reshape(-1)
        want = ref[member][t, env].reshape(-1)
        assert np.array_equal(got, want), (i, key, got, want)
    img = (item["observation.images.front"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(img, ref["front"][t, env]), (i, "frame")
    assert item["task"] == "reach"
    checked += 1
print(json.dumps({"frames": checked, "episodes": ds.num_episodes, "backend": ds.video_backend}))
'''


@pytest.mark.skipif(not LEROBOT_PYTHON.exists(), reason=f"no venv with lerobot at {LEROBOT_PYTHON}")
def test_lerobot_dataset_reads_every_frame(camera_rollout, reference, tmp_path):
    out = rollrec.export(camera_rollout, tmp_path / "ds", to="lerobot", task="reach", lossless_video=True)
    run = subprocess.run([str(LEROBOT_PYTHON), "-c", _LEROBOT_CHECK, str(out), str(camera_rollout)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["frames"] == reference(camera_rollout).fields["rew"].size
    assert result["episodes"] == len(reference(camera_rollout).episodes)
    print(result, file=sys.stderr)


def test_many_small_batches_and_files_give_the_same_dataset(camera_rollout, tmp_path, monkeypatch):
    """Episodes' rows and metadata rows merged two at a time, and a new data and metadata file for
    every episode: the same frames and episodes, each episode's rows in the file its row names."""
    from rollrec.exports import to_lerobot

    a = rollrec.export(camera_rollout, tmp_path / "a", to="lerobot", cameras=[])
    monkeypatch.setattr(to_lerobot, "_MERGE_BATCHES", 2)
    monkeypatch.setattr(to_lerobot, "DATA_FILE_MB", 0)
    b = rollrec.export(camera_rollout, tmp_path / "b", to="lerobot", cameras=[])
    ea, eb = _episodes(a), _episodes(b)
    assert len(list((b / "data").rglob("*.parquet"))) == len(eb) > 2
    assert len(list((b / "meta" / "episodes").rglob("*.parquet"))) == len(eb)
    where = ("data/chunk_index", "data/file_index", "meta/episodes/chunk_index", "meta/episodes/file_index")
    assert [{k: v for k, v in e.items() if k not in where} for e in ea] == \
           [{k: v for k, v in e.items() if k not in where} for e in eb]
    fa, fb = _frames(a), _frames(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        np.testing.assert_array_equal(fa[key], fb[key])
    for ep in eb:
        path = b / "data" / f"chunk-{ep['data/chunk_index']:03d}" / f"file-{ep['data/file_index']:03d}.parquet"
        index = pq.read_table(path)["index"].to_numpy()
        assert (index.min(), index.max() + 1) == (ep["dataset_from_index"], ep["dataset_to_index"])
