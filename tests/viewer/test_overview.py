"""The overview's table against a plain per-episode loop, its edge cases and its memory bound."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import rollrec
from rollrec.io.save import save_rollout
from rollrec.viewer.overview import ENDED_BY, compute_env_totals, compute_overview, histogram


def episodes_by_loop(r, steps=None):
    """Every episode, one env and one step at a time: the obviously-right reference."""
    T = r.T if steps is None else steps
    rew, done, trunc, terms = (np.asarray(r[k][:T]) for k in ("rew", "done", "truncated", "rew_terms"))
    rows = []
    for n in range(r.N):
        start, ep = 0, 0
        for t in range(T):
            if done[t, n] or t == T - 1:
                sums = terms[start : t + 1, n].astype(np.float64).sum(axis=0)
                worst = int(np.argmin(sums)) if sums.size and sums.min() < 0 else -1
                ended = ("time-out" if trunc[t, n] else "termination") if done[t, n] else "unfinished"
                rows.append((n, ep, start, t + 1, float(rew[start : t + 1, n].astype(np.float64).sum()), ended, worst))
                start, ep = t + 1, ep + 1
    return rows


def as_rows(ov):
    return [(int(ov.env[i]), int(ov.episode[i]), int(ov.start[i]), int(ov.stop[i]), float(ov.ret[i]),
             ENDED_BY[ov.ended[i]], int(ov.worst_term[i])) for i in range(len(ov))]


def assert_same(ov, rows):
    got = as_rows(ov)
    assert [g[:4] + g[5:] for g in got] == [w[:4] + w[5:] for w in rows]
    np.testing.assert_allclose([g[4] for g in got], [w[4] for w in rows], rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def edge_file(tmp_path_factory):
    """6 envs x 12 steps: no episode end (env 0), an end on the last step (env 1), a time-out
    (env 2), back-to-back one-step episodes (env 3), terms that never go negative (env 4)."""
    T, N, K = 12, 6, 3
    rng = np.random.default_rng(1)
    done = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    done[11, 1] = True
    done[4, 2] = trunc[4, 2] = True
    done[[0, 1, 2, 7], 3] = True
    done[5, 4] = True
    terms = rng.standard_normal((T, N, K)).astype(np.float32)
    terms[:, 4] = np.abs(terms[:, 4])
    fields = {"obs": np.zeros((T, N, 2), np.float32), "act": np.zeros((T, N, 1), np.float32),
              "rew": terms.sum(axis=2), "done": done, "truncated": trunc,
              "base_pos": np.zeros((T, N, 3), np.float32), "base_quat": np.tile([1, 0, 0, 0], (T, N, 1)).astype(np.float32),
              "rew_terms": terms, "rew_term_names": ["alive", "energy", "tilt"]}
    return save_rollout(tmp_path_factory.mktemp("edge") / "edge.npz", fields, dt=0.02)


def test_matches_a_per_episode_loop_on_the_walker(walker_file):
    with rollrec.load(walker_file) as r:
        ov = compute_overview(r)
        assert_same(ov, episodes_by_loop(r))
        np.testing.assert_allclose(ov.env_totals, r.total_rewards())
        assert ov.term_names == tuple(r.reward_term_names)


def test_edge_cases(edge_file):
    with rollrec.load(edge_file) as r:
        ov = compute_overview(r)
        assert_same(ov, episodes_by_loop(r))
        rows = as_rows(ov)
    assert [x for x in rows if x[0] == 0] == [(0, 0, 0, 12, pytest.approx(rows[0][4]), "unfinished", rows[0][6])]
    assert [x[5] for x in rows if x[0] == 1] == ["termination"]  # ended on the very last step
    assert [x[5] for x in rows if x[0] == 2] == ["time-out", "unfinished"]
    assert [(x[2], x[3]) for x in rows if x[0] == 3] == [(0, 1), (1, 2), (2, 3), (3, 8), (8, 12)]
    assert {x[6] for x in rows if x[0] == 4} == {-1}  # no negative term: none is "worst"
    assert ov.counts() == {"unfinished": 5, "termination": 6, "time-out": 1}


def test_blocks_give_the_same_table(walker_file):
    with rollrec.load(walker_file) as r:
        whole = compute_overview(r)
        calls = []
        tiny = compute_overview(r, block_elements=1, progress=calls.append)  # one env per block
    assert calls == pytest.approx([(k + 1) / 8 for k in range(8)])
    for key in ("env", "episode", "start", "stop", "ended", "worst_term"):
        np.testing.assert_array_equal(getattr(tiny, key), getattr(whole, key))
    np.testing.assert_allclose(tiny.ret, whole.ret)


def test_memory_stays_bounded_by_the_block(tmp_path):
    """At 256 envs x 400 steps x 8 terms, the terms alone are 6.6 MB as float64; with 64k-element
    blocks the whole computation peaks near one block, not the file."""
    T, N, K = 400, 256, 8
    rng = np.random.default_rng(0)
    terms = rng.standard_normal((T, N, K)).astype(np.float32)
    fields = {"obs": np.zeros((T, N, 1), np.float32), "act": np.zeros((T, N, 1), np.float32),
              "rew": terms.sum(axis=2), "done": rng.random((T, N)) < 0.02, "truncated": np.zeros((T, N), bool),
              "base_pos": np.zeros((T, N, 3), np.float32), "base_quat": np.zeros((T, N, 4), np.float32),
              "rew_terms": terms, "rew_term_names": [f"t{k}" for k in range(K)]}
    path = save_rollout(tmp_path / "big.npz", fields, dt=0.02)
    del fields, terms
    with rollrec.load(path) as r:
        compute_overview(r, block_elements=1 << 16)  # warm up imports and caches
        tracemalloc.start()
        ov = compute_overview(r, block_elements=1 << 16)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    table_bytes = sum(getattr(ov, k).nbytes for k in ("env", "episode", "start", "stop", "ret", "ended",
                                                      "worst_term", "worst_value"))
    assert peak < 2.0e6 + 3 * table_bytes, f"peak {peak / 1e6:.1f} MB"
    assert peak < T * N * K * 8 / 2  # well under the terms of the whole file as float64


def test_steps_limits_the_table(walker_file):
    with rollrec.load(walker_file) as r:
        ov = compute_overview(r, steps=50)
        assert_same(ov, episodes_by_loop(r, steps=50))
        assert ov.stop.max() == 50 and ov.num_steps == 50
        np.testing.assert_allclose(compute_env_totals(r, steps=50), np.asarray(r["rew"][:50], np.float64).sum(0))
        with pytest.raises(ValueError, match="steps must be in 1..200"):
            compute_overview(r, steps=0)


def test_find_the_episode_of_a_step(walker_file):
    with rollrec.load(walker_file) as r:
        ov = compute_overview(r)
        bounds = r.episode_bounds(5)
    for e, (start, stop) in enumerate(bounds):
        for t in (start, stop - 1):
            row = ov.find(5, int(t))
            assert (ov.env[row], ov.episode[row]) == (5, e)
    with pytest.raises(IndexError):
        ov.find(5, 10_000)


def test_histogram_edge_cases():
    edges, counts = histogram(np.array([1.0, 2.0, 2.0, np.nan, np.inf]), bins=2)
    assert counts.tolist() == [1, 2] and edges[0] == 1.0 and edges[-1] == 2.0
    edges, counts = histogram(np.array([3.0, 3.0]))
    assert counts.sum() == 2 and edges[0] < 3.0 < edges[-1]
    edges, counts = histogram(np.array([]))
    assert counts.tolist() == [0] and edges.tolist() == [0.0, 1.0]


def test_float64_rewards_from_a_memory_map(tmp_path, make_fields):
    """Gymnasium's rewards are float64: the block read must be a copy, not a view of the read-only map."""
    fields = make_fields(T=40, N=3, float_dtype=np.float64, done_every=7)
    path = save_rollout(tmp_path / "f64.npz", fields, dt=0.05)
    with rollrec.load(path) as r:
        assert r["rew"].dtype == np.float64
        ov = compute_overview(r)
        np.testing.assert_allclose(ov.env_totals, fields["rew"].sum(axis=0))
