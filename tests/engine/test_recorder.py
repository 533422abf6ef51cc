"""Recorder: the file holds exactly what record() was given, however the ring wraps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder


class NaiveRecorder:
    """The reference: keep every step on the host, stack at the end."""

    def __init__(self):
        self.steps: list[dict[str, np.ndarray]] = []

    def record(self, **fields):
        def np_(v):
            return v.numpy().copy() if isinstance(v, torch.Tensor) else np.array(v)

        row = {}
        for k, v in fields.items():
            if v is None:
                continue
            if k == "reward_terms":
                row["rew_terms"] = np.stack([np_(t).astype(np.float32) for t in v.values()], -1)
            elif k == "obs" and isinstance(v, dict):
                row["obs"] = np.concatenate([np_(t).reshape(len(np_(t)), -1) for t in v.values()], -1)
            else:
                row[k] = np_(v)
        self.steps.append(row)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack([s[k] for s in self.steps]) for k in self.steps[0]}


def random_step(rng: np.random.Generator, N: int, *, dict_obs=False, numpy=False, links=True, extras=True):
    def t(a):
        return a if numpy else torch.from_numpy(a)

    obs = (
        {"joint": t(rng.normal(size=(N, 3)).astype(np.float32)), "image": t(rng.normal(size=(N, 2, 2)).astype(np.float32))}
        if dict_obs
        else t(rng.normal(size=(N, 6)).astype(np.float32))
    )
    step = dict(
        obs=obs,
        act=t(rng.normal(size=(N, 2)).astype(np.float64)),
        rew=t(rng.normal(size=N).astype(np.float32)),
        done=t(rng.random(N) < 0.2),
        truncated=t(rng.random(N) < 0.1),
        base_pos=t(rng.normal(size=(N, 3)).astype(np.float32)),
        base_quat=t(rng.normal(size=(N, 4)).astype(np.float32)),
        reward_terms={"a": t(rng.normal(size=N).astype(np.float32)), "b": t(rng.normal(size=N).astype(np.float32))},
    )
    if links:
        step["link_pos"] = t(rng.normal(size=(N, 3, 3)).astype(np.float32))
        step["link_quat"] = t(rng.normal(size=(N, 3, 4)).astype(np.float32))
    if extras:
        step["contact"] = t(rng.integers(0, 5, size=(N, 4)).astype(np.int32))
        step["flag"] = t(rng.random(N) < 0.5)
    return step


def record_both(tmp_path, T, N, *, max_steps=None, segment_steps=4, seed=0, **step_kwargs):
    rng = np.random.default_rng(seed)
    ref = NaiveRecorder()
    path = tmp_path / "run.npz"
    with Recorder(path, N, segment_steps=segment_steps, max_steps=max_steps, dt=0.05) as rec:
        for _ in range(T):
            step = random_step(rng, N, **step_kwargs)
            rec.record(**step)
            ref.record(**step)
    return rec, ref.arrays(), rollrec.load(path)


def assert_same(r, ref):
    for key, expected in ref.items():
        got = np.asarray(r[key])
        assert got.shape == expected.shape, key
        assert got.dtype == (np.float32 if key == "rew_terms" else expected.dtype), key
        np.testing.assert_array_equal(got, expected.astype(got.dtype), err_msg=key)


@pytest.mark.parametrize("max_steps", [None, 50, 23, 10])
def test_bit_identical_across_wraparounds(tmp_path, max_steps):
    # 23 steps, 4-step segments, 2-segment ring: 5 wrap-arounds and a partial last segment (3 rows).
    rec, ref, r = record_both(tmp_path, 23, 5, max_steps=max_steps)
    assert r.T == 23 and r.N == 5
    assert rec.segment_length == (4 if max_steps is None or max_steps >= 4 else max_steps)
    assert_same(r, ref)
    assert r.reward_term_names == ["a", "b"]
    assert r.meta["extras"] == ["contact", "flag"]
    np.load(r.path, allow_pickle=False)  # plain numpy reads it


def test_single_env_keeps_env_axis(tmp_path):
    _, ref, r = record_both(tmp_path, 9, 1)
    assert r["rew"].shape == (9, 1) and r["base_pos"].shape == (9, 1, 3)
    assert_same(r, ref)


def test_dict_obs_is_flattened_with_layout(tmp_path):
    _, ref, r = record_both(tmp_path, 11, 3, dict_obs=True)
    assert r["obs"].shape == (11, 3, 7)
    assert_same(r, ref)
    assert r.meta["obs_layout"] == [
        {"name": "joint", "start": 0, "stop": 3, "shape": [3]},
        {"name": "image", "start": 3, "stop": 7, "shape": [2, 2]},
    ]


def test_numpy_input(tmp_path):
    _, ref, r = record_both(tmp_path, 10, 4, numpy=True)
    assert_same(r, ref)


def test_missing_optional_fields_get_format_defaults(tmp_path):
    path = tmp_path / "min.npz"
    with Recorder(path, 2) as rec:
        for _ in range(3):
            rec.record(obs=torch.ones(2, 4), act=torch.zeros(2, 1), rew=torch.ones(2), done=torch.zeros(2, dtype=torch.bool))
    r = rollrec.load(path)
    assert not np.asarray(r["truncated"]).any()
    np.testing.assert_array_equal(r["base_quat"][0, 0], [1, 0, 0, 0])
    assert r["rew_terms"].shape == (3, 2, 0)


def test_in_place_mutation_after_record_does_not_reach_file(tmp_path):
    path = tmp_path / "mut.npz"
    obs = torch.zeros(3, 2)
    with Recorder(path, 3, segment_steps=2) as rec:
        for t in range(5):
            obs.fill_(t)
            rec.record(obs=obs, act=obs, rew=obs[:, 0], done=torch.zeros(3, dtype=torch.bool))
            obs.add_(100)  # the env reuses its buffer
    r = rollrec.load(path)
    np.testing.assert_array_equal(np.asarray(r["obs"])[:, 0, 0], [0, 1, 2, 3, 4])


def test_ring_does_not_grow_with_rollout_length(tmp_path):
    sizes = []
    for T in (10, 400):
        with Recorder(tmp_path / f"len{T}.npz", 8, segment_steps=5) as rec:
            for _ in range(T):
                rec.record(obs=torch.ones(8, 16), act=torch.ones(8, 2), rew=torch.ones(8), done=torch.zeros(8, dtype=torch.bool))
            sizes.append(rec.ring_bytes)
    assert sizes[0] == sizes[1] > 0
    assert rollrec.load(tmp_path / "len400.npz").T == 400


def test_segment_length_capped_by_bytes(tmp_path):
    with Recorder(tmp_path / "cap.npz", 100, segment_steps=256, max_segment_bytes=100 * 64 * 4 * 10) as rec:
        rec.record(obs=torch.ones(100, 64), act=torch.ones(100, 1), rew=torch.ones(100), done=torch.zeros(100, dtype=torch.bool))
        assert rec.segment_length < 10


def test_file_appears_atomically(tmp_path):
    path = tmp_path / "atomic.npz"
    rec = Recorder(path, 2, segment_steps=2)
    for _ in range(5):
        rec.record(obs=torch.ones(2, 1), act=torch.ones(2, 1), rew=torch.ones(2), done=torch.zeros(2, dtype=torch.bool))
    assert not path.exists() and (tmp_path / "atomic.npz.partial").exists()
    rec.close()
    assert path.exists() and not (tmp_path / "atomic.npz.partial").exists()
    assert not (tmp_path / "atomic.npz.partial.json").exists()


def test_exception_in_with_block_keeps_what_was_recorded(tmp_path):
    path = tmp_path / "exc.npz"
    with pytest.raises(RuntimeError, match="sim exploded"), Recorder(path, 2, segment_steps=2) as rec:
        for t in range(3):
            rec.record(obs=torch.full((2, 1), float(t)), act=torch.ones(2, 1), rew=torch.ones(2), done=torch.zeros(2, dtype=torch.bool))
        raise RuntimeError("sim exploded")
    r = rollrec.load(path)
    assert r.T == 3 and r.meta["interrupted"] == "RuntimeError"


def test_video_of_chosen_envs_alongside_rollout(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "vid.npz"
    N = 4
    with Recorder(path, N, dt=0.05, video_envs=[1, 3]) as rec:
        for t in range(12):
            rec.record(obs=torch.ones(N, 2), act=torch.ones(N, 1), rew=torch.ones(N), done=torch.zeros(N, dtype=torch.bool))
            if t % 3 == 0:  # the env renders every third step
                frames = torch.zeros(N, 32, 48, 3, dtype=torch.uint8)
                frames[:, :, : 4 * (t + 1)] = 255
                rec.record_frame(frames)
    meta = rollrec.load(path).meta["video"]
    assert meta["file"] == "vid.mp4" and meta["envs"] == [1, 3] and meta["steps"] == [0, 3, 6, 9]
    assert meta["fps"] == 20
    video = np.stack(list(iio.imiter(tmp_path / "vid.mp4")))
    assert video.shape[0] == 4 and video.shape[2] == 2 * 48  # two tiles side by side
    assert video[0].mean() < video[-1].mean()  # frames change over time


@pytest.mark.parametrize(("max_steps", "steps"), [(4_000, 30), (None, 150)], ids=["stopped-early", "unknown-length"])
def test_finished_file_gives_unused_space_back(tmp_path, max_steps, steps, collapses):
    # Stopped at 30 of 4,000 reserved steps, or 150 steps of unknown length (room reserved for as
    # many as the disk holds): the holes between members are removed in place where the file
    # system can (ext4, XFS), else the members slide down and holes under 1 MiB stay, taking no
    # disk. Either way byte 0 starts the zip (np.load) and every value is kept.
    path = tmp_path / "run.npz"
    with Recorder(path, 64, segment_steps=2, max_steps=max_steps) as rec:
        for t in range(steps):
            rec.record(obs=torch.full((64, 64), float(t)), act=torch.zeros(64, 4), rew=torch.full((64,), float(t)),
                       done=torch.zeros(64, dtype=torch.bool))
    data = steps * 64 * (64 * 4 + 4 * 4 + 4 + 1 + 1 + 12 + 16)
    st = path.stat()
    if max_steps is not None or collapses:
        assert data < st.st_size < data + (64 << 10)
    else:
        assert st.st_blocks * 512 < data + (256 << 10)
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["obs"][:, 0, 0], np.arange(steps))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]
