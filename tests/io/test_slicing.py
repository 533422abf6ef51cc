"""``r[key][index]`` reads the selection with pread (issue 25) and gives exactly what numpy gives.

Every index form is compared with ``np.load`` of the same member (numpy's reader, numpy's
indexing): plain files (written by numpy and by rollrec), format-v2 views (detail and window
members placed in ``[T, N, ...]``), sharded rollouts (each shard's member, side by side). The
reads are run as they happen on a warm page cache (one thread, windows merged) and as on a cold
one (threads, read-ahead off), with the merge gap and the largest read made small, so that the
small files here take every path the large ones do.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import rollrec
import rollrec._npz.archive as archive_module
from rollrec import RolloutFormatError
from rollrec._npz import cell_reads
from rollrec._npz.archive import NpzArchive
from rollrec._npz.member_map import MemberMap
from rollrec.engine import Recorder

T, N = 41, 23
rng = np.random.default_rng(5)
BOOL_T = rng.random(T) < 0.4
BOOL_N = rng.random(N) < 0.5
BOOL_TN = rng.random((T, N)) < 0.2

# Index forms on [T, N, ...] members: ints (negative too), slices with steps (reversed, empty, past
# the end), ranges of envs, integer arrays (unsorted, repeated, negative, 2-D), boolean arrays (on
# one axis, on two), ellipsis, newaxis, and their mixes (advanced indices apart or together).
INDEXES = [
    np.s_[0], np.s_[-1], np.s_[7], np.s_[3, 5], np.s_[-2, -3], np.s_[3, 5, 1],
    np.s_[:], np.s_[5:9], np.s_[::3], np.s_[::-1], np.s_[30:2:-4], np.s_[4:4], np.s_[35:99],
    np.s_[:, 0], np.s_[:, -1], np.s_[:, 7], np.s_[:, 3:11], np.s_[:, ::5], np.s_[:, ::-2], np.s_[:, 20:3:-3],
    np.s_[2:30:3, 4:19:2], np.s_[::-7, 1:22:4], np.s_[10:20, 5], np.s_[10, 5:9],
    np.s_[:, [4, 0, 4, 22, -1]], np.s_[[39, 0, 0, 5]], np.s_[[3, 1], [4, 9]], np.s_[[[1, 2], [3, 4]]],
    np.s_[:, np.array([[1, 2], [21, 0]])], np.s_[[5], :, [0]], np.s_[[1, 2, 3], 4:8],
    np.s_[BOOL_T], np.s_[:, BOOL_N], np.s_[BOOL_TN], np.s_[BOOL_T, 3], np.s_[1:9, BOOL_N],
    np.s_[...], np.s_[..., 1], np.s_[5, ...], np.s_[..., 2, 1], np.s_[2, ..., 0], np.s_[None, 3], np.s_[:, None, 2],
    np.s_[3, 4, ...], np.s_[[], 2], np.s_[np.int64(4), np.array(2)],
]
INDEXES_3D = [  # forms that need a trailing axis
    np.s_[:, :, 1], np.s_[:, 2, ::-1], np.s_[[2, 3], :, [0, 2]], np.s_[:, [2, 3], [0, 2]], np.s_[4, [0, 6], 1:],
    np.s_[..., [2, 0]], np.s_[:, :, BOOL_T[:3]], np.s_[BOOL_TN, 1], np.s_[1::2, ..., -1],
]
ALL = INDEXES + INDEXES_3D


def _ids(indexes):
    return [str(i) for i in range(len(indexes))]


@pytest.fixture(params=["warm", "cold"])
def read_mode(request, monkeypatch):
    """Small reads and merge gaps either way; "warm" reads every cell straight into the result (as
    large cells are), "cold" says nothing is cached (threads, no read-ahead) and joins small reads."""
    monkeypatch.setattr(cell_reads, "MERGE_GAP", 24)
    monkeypatch.setattr(cell_reads, "CHUNK", 256)
    if request.param == "warm":
        monkeypatch.setattr(cell_reads, "_SMALL_READ", 0)
    else:
        monkeypatch.setattr(cell_reads._Reader, "_cached", lambda self, offsets: False)
    return request.param


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    return {
        "obs": g.standard_normal((T, N, 3)).astype(np.float32),
        "rew": g.standard_normal((T, N)).astype(np.float32),
        "done": g.random((T, N)) < 0.1,
        "link_pos": g.standard_normal((T, N, 4, 3)).astype(np.float64),
        "steps": np.arange(T, dtype=np.int64),
    }


def _same(got, want, what: str) -> None:
    assert type(got) is type(want) or (isinstance(want, np.ndarray) and type(got) is np.ndarray), what
    assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.asarray(want).dtype, what
    np.testing.assert_array_equal(got, want, err_msg=what)


def _check(member, reference: np.ndarray, index, what: str) -> None:
    try:
        want = reference[index]
    except IndexError:
        with pytest.raises(IndexError):
            member[index]
        return
    _same(member[index], want, what)


@pytest.fixture(scope="module")
def numpy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("np") / "a.npz"
    np.savez(path, **_arrays(1))  # numpy's own layout: members at any offset
    return path


@pytest.mark.parametrize("index", ALL, ids=_ids(ALL))
def test_every_index_of_a_numpy_written_member_matches_np_load(numpy_file, read_mode, index):
    a = NpzArchive(str(numpy_file))
    try:
        with np.load(numpy_file) as ref:
            for name in ("obs", "rew", "done", "link_pos", "steps"):
                _check(a[name], ref[name], index, name)
    finally:
        a.close()


@pytest.fixture
def v1_file(tmp_path, make_fields):
    fields = make_fields(T, N, L=4, extras={"contact": ((2,), np.int16)}, seed=4)
    return rollrec.save(tmp_path / "r.npz", fields, dt=0.02)


@pytest.mark.parametrize("index", ALL, ids=_ids(ALL))
def test_every_index_of_a_rollrec_file_matches_np_load(v1_file, read_mode, index):
    with rollrec.load(v1_file) as r, np.load(v1_file) as ref:
        for key in r.step_keys:
            assert isinstance(r[key], MemberMap), key
            _check(r[key], ref[key], index, key)


@pytest.fixture(scope="module")
def recorded_file(tmp_path_factory):
    """Written by `Recorder` with direct I/O where the file system allows it (data 4 KiB aligned)."""
    path = tmp_path_factory.mktemp("rec") / "r.npz"
    data = _arrays(2)
    with Recorder(path, N, max_steps=T, segment_steps=8) as rec:
        for t in range(T):
            rec.record(obs=data["obs"][t], act=data["link_pos"][t, :, 0], rew=data["rew"][t], done=data["done"][t])
    return path


@pytest.mark.parametrize("index", INDEXES, ids=_ids(INDEXES))
def test_every_index_of_a_recorded_file_matches_np_load(recorded_file, read_mode, index):
    with rollrec.load(recorded_file) as r, np.load(recorded_file) as ref:
        for key in ("obs", "act", "rew", "done"):
            _check(r[key], ref[key], index, key)


# ---- format v2 and sharded rollouts: views assembled from members -----------------------------
VIEW_INDEXES = [  # the forms `ShardedArray` takes: one array among time and env, basic trailing
    np.s_[:], np.s_[4], np.s_[-1], np.s_[:, 5], np.s_[:, -2], np.s_[2:7, 1:6], np.s_[::2, ::3], np.s_[::-1, ::-1],
    np.s_[3, 2:8], np.s_[:, [7, 0, 3, 3]], np.s_[[8, 0, 2], 1:7], np.s_[:, np.arange(N) % 3 == 0], np.s_[BOOL_T, 4],
    np.s_[..., 0], np.s_[1:4, 2:5, ..., 1], np.s_[5, 6, 0], np.s_[:, [1, 6], 0], np.s_[30:2:-5, 1:22:4],
]
V2_CASES = {"detail": {"envs": [1, 2, 3, 9, 17, 22]}, "window": {"capture": "terminated", "window": 6}}


@pytest.fixture(scope="module", params=list(V2_CASES))
def v2_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("v2") / "r.npz"
    data = _arrays(3)
    with Recorder(path, N, segment_steps=8, **V2_CASES[request.param]) as rec:
        for t in range(T):
            rec.record(obs=data["obs"][t], act=data["link_pos"][t, :, 0], rew=data["rew"][t], done=data["done"][t])
    return path


def _dense(r, ref, key: str) -> np.ndarray:
    """``[T, N, ...]`` of ``key`` built from ``np.load``'s member and the file's ``meta`` / episode index."""
    member = ref[key]
    kind = r.kind(key)
    if kind == "all":
        return member
    from rollrec.io.env_array import fill_value

    out = np.full((r.T, r.N, *member.shape[2 if kind == "detail" else 1 :]), fill_value(member.dtype), member.dtype)
    if kind == "detail":
        out[:, r.layout.env_ids[key]] = member
    else:
        for env, windows in r.index.windows_by_env().items():
            for first, n, at in windows:
                out[first : first + n, env] = member[at : at + n]
    return out


@pytest.mark.parametrize("index", VIEW_INDEXES, ids=_ids(VIEW_INDEXES))
def test_every_index_of_a_v2_view_matches_np_load(v2_file, read_mode, index):
    with rollrec.load(v2_file) as r, np.load(v2_file) as ref:
        kinds = {r.kind(k) for k in r.step_keys}
        assert kinds - {"all"}, "the case keeps some members for some envs or steps only"
        for key in r.step_keys:
            _check(r[key], _dense(r, ref, key), index, f"{key} ({r.kind(key)})")
            _check(r.stored(key), ref[key], index[:1] if isinstance(index, tuple) else index, f"stored {key}")


COUNTS = (5, 1, 9, 8)


@pytest.fixture
def sharded_dir(tmp_path, make_fields, write_sharded):
    return write_sharded(tmp_path / "run", make_fields(T, sum(COUNTS), L=2, seed=6), COUNTS)


@pytest.mark.parametrize("index", VIEW_INDEXES, ids=_ids(VIEW_INDEXES))
def test_every_index_of_a_sharded_rollout_matches_np_load_of_its_shards(sharded_dir, read_mode, index):
    shards = sorted(p for p in os.listdir(sharded_dir) if p.endswith(".npz"))
    with rollrec.load(sharded_dir) as r:
        for key in r.step_keys:
            parts = []
            for name in shards:
                with np.load(sharded_dir / name) as ref:
                    parts.append(ref[key])
            _check(r[key], np.concatenate(parts, axis=1), index, key)


# ---- what stays as it was ----------------------------------------------------------------------
def test_a_selection_is_a_new_array_read_with_pread_not_a_view_of_the_map(v1_file, monkeypatch):
    calls = []
    real = cell_reads.read_cells
    monkeypatch.setattr(archive_module, "read_cells", lambda *a: calls.append(a[4:6]) or real(*a))
    with rollrec.load(v1_file) as r:
        got = r["obs"][:, 3]
        assert type(got) is np.ndarray and got.flags.owndata | (got.base is not None and got.base.flags.owndata)
        assert not np.shares_memory(got, np.asarray(r["obs"]))
        assert [list(c) for c in calls[0]] == [list(range(T)), [3]]  # every step, env 3 only
        assert isinstance(r["obs"], np.memmap) and isinstance(np.asarray(r["obs"]), np.ndarray)  # still a map, whole


def test_a_basic_selection_larger_than_lazy_bytes_stays_a_view(v1_file, monkeypatch):
    monkeypatch.setattr(archive_module, "_LAZY_BYTES", 64)
    with rollrec.load(v1_file) as r, np.load(v1_file) as ref:
        view = r["obs"][2:9]
        assert isinstance(view, np.memmap) and np.shares_memory(view, np.asarray(r["obs"]))
        _same(np.asarray(view), ref["obs"][2:9], "lazy view")
        _same(r["obs"][[2, 3]], ref["obs"][[2, 3]], "fancy: read")  # numpy copies these anyway: read


def test_members_held_after_close_still_index_through_the_map(v1_file):
    with np.load(v1_file) as ref:
        want = ref["rew"][:, 2]
    r = rollrec.load(v1_file)
    rew = r["rew"]
    r.close()
    _same(np.asarray(rew[:, 2]), want, "after close")


def test_arrays_derived_from_a_member_index_as_numpy_arrays(v1_file):
    with rollrec.load(v1_file) as r, np.load(v1_file) as ref:
        flat = r["obs"].reshape(-1)  # a view of the map, not the member: plain indexing
        assert flat._select is None
        _same(np.asarray(flat[5:9]), ref["obs"].reshape(-1)[5:9], "derived view")
        _same(r["rew"] * 2, ref["rew"] * 2, "arithmetic")
        assert float(r["rew"].sum()) == pytest.approx(float(ref["rew"].sum()), rel=1e-5)
        assert [row.shape for row in r["rew"]][:2] == [(r.N,), (r.N,)]  # iteration reads rows


def test_a_file_truncated_while_open_raises_on_slicing_instead_of_sigbus(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(T, N, seed=8), dt=0.02)
    with rollrec.load(path) as r:
        os.truncate(path, 4096)
        with pytest.raises(RolloutFormatError, match="truncated while open"):
            r["obs"][:, 3]
        with pytest.raises(RolloutFormatError, match="truncated while open"):
            r["obs"][-1]
