"""`rollrec.compare` on recorded runs of the built-in walker: every per-run figure equals a plain
per-env loop over the `Rollout` API, pairing follows what the files record, and v2, sharded and
same-named files give the numbers they should."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import rollrec
from rollrec.stats.compare import compare
from rollrec.stats.pairing import run_names

from .conftest import rerecord


def reference_figures(path, first_episode: bool = False) -> dict:
    """The per-run figures, computed env by env, episode by episode, the plain way."""
    returns, lengths, ended_by_termination, terms, unfinished = [], [], [], [], 0
    with rollrec.load(path) as r:
        done, truncated, rew_terms = np.asarray(r["done"]), np.asarray(r["truncated"]), np.asarray(r["rew_terms"])
        for env in range(r.N):
            bounds, rets = r.episode_bounds(env), r.episode_returns(env)
            for i, ((start, stop), ret) in enumerate(zip(bounds, rets)):
                if first_episode and i > 0:
                    break
                if not done[stop - 1, env]:
                    unfinished += 1
                    continue
                returns.append(ret)
                lengths.append(stop - start)
                ended_by_termination.append(not truncated[stop - 1, env])
                terms.append(rew_terms[start:stop, env].astype(np.float64).sum(axis=0))
        names = r.reward_term_names
    x = np.sort(returns)
    n = len(x)
    pos = np.arange(n)
    iqm = (x * np.clip(np.minimum(pos + 1, 0.75 * n) - np.maximum(pos, 0.25 * n), 0, 1)).sum() / (0.5 * n)
    return {"completed": n, "unfinished": unfinished, "mean": float(np.mean(returns)), "iqm": float(iqm),
            "termination": float(np.mean(ended_by_termination)), "length": float(np.mean(lengths)),
            "terms": dict(zip(names, np.mean(terms, axis=0)))}


@pytest.mark.slow
@pytest.mark.parametrize("first_episode", [False, True], ids=["all-episodes", "first-episode"])
def test_per_run_figures_equal_a_per_env_loop(walker_runs, first_episode):
    result = compare(walker_runs["policy"], walker_runs["perturbed"], first_episode=first_episode)
    for run, path in zip(result["runs"], (walker_runs["policy"], walker_runs["perturbed"])):
        want = reference_figures(path, first_episode)
        assert run["episodes"]["completed"] == want["completed"] and run["episodes"]["unfinished"] == want["unfinished"]
        assert run["episodes"]["terminated"] + run["episodes"]["truncated"] == want["completed"]
        assert run["return"]["mean"] == pytest.approx(want["mean"], rel=1e-9)
        assert run["return"]["iqm"] == pytest.approx(want["iqm"], rel=1e-9)
        assert run["termination_rate"] == pytest.approx(want["termination"])
        assert run["length"]["steps"] == pytest.approx(want["length"])
        assert run["length"]["seconds"] == pytest.approx(want["length"] * 0.02)
        assert run["terms"] == pytest.approx(want["terms"], rel=1e-6)
        assert run["envs"] == 48 and run["seed"] == 0 and run["start_digest"]


def test_the_perturbed_policy_is_worse_and_the_runs_are_paired(walker_runs):
    result = compare(walker_runs["policy"], walker_runs["perturbed"])
    c = result["comparisons"][0]
    assert c["paired"] and c["pairing"].startswith("paired: the same 48 envs")
    rows = {m["metric"]: m for m in c["metrics"]}
    assert list(rows)[:4] == ["mean", "iqm", "termination", "length"]
    assert {k[5:] for k in rows if k.startswith("term:")} == set(rollrec.envs.WalkerEnv.reward_term_names)
    base, run = result["runs"]
    mean = rows["mean"]
    assert mean["difference"] == pytest.approx(run["return"]["mean"] - base["return"]["mean"])
    assert mean["low"] < mean["difference"] < mean["high"] < 0 and mean["verdict"] == "worse"
    assert rows["iqm"]["verdict"] == "worse"
    assert rows["term:forward_vel"]["verdict"] == "worse"  # the smaller stride walks slower
    assert 0 < mean["detectable"] < abs(mean["difference"])
    assert rows["termination"]["method"] == "newcombe" and rows["termination"]["higher_is_better"] is False
    assert rows["length"]["verdict"] in ("longer", "shorter", "no detectable difference")


def test_a_run_against_itself_shows_no_difference(walker_runs):
    c = compare(walker_runs["policy"], walker_runs["policy"])["comparisons"][0]
    assert c["paired"]
    for m in c["metrics"]:
        assert m["difference"] == 0 and m["low"] <= 0 <= m["high"], m
        assert m["verdict"] == "no detectable difference"


def test_unpaired_runs_say_why(walker_runs):
    c = compare(walker_runs["policy"], walker_runs["other_seed"])["comparisons"][0]
    assert not c["paired"] and c["pairing"] == "unpaired: their seeds differ (0 and 1)"
    c = compare(walker_runs["policy"], walker_runs["fewer_envs"])["comparisons"][0]
    assert not c["paired"]
    assert c["pairing"] == ("unpaired: policy.npz has 48 envs and fewer_envs.npz 24: env k of one is not "
                            "env k of the other")
    with pytest.raises(ValueError, match="cannot pair fewer_envs.npz with policy.npz: policy.npz has 48 envs"):
        compare(walker_runs["policy"], walker_runs["fewer_envs"], paired=True)
    c = compare(walker_runs["policy"], walker_runs["perturbed"], paired=False)["comparisons"][0]
    assert not c["paired"] and c["pairing"] == "unpaired, as asked"


def test_starts_that_differ_unpair_even_without_seeds(tmp_path, make_fields):
    fields = make_fields(30, 10, seed=1)
    a = rollrec.save(tmp_path / "a.npz", fields, dt=0.02)
    fields["obs"] = fields["obs"].copy()
    fields["obs"][0, 3] += 1.0  # env 3 started elsewhere
    b = rollrec.save(tmp_path / "b.npz", fields, dt=0.02)
    c = compare(a, b)["comparisons"][0]
    assert not c["paired"]
    assert c["pairing"].startswith("unpaired: the first observations differ in 1 of 10 envs (env 3 first)")
    assert compare(a, b, paired=True)["comparisons"][0]["pairing"].startswith("paired, as asked (though the first")


def test_files_without_a_start_record_are_unpaired_unless_asked(tmp_path, make_fields):
    fields = make_fields(30, 10, seed=1)
    a = rollrec.save(tmp_path / "a.npz", fields, dt=0.02)
    with rollrec.load(a) as r:  # the same rollout, written as files were before meta["start_state"]
        meta = {k: v for k, v in r.meta.items() if k != "start_state"}
        members = {k: np.asarray(r[k]) for k in r.keys() if k != "meta"}  # noqa: SIM118 (Rollout has no __iter__)
        np.savez(tmp_path / "old.npz", **members, meta=np.array(json.dumps(meta)))
    c = compare(a, tmp_path / "old.npz")["comparisons"][0]
    assert not c["paired"]
    assert c["pairing"] == ("unpaired: old.npz: it does not record what its envs started from (meta['start_state']); "
                            "pass paired=True (--paired) if env k faced the same start in both")
    assert compare(a, tmp_path / "old.npz", paired=True)["comparisons"][0]["paired"]


def test_a_volume_file_gives_the_same_figures_as_the_full_file(walker_runs, tmp_path):
    v2 = rerecord(walker_runs["policy"], tmp_path / "v2.npz", envs=[1, 5])
    with rollrec.load(v2) as r:
        assert r.layout.has_index  # format v2: episodes and returns from the file's index
    result = compare(walker_runs["policy"], v2)
    a, b = result["runs"]
    assert b["episodes"] == a["episodes"]
    assert b["return"]["mean"] == pytest.approx(a["return"]["mean"], rel=1e-6)
    assert b["terms"] == pytest.approx(a["terms"], rel=1e-5)
    c = result["comparisons"][0]
    assert c["paired"]  # the same first observations
    assert all(m["verdict"] == "no detectable difference" for m in c["metrics"])


def test_a_sharded_rollout_compares_with_the_same_data_in_one_file(tmp_path, make_fields, write_sharded):
    fields = make_fields(40, 12, done_every=9, seed=6)
    whole = rollrec.save(tmp_path / "whole.npz", fields, dt=0.02)
    write_sharded(tmp_path / "run", fields, (5, 4, 3))
    result = compare(tmp_path / "run", whole)
    assert result["runs"][0]["episodes"] == result["runs"][1]["episodes"]
    c = result["comparisons"][0]
    assert c["paired"] and all(m["difference"] == pytest.approx(0, abs=1e-9) for m in c["metrics"])


def test_each_comparison_draws_its_own_replicates(walker_runs):
    two = compare(walker_runs["policy"], walker_runs["perturbed"])
    three = compare(walker_runs["policy"], walker_runs["other_seed"], walker_runs["perturbed"])
    assert three["comparisons"][1]["metrics"] == two["comparisons"][0]["metrics"]
    assert three["comparisons"][1]["run"] == 2 and three["runs"][2]["name"] == "perturbed.npz"


def test_files_of_the_same_name_are_told_apart(walker_runs, tmp_path):
    for d in ("ckpt_100", "ckpt_200"):
        (tmp_path / d).mkdir()
        shutil.copy(walker_runs["policy"], tmp_path / d / "eval.npz")
    result = compare(tmp_path / "ckpt_100" / "eval.npz", tmp_path / "ckpt_200" / "eval.npz")
    assert [r["name"] for r in result["runs"]] == ["ckpt_100/eval.npz", "ckpt_200/eval.npz"]
    assert run_names([tmp_path / "a" / "x" / "r.npz", tmp_path / "b" / "x" / "r.npz", tmp_path / "c.npz"]) == [
        "a/x/r.npz", "b/x/r.npz", "c.npz"]


def test_bad_arguments_are_one_clear_error(walker_runs):
    with pytest.raises(ValueError, match="at least one run"):
        compare(walker_runs["policy"])
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        compare(walker_runs["policy"], walker_runs["perturbed"], level=95)
