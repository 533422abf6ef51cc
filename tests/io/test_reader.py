"""`rollrec.load` and `Rollout`: per-env slices, episodes, and the errors a user gets for bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import rollrec
from rollrec import RolloutFormatError
from rollrec.format.meta import encode_meta, make_meta


@pytest.fixture
def rollout_path(tmp_path, make_fields):
    return rollrec.save(
        tmp_path / "r.npz", make_fields(12, 4, L=3, extras={"img": ((2, 2), np.uint8)}), dt=0.02
    )


def _savez(path, **arrays):
    np.savez(path, **arrays)
    return path


def _valid_arrays(make_fields, T=4, N=2, **meta_overrides):
    fields = make_fields(T, N)
    arrays = {k: np.asarray(v) for k, v in fields.items()}
    meta = make_meta(num_steps=T, num_envs=N, dt=0.02)
    meta.update(meta_overrides)
    arrays["meta"] = encode_meta(meta)
    return arrays


# ---- reading --------------------------------------------------------------------------------
def test_env_slice_equals_the_full_array_slice(rollout_path):
    with rollrec.load(rollout_path) as r:
        full = {k: np.array(r[k]) for k in r.step_keys}
        for k in range(r.N):
            one = r.env(k)
            assert set(one) == set(r.step_keys)
            for key, value in one.items():
                assert type(value) is np.ndarray, key  # read into memory, not a view of the map
                np.testing.assert_array_equal(value, full[key][:, k], err_msg=key)
        np.testing.assert_array_equal(r.env(-1)["obs"], full["obs"][:, r.N - 1])
        assert set(r.env(0, keys=["rew", "done"])) == {"rew", "done"}


def test_env_out_of_range_says_how_many_envs(rollout_path):
    with rollrec.load(rollout_path) as r, pytest.raises(IndexError, match=r"env 4 out of range.*4 envs"):
        r.env(4)


def test_members_are_read_by_key_never_as_attributes(rollout_path, tmp_path, make_fields):
    with rollrec.load(rollout_path) as r:
        assert "img" in r and "nope" not in r
        assert "meta" not in r.keys()  # noqa: SIM118 (the listing, not __contains__)
        with pytest.raises(AttributeError, match=r"read the member with r\['obs'\]"):
            r.obs  # noqa: B018
        with pytest.raises(AttributeError):
            r.nope  # noqa: B018
    fields = make_fields(4, 2, extras={"env": ((), np.int32)})  # an extra named like a method of Rollout
    with rollrec.load(rollrec.save(tmp_path / "x.npz", fields, dt=0.1)) as r:
        np.testing.assert_array_equal(r["env"], fields["env"])
        assert set(r.env(1)) >= {"env", "obs"}  # the method, whatever the members are called


DONE = np.zeros((6, 4), bool)
DONE[[1, 3], 0] = True  # two finished episodes, then an unfinished one
DONE[5, 1] = True  # done on the last step: one finished episode, nothing after it
#     env 2: never done: one unfinished episode
DONE[[0, 5], 3] = True  # done on the first and the last step


@pytest.fixture
def episode_rollout(tmp_path, make_fields):
    fields = make_fields(6, 4)
    fields["done"] = DONE
    fields["truncated"] = np.zeros_like(DONE)
    fields["rew"] = (np.arange(6)[:, None] * 10.0 + np.arange(4)[None, :]).astype(np.float32)  # rew[t, n] = 10t + n
    return rollrec.save(tmp_path / "ep.npz", fields, dt=0.02)


@pytest.mark.parametrize(
    "env, bounds",
    [
        (0, [[0, 2], [2, 4], [4, 6]]),
        (1, [[0, 6]]),
        (2, [[0, 6]]),
        (3, [[0, 1], [1, 6]]),
    ],
)
def test_episode_bounds_and_returns(episode_rollout, env, bounds):
    with rollrec.load(episode_rollout) as r:
        got = r.episode_bounds(env)
        assert got.dtype == np.int64
        assert got.tolist() == bounds
        expected = [sum(10.0 * t + env for t in range(a, b)) for a, b in bounds]
        returns = r.episode_returns(env)
        assert returns.dtype == np.float64
        np.testing.assert_allclose(returns, expected)


def test_total_rewards_sum_over_time_per_env(episode_rollout):
    with rollrec.load(episode_rollout) as r:
        np.testing.assert_allclose(r.total_rewards(), [150.0 + 6 * n for n in range(4)])


def test_close_releases_the_file(rollout_path):
    r = rollrec.load(rollout_path)
    assert isinstance(r["obs"], np.memmap)
    r.close()
    r.close()  # idempotent
    assert "T=12, N=4" in repr(r)


# ---- errors ---------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz: no such file"):
        rollrec.load(path)


def test_missing_file_with_an_interrupted_recording_points_to_recover(tmp_path):
    path = tmp_path / "run.npz"
    (tmp_path / "run.npz.partial").write_bytes(b"")
    (tmp_path / "run.npz.partial.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="rollrec recover"):
        rollrec.load(path)


def test_directory(tmp_path):
    with pytest.raises(RolloutFormatError, match="is a directory"):
        rollrec.load(tmp_path)


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello, not a zip\n" * 10)
    with pytest.raises(RolloutFormatError, match="text.npz: not a zip archive"):
        rollrec.load(path)


def test_zip_without_meta(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    del arrays["meta"]
    path = _savez(tmp_path / "nometa.npz", **arrays)
    with pytest.raises(RolloutFormatError, match="missing required key 'meta'"):
        rollrec.load(path)


def test_zip_with_no_npy_at_all(tmp_path):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(RolloutFormatError, match="missing required key 'meta'"):
        rollrec.load(path)


@pytest.mark.parametrize("key", ["obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms"])
def test_missing_required_key_is_named(tmp_path, make_fields, key):
    arrays = _valid_arrays(make_fields)
    del arrays[key]
    path = _savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(RolloutFormatError, match=f"missing required key '{key}'"):
        rollrec.load(path)


def test_missing_reward_term_names(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    del arrays["rew_term_names"]
    with pytest.raises(RolloutFormatError, match="'rew_term_names' must have shape"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_mismatched_T_names_the_key(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields, T=4)
    arrays["act"] = arrays["act"][:3]
    with pytest.raises(RolloutFormatError, match=r"mismatched T: 'act' has 3 steps, 'obs' has 4"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_mismatched_N_names_the_key(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields, N=2)
    arrays["rew"] = arrays["rew"][:, :1]
    with pytest.raises(RolloutFormatError, match=r"mismatched N: 'rew' has 1 envs"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_meta_disagreeing_with_the_arrays(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields, T=4, num_steps=5)
    with pytest.raises(RolloutFormatError, match=r"meta says T=5, N=2 but 'obs' is 4x2"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_unknown_format_version_names_the_version(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields, format_version=4)
    with pytest.raises(RolloutFormatError, match="unknown format version 4.*reads versions 1, 2, 3.*Upgrade"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_meta_that_is_not_json(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    arrays["meta"] = np.array("{not json")
    with pytest.raises(RolloutFormatError, match="'meta' is not valid JSON"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_meta_of_the_wrong_kind(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    arrays["meta"] = np.frombuffer(json.dumps({"format_version": 1}).encode(), np.uint8)
    with pytest.raises(RolloutFormatError, match="'meta' must be a 0-d unicode array"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


@pytest.mark.parametrize("key", ["done", "truncated"])
def test_done_flags_must_be_bool(tmp_path, make_fields, key):
    arrays = _valid_arrays(make_fields)
    arrays[key] = arrays[key].astype(np.int64)
    with pytest.raises(RolloutFormatError, match=f"'{key}' must be bool, got int64"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_wrong_trailing_size(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    arrays["base_quat"] = arrays["base_quat"][..., :3]
    with pytest.raises(RolloutFormatError, match=r"'base_quat' must end in \(4,\)"):
        rollrec.load(_savez(tmp_path / "r.npz", **arrays))


def test_object_member_is_refused_without_unpickling(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    arrays["note"] = np.array([{"a": 1}], dtype=object)
    path = _savez(tmp_path / "r.npz", **arrays)
    with pytest.raises(RolloutFormatError, match="'note' is an object array; format v1 never pickles"):
        rollrec.load(path)


def test_errors_name_the_file(tmp_path, make_fields):
    arrays = _valid_arrays(make_fields)
    del arrays["obs"]
    path = _savez(tmp_path / "named.npz", **arrays)
    with pytest.raises(RolloutFormatError) as info:
        rollrec.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)  # so `rollrec` prints one line, no traceback


def test_env_read_matches_full_slice_for_long_rollouts(tmp_path, make_fields):
    # Long enough for the threaded, chunked read path (T split across threads).
    fields = make_fields(T=700, N=5, L=2)
    path = rollrec.save(tmp_path / "long.npz", fields, dt=0.1)
    with rollrec.load(path) as r:
        got = r.env(3)
        for key in r.step_keys:
            np.testing.assert_array_equal(got[key], np.asarray(r[key])[:, 3], err_msg=key)
        assert list(r) == r.keys()


@pytest.mark.parametrize("steps,envs", [(None, None), ((2, 9), None), ((0, 12), (1, 3)), ((5, 6), (3, 4)),
                                        ((-3, None), (-2, None)), ((4, 2), (0, 4))])
@pytest.mark.parametrize("key", ["rew", "obs", "link_pos", "img"])
def test_read_gives_what_indexing_gives(rollout_path, key, steps, envs):
    with rollrec.load(rollout_path) as r:
        want = np.asarray(r[key])[slice(*(steps or (None,))), slice(*(envs or (None,)))]
        got = r.read(key, steps, envs)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_read_of_a_truncated_file_raises_instead_of_sigbus(rollout_path):
    with rollrec.load(rollout_path) as r:
        with open(rollout_path, "r+b") as f:
            f.truncate(300)  # inside the first member's rows: every member is cut
        for envs in ((1, 3), None):  # a column block, and whole steps
            with pytest.raises(RolloutFormatError, match="truncated while open"):
                r.read("obs", (0, 12), envs)


def test_read_refuses_static_and_unknown_members(rollout_path):
    with rollrec.load(rollout_path) as r:
        for key in ("meta", "rew_term_names", "nope"):
            with pytest.raises(KeyError, match="is not a per-step member"):
                r.read(key)


def test_read_of_a_sharded_rollout_fills_what_is_missing(tmp_path, make_fields, write_sharded):
    fields = make_fields(10, 7)
    directory = write_sharded(tmp_path / "run", fields, (3, 2, 2), missing=(2,), short={1: 5})
    with pytest.warns(UserWarning), rollrec.load(directory) as r:
        got = r.read("obs", (3, 8), (1, 7))
    want = np.asarray(fields["obs"])[3:8, 1:7].copy()
    want[:, 4:] = np.nan          # rank 2's envs 5..6 are missing
    want[2:, 2:4] = np.nan        # rank 1's shard (envs 3..4) has 5 steps
    np.testing.assert_array_equal(got, want)
