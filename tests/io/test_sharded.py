"""Reading a sharded rollout (a directory of per-rank files): the same answers as one file holding
every env, lazily; missing shards and short shards said out loud; recovery of the manifest."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import rollrec
from rollrec.format.errors import RolloutFormatError
from rollrec.format.manifest import MANIFEST_NAME
from rollrec.io.sharded.manifest import read_manifest
from rollrec.io.sharded.rollout import MissingEnvsError, MissingEnvsWarning, ShardedArray, ShardedRollout

COUNTS = (3, 1, 4)  # N = 8, uneven
T = 9


@pytest.fixture
def fields(make_fields):
    return make_fields(T, sum(COUNTS), L=2, extras={"contact": ((2,), np.int16), "flag": ((), np.bool_)}, seed=3)


@pytest.fixture
def pair(tmp_path, fields, write_sharded):
    """(the sharded rollout, the same data as one plain file), both open."""
    write_sharded(tmp_path / "run", fields, COUNTS)
    rollrec.save(tmp_path / "whole.npz", fields, dt=0.02, env_name="sharded")
    with rollrec.load(tmp_path / "run") as sharded, rollrec.load(tmp_path / "whole.npz") as whole:
        yield sharded, whole


INDEXES = [
    np.s_[:],
    np.s_[4],
    np.s_[-1],
    np.s_[:, 5],
    np.s_[2:7, 1:6],
    np.s_[::2, ::3],
    np.s_[::-1, ::-1],
    np.s_[3, 2:8],
    np.s_[:, [7, 0, 3, 3]],
    np.s_[[8, 0, 2], 1:7],
    np.s_[:, np.arange(8) % 3 == 0],
    np.s_[..., 0],
    np.s_[1:4, 2:5, ..., 1],
    np.s_[:, :, 1:],
    np.s_[5, 6, 0],
    np.s_[:, [1, 6], 0],
    np.s_[:, :, [1, 0]],
]


@pytest.mark.parametrize("index", INDEXES, ids=[str(i) for i in range(len(INDEXES))])
@pytest.mark.parametrize("key", ["obs", "done", "contact", "link_pos"])
def test_indexing_matches_one_file_holding_every_env(pair, key, index):
    sharded, whole = pair
    try:
        want = np.asarray(whole[key][index])
    except IndexError:  # e.g. too many indices for a [T, N] field: the sharded array refuses it too
        with pytest.raises(IndexError):
            sharded[key][index]
        return
    got = sharded[key][index]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_whole_rollout_interface_matches(pair):
    sharded, whole = pair
    assert isinstance(sharded, rollrec.Rollout) and isinstance(sharded["obs"], ShardedArray)
    assert (sharded.T, sharded.N, sharded.dt, sharded.env_name) == (whole.T, whole.N, whole.dt, whole.env_name)
    assert sharded.keys() == whole.keys() and sharded.step_keys == whole.step_keys
    assert (sharded.reward_term_names, sharded.link_names) == (whole.reward_term_names, whole.link_names)
    assert sharded["obs"].shape == whole["obs"].shape and len(sharded["obs"]) == T
    np.testing.assert_array_equal(np.asarray(sharded["rew_terms"]), whole["rew_terms"])
    np.testing.assert_array_equal(sharded.total_rewards(), whole.total_rewards())
    for g in range(whole.N):
        a, b = sharded.env(g), whole.env(g)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"env {g} {k}")
        np.testing.assert_array_equal(sharded.episode_bounds(g), whole.episode_bounds(g))
        np.testing.assert_array_equal(sharded.episode_returns(g), whole.episode_returns(g))
    assert json.loads(str(sharded["meta"][()]))["sharded"]["world_size"] == 3
    assert "shard" not in sharded.meta and sharded.meta["num_envs"] == 8


def test_a_selection_inside_one_shard_reads_that_shard_only(pair, monkeypatch):
    sharded, whole = pair
    for s in sharded.shards[:2]:  # ranks 0 and 1 (envs 0..3) must not be read for envs 4..7
        monkeypatch.setattr(s.rollout._file, "select", lambda *a: pytest.fail("read another shard"))
    got = sharded["obs"][:, 4:7]  # rank 2's envs 4..7
    assert type(got) is np.ndarray  # read into memory with pread (issue 25), no longer a view of the map
    np.testing.assert_array_equal(got, whole["obs"][:, 4:7])
    monkeypatch.undo()
    np.testing.assert_array_equal(sharded["obs"][:, 2:5], whole["obs"][:, 2:5])  # spans ranks 0, 1, 2: assembled


def test_index_mixes_numpy_would_reorder_are_refused(pair):
    sharded, _ = pair
    obs, links = sharded["obs"], sharded["link_pos"]
    with pytest.raises(IndexError, match="at most one"):
        obs[[0, 1], [0, 1]]
    with pytest.raises(IndexError, match="right after it"):
        links[:, [0, 1], :, 0]
    with pytest.raises(IndexError, match="out of bounds for the env axis"):
        obs[0, 8]
    with pytest.raises(IndexError, match="newaxis"):
        obs[None]


def test_missing_shard_reads_as_fill_values_and_env_raises(tmp_path, fields, write_sharded):
    write_sharded(tmp_path / "run", fields, COUNTS, missing=(1,))
    with pytest.warns(MissingEnvsWarning, match=r"envs 3\.\.3 \(rank 1, rank-00001\.npz\) are missing: no such file"):
        r = rollrec.load(tmp_path / "run")
    with r:
        assert r.missing_envs == [(3, 4)] and r.meta["sharded"]["missing_envs"] == [[3, 4]]
        np.testing.assert_array_equal(r.env_present, [True] * 3 + [False] + [True] * 4)
        assert np.isnan(r["obs"][:, 3]).all() and not r["flag"][:, 3].any() and not r["done"][:, 3].any()
        assert (r["contact"][:, 3] == np.iinfo(np.int16).min).all()
        np.testing.assert_array_equal(r["obs"][:, 4:], fields["obs"][:, 4:])
        np.testing.assert_array_equal(r["obs"][2, [2, 4]], fields["obs"][2, [2, 4]])
        with pytest.raises(MissingEnvsError, match=r"env 3 is missing: it was recorded by rank 1 \(envs 3\.\.3, rank-00001\.npz\)"):
            r.env(3)
        with pytest.raises(MissingEnvsError):
            r.episode_returns(3)
        totals = r.total_rewards()
        assert np.isnan(totals[3]) and np.isfinite(np.delete(totals, 3)).all()


def test_short_shard_is_padded_after_its_last_step(tmp_path, fields, write_sharded):
    write_sharded(tmp_path / "run", fields, COUNTS, short={2: 4})
    with pytest.warns(MissingEnvsWarning, match=r"envs 4\.\.7 \(rank 2\) hold 4 of 9 steps"):
        r = rollrec.load(tmp_path / "run")
    with r:
        assert r.T == T and r.missing_envs == []
        e = r.env(6)
        np.testing.assert_array_equal(e["obs"][:4], fields["obs"][:4, 6])
        assert np.isnan(e["obs"][4:]).all() and not e["done"][4:].any()
        np.testing.assert_array_equal(r["rew"][3:6, 3:6][:, :1], fields["rew"][3:6, 3:4])
        assert np.isnan(r["rew"][3:6, 4:6][1:]).all()


def test_a_shard_of_another_recording_counts_as_missing(tmp_path, fields, write_sharded):
    write_sharded(tmp_path / "run", fields, COUNTS)
    write_sharded(tmp_path / "old", fields, COUNTS, run_id="feedbeef")
    (tmp_path / "old" / "rank-00002.npz").replace(tmp_path / "run" / "rank-00002.npz")
    with pytest.warns(MissingEnvsWarning, match="belongs to another recording"):
        rollrec.load(tmp_path / "run").close()


def test_shards_that_disagree_on_fields_are_an_error(tmp_path, make_fields, write_sharded):
    write_sharded(tmp_path / "a", make_fields(T, 8, seed=1), COUNTS)
    write_sharded(tmp_path / "b", make_fields(T, 8, D=7, seed=1), COUNTS)
    (tmp_path / "b" / "rank-00001.npz").replace(tmp_path / "a" / "rank-00001.npz")
    with pytest.raises(RolloutFormatError, match=r"shards disagree on fields: rank-00000\.npz has .*'obs'.*rank-00001\.npz"):
        rollrec.load(tmp_path / "a")


def test_no_readable_shard_is_an_error(tmp_path, fields, write_sharded):
    write_sharded(tmp_path / "run", fields, COUNTS, missing=(0, 1, 2))
    with pytest.raises(RolloutFormatError, match="no shard is readable"):
        rollrec.load(tmp_path / "run")


def test_the_directory_its_manifest_and_its_npz_name_all_open(tmp_path, fields, write_sharded):
    write_sharded(tmp_path / "run", fields, COUNTS)
    for name in ("run", "run/manifest.json", "run.npz"):
        with rollrec.load(tmp_path / name) as r:
            assert isinstance(r, ShardedRollout) and r.N == 8


def test_lost_manifest_is_rebuilt_by_recover(tmp_path, fields, write_sharded, capsys):
    run = write_sharded(tmp_path / "run", fields, COUNTS, offsets=(5, 4, 0))
    (run / MANIFEST_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="rollrec recover"):
        rollrec.load(run)
    from rollrec.cli import main

    assert main(["recover", str(run)]) == 0
    assert "complete, 9 steps x 8 envs in 3 shards" in capsys.readouterr().out
    m = read_manifest(run)
    assert [(e.env_offset, e.num_envs, e.status) for e in m.shards] == [(5, 3, "complete"), (4, 1, "complete"), (0, 4, "complete")]
    assert m.fields["contact"] == {"dtype": "<i2", "shape": [2]}
    with rollrec.load(run) as r:
        np.testing.assert_array_equal(np.asarray(r["obs"]), fields["obs"])
        assert r.shard_of(0).entry.rank == 2


def test_info_counts_only_the_data_present(tmp_path, fields, write_sharded, capsys):
    write_sharded(tmp_path / "run", fields, COUNTS, missing=(2,))
    from rollrec.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # info shows the missing shard itself; no warning on top
        assert main(["info", str(tmp_path / "run"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["shards"]["missing_envs"] == [[4, 8]] and s["N"] == 8
    assert s["reward"]["mean"] == pytest.approx(fields["rew"][:, :4].astype(np.float64).mean())
    assert s["shards"]["shards"][2]["present"] is False
    assert main(["info", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "envs missing: 4..7" in out and "MISSING: no such file" in out and "(over the data present)" in out


def test_damaged_manifest_is_rebuilt_by_recover(tmp_path, fields, write_sharded):
    run = write_sharded(tmp_path / "run", fields, COUNTS)
    (run / MANIFEST_NAME).write_text('{"format": "rollrec-sha')  # torn write
    with pytest.raises(RolloutFormatError, match="not valid JSON"):
        rollrec.load(run)
    rollrec.recover(run)
    with rollrec.load(run) as r:
        assert r.N == 8 and r.meta["sharded"]["manifest_state"] == "complete"


def test_shards_with_an_episode_index_are_refused_clearly(tmp_path, fields, write_sharded):
    run = write_sharded(tmp_path / "run", fields, COUNTS)
    with rollrec.load(run / "rank-00000.npz") as r0:
        shard = r0.meta["shard"]
    with rollrec.Recorder(run / "rank-00000.npz", COUNTS[0], every=2, meta={"shard": shard}) as rec:
        for t in range(T):
            rec.record(obs=fields["obs"][t, :3], act=fields["act"][t, :3], rew=fields["rew"][t, :3], done=fields["done"][t, :3])
    with pytest.raises(RolloutFormatError, match="keep some envs or steps only .* open each shard file on its own"):
        rollrec.load(run)
