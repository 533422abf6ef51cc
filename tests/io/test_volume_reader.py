"""Reading format-v2 files: r[key] as [T, N, ...], r.env(k), r.read, r.episodes(), r.episode(i)."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.engine import Recorder
from rollrec.io.env_array import fill_value
from rollrec.format.errors import RolloutFormatError

N = 6
CASES = {
    "detail": {"envs": [1, 2, 4]},
    "detail-every": {"envs": [0, 5], "every": 3, "all_env_fields": ("rew", "done")},
    "trigger": {"capture": "terminated", "window": 4},
    "trigger-every-nothing-light": {"capture": 0.0, "window": 3, "every": 2, "all_env_fields": ()},
    "every": {"every": 2},
    "plain": {},
}


@pytest.fixture(params=list(CASES))
def case(request, tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    options = CASES[request.param]
    steps = make_steps(33, N, seed=21, burst=(12,))
    path = tmp_path / "r.npz"
    with Recorder(path, N, segment_steps=4, **options) as rec:
        for s in steps:
            rec.record(**s)
    expected = expected_file(steps, N, **options)
    return path, expected, options


def dense_expected(expected, options, key):
    """``[T, N, ...]`` of ``key`` as `Rollout.__getitem__` shows it, and the mask of cells the file holds."""
    full = expected["_dense"][key]
    kind = expected["_kinds"][key]
    have = np.ones(full.shape[:2], bool)
    if kind == "detail":
        have[:] = False
        have[:, options["envs"]] = True
    elif kind == "window":
        have[:] = False
        for env, first, n in expected["_windows"]:
            have[first : first + n, env] = True
    out = np.where(have.reshape(*have.shape, *[1] * (full.ndim - 2)), full, fill_value(full.dtype)).astype(full.dtype)
    return out, have


def test_every_member_reads_as_t_by_n_with_fill_where_the_file_holds_nothing(case):
    path, expected, options = case
    with rollrec.load(path) as r:
        assert (r.T, r.N, r.every) == (expected["_rows"], N, options.get("every", 1))
        assert set(r.step_keys) == set(expected["_kinds"])
        for key in r.step_keys:
            want, _ = dense_expected(expected, options, key)
            got = r[key]
            assert got.shape == want.shape and got.dtype == want.dtype, key
            np.testing.assert_array_equal(np.asarray(got[:, :]), want, err_msg=key)
            np.testing.assert_array_equal(got[3], want[3], err_msg=key)
            np.testing.assert_array_equal(got[:, 4], want[:, 4], err_msg=key)
            np.testing.assert_array_equal(got[2:9, [5, 1]], want[2:9, [5, 1]], err_msg=key)
            np.testing.assert_array_equal(r.read(key, (1, 8), (2, 6)), want[1:8, 2:6], err_msg=key)
            assert r.kind(key) == expected["_kinds"][key]
            np.testing.assert_array_equal(r.stored(key), expected[key], err_msg=key)


def test_env_gives_what_exists_for_that_env(case):
    path, expected, options = case
    with rollrec.load(path) as r:
        for env in range(N):
            got = r.env(env)
            want = {}
            for key in expected["_kinds"]:
                dense, have = dense_expected(expected, options, key)
                if have[:, env].any():
                    want[key] = dense[:, env]
            assert sorted(got) == sorted(want), env
            for key, value in want.items():
                np.testing.assert_array_equal(got[key], value, err_msg=f"{key} env {env}")
            assert r.has_detail(env) == (len(want) == len(expected["_kinds"]))
            obs = r.env(env, ["obs"])["obs"] if "obs" in expected["_kinds"] else None
            if obs is not None:  # asked for by name: fill values where the file holds none
                np.testing.assert_array_equal(obs, dense_expected(expected, options, "obs")[0][:, env])


def test_episodes_list_every_episode_of_every_env(case):
    path, expected, options = case
    with rollrec.load(path) as r:
        eps = r.episodes()
        if "episodes" in expected:
            table, returns = expected["episodes"], expected["episode_return"]
        else:  # a v1 file: derived from done/rew, every episode captured
            table, returns = r.index.env, None
            table = np.stack([r.index.env, r.index.start, r.index.stop, r.index.end, r.index.captured, r.index.row,
                              r.index.rows], 1)
        assert len(eps) == len(table)
        k = options.get("every", 1)
        for e, row in zip(eps, table):
            env, start, stop, end, captured, _, rows = row.tolist()
            assert (e["env"], e["start"], e["stop"]) == (env, start, stop)
            assert e["end"] == ("unfinished", "terminated", "truncated")[end]
            assert (e["terminated"], e["truncated"], e["captured"]) == (end == 1, end == 2, bool(captured))
            assert e["window_start"] == (None if rows == 0 else ((stop - 1) // k - rows + 1) * k)
        if returns is not None:
            np.testing.assert_array_equal([e["return"] for e in eps], returns)
        ends = sum(e["end"] != "unfinished" for e in eps)
        assert ends == int(np.asarray(r.stored("done") if "done" in r else []).sum()) or k > 1 or r.kind("done") != "all"


def test_episode_returns_the_fields_of_its_kept_rows(case):
    path, _, options = case
    k = options.get("every", 1)
    with rollrec.load(path) as r:
        eps = r.episodes()
        for i in (0, 1, len(eps) // 2, len(eps) - 1, -1):
            e = eps[i]
            first, last = -(-e["start"] // k), (e["stop"] - 1) // k
            got = r.episode(i)
            want = {key: v[first : last + 1] for key, v in r.env(e["env"]).items()}
            assert sorted(got) == sorted(want)
            for key, value in want.items():
                np.testing.assert_array_equal(got[key], value, err_msg=key)
                assert len(got[key]) == max(0, last - first + 1)
        with pytest.raises(IndexError, match="episode .* out of range"):
            r.episode(len(eps))


def test_plain_files_read_exactly_as_before(tmp_path, make_fields):
    fields = make_fields(9, 3, L=2)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.1)
    with rollrec.load(path) as r:
        assert r.meta["format_version"] == 1 and r.every == 1
        assert isinstance(r["obs"], np.memmap)  # a view of the file, not a copy
        np.testing.assert_array_equal(r["obs"], fields["obs"])
        bounds = r.episode_bounds(1)
        eps = [e for e in r.episodes() if e["env"] == 1]
        assert [[e["start"], e["stop"]] for e in eps] == bounds.tolist()
        np.testing.assert_allclose([e["return"] for e in eps], r.episode_returns(1))


def test_a_damaged_index_is_refused_naming_the_file(tmp_path, volume_reference):
    _, make_steps = volume_reference
    path = tmp_path / "r.npz"
    with Recorder(path, N, every=2) as rec:
        for s in make_steps(6, N):
            rec.record(**s)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["episodes"][0, 0] = N + 3  # an env that does not exist
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(RolloutFormatError, match=r"bad.npz: episode 0 .* env outside"):
        rollrec.load(tmp_path / "bad.npz")  # refused when opened (it used to wait for r.episodes())
    arrays["episodes"] = arrays["episodes"][:, :5]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(RolloutFormatError, match=r"'episodes' must be int64 \[E, 7\]"):
        rollrec.load(tmp_path / "bad2.npz")
