"""The one episode segmentation kernel, against a per-env loop, and its three users against each other."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.io.segments import TERMINATED, TRUNCATED, UNFINISHED, running_sum, segment
from rollrec.io.summary import episode_stats
from rollrec.viewer.overview import compute_overview


def _loop(done, truncated, rew):
    """Every episode by walking each env's steps: (env, start, stop, end, return)."""
    T, n = done.shape
    out = []
    for e in range(n):
        start, total = 0, 0.0
        for t in range(T):
            total += float(rew[t, e])
            if done[t, e] or t == T - 1:
                end = (TRUNCATED if truncated[t, e] else TERMINATED) if done[t, e] else UNFINISHED
                out.append((e, start, t + 1, end, total))
                start, total = t + 1, 0.0
    return out


@pytest.mark.parametrize("T, n, p", [(1, 1, 0.5), (7, 3, 0.0), (7, 3, 1.0), (50, 9, 0.2), (300, 2, 0.05)])
def test_segments_match_a_per_env_loop(T, n, p):
    rng = np.random.default_rng(T * 100 + n)
    done = rng.random((T, n)) < p
    truncated = done & (rng.random((T, n)) < 0.5)
    rew = rng.normal(size=(T, n))
    seg = segment(done, truncated)
    got = list(zip(seg.env.tolist(), seg.start.tolist(), seg.stop.tolist(), seg.end.tolist(),
                   seg.sums(running_sum(rew.copy())).tolist()))
    want = _loop(done, truncated, rew)
    assert [g[:4] for g in got] == [w[:4] for w in want]
    np.testing.assert_allclose([g[4] for g in got], [w[4] for w in want], rtol=1e-12, atol=1e-12)
    assert seg.number().tolist() == [sum(1 for w in want[:i] if w[0] == want[i][0]) for i in range(len(want))]


def test_no_steps_no_episodes_and_no_time_limits_means_terminated():
    assert len(segment(np.zeros((0, 4), bool))) == 0
    seg = segment(np.array([[True], [False]]))
    assert seg.end.tolist() == [TERMINATED, UNFINISHED]


@pytest.mark.parametrize("shape", [(40, 3), (40, 300), (20, 16, 32), (5,)])
def test_running_sum_is_cumsum_exactly_for_narrow_and_wide_rows(shape):
    x = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_array_equal(running_sum(x.copy()), np.cumsum(x, axis=0))


def test_the_reader_the_overview_and_info_find_the_same_episodes(tmp_path, make_fields):
    fields = make_fields(40, 6)
    rng = np.random.default_rng(3)
    fields["done"] = rng.random((40, 6)) < 0.15
    fields["truncated"] = fields["done"] & (rng.random((40, 6)) < 0.5)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.1)
    want = _loop(fields["done"], fields["truncated"], fields["rew"].astype(np.float64))
    with rollrec.load(path) as r:
        index = sorted((e["env"], e["start"], e["stop"], e["end"], e["return"]) for e in r.episodes())
        overview = compute_overview(r)
        per_env = [(e, *b, ret) for e in range(r.N) for b, ret in zip(r.episode_bounds(e).tolist(), r.episode_returns(e))]
        stats = episode_stats(r["rew"], r["done"], r["truncated"])
    names = {UNFINISHED: "unfinished", TERMINATED: "terminated", TRUNCATED: "truncated"}
    assert [(w[0], w[1], w[2], names[w[3]]) for w in want] == [i[:4] for i in index]
    assert list(zip(overview.env.tolist(), overview.start.tolist(), overview.stop.tolist(), overview.ended.tolist())) \
        == [w[:4] for w in want]
    assert [p[:3] for p in per_env] == [w[:3] for w in want]
    for got in ([i[4] for i in index], overview.ret.tolist(), [p[3] for p in per_env]):
        np.testing.assert_allclose(got, [w[4] for w in want], rtol=1e-12)
    finished = [w[4] for w in want if w[3] != UNFINISHED]
    assert stats["done"] == len(finished) == int(fields["done"].sum())
    assert stats["mean_return"] == pytest.approx(np.mean(finished))
