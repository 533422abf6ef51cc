"""The env-cluster bootstrap: every vectorised statistic equals the same statistic computed one
replicate at a time, the plain way."""

from __future__ import annotations

import numpy as np
import pytest

from rollrec.stats.bootstrap import (
    LEAF,
    iqm,
    iqm_replicates,
    percentile_interval,
    ratio_replicates,
    resample_counts,
)


def weighted_iqm(values: np.ndarray, weights: np.ndarray) -> float:
    """The reference: sort, lay each value over its weight, integrate the middle half."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    total = w.sum()
    start = np.cumsum(w) - w

    def integral(x: float) -> float:
        return float((v * np.clip(x - start, 0, w)).sum())

    return (integral(0.75 * total) - integral(0.25 * total)) / (0.5 * total)


def test_iqm_is_the_25_percent_trimmed_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    assert iqm(x) == pytest.approx(np.sort(x)[10:30].mean())
    # 10 values: the middle half is 5 values, the 3rd and 8th count for half each
    y = np.arange(10.0)
    assert iqm(y) == pytest.approx((0.5 * 2 + 3 + 4 + 5 + 6 + 0.5 * 7) / 5)
    assert np.isnan(iqm(np.zeros(0)))
    np.testing.assert_allclose(iqm(np.stack([x, -x])), [iqm(x), -iqm(x)])


def test_resample_counts_draw_n_envs_per_replicate_from_a_fixed_seed():
    W = resample_counts(50, 300)
    assert W.shape == (300, 50) and W.dtype == np.float32
    assert (W.sum(axis=1) == 50).all() and (W >= 0).all()
    np.testing.assert_array_equal(W, resample_counts(50, 300))  # the same seed, the same replicates
    assert abs(W.mean() - 1.0) < 1e-6 and 0.8 < W.var() < 1.2  # multinomial(N, 1/N): variance ~1
    with pytest.raises(ValueError, match="at least one env"):
        resample_counts(0, 10)


@pytest.mark.parametrize(("N", "E"), [(5, 7), (40, 40), (50, 5000), (3, 20000), (400, 30000), (64, 64 * LEAF + 3)])
def test_iqm_of_every_replicate_equals_the_reference(N, E):
    rng = np.random.default_rng(N + E)
    env = rng.integers(0, N, E)
    values = rng.normal(size=E).round(2) + rng.normal(size=N)[env]  # ties, and envs that differ
    W = resample_counts(N, 40, rng)
    got = iqm_replicates(W, values, env)
    want = [weighted_iqm(values, w[env].astype(np.float64)) for w in W]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * values.std())


def test_iqm_replicates_broadcast_over_data_sets_and_handle_empty_replicates():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 4, 60))
    env = rng.integers(0, 10, size=(3, 4, 60))
    W = resample_counts(10, 30, rng)
    got = iqm_replicates(W, values, env)
    assert got.shape == (3, 4, 30)
    for i in range(3):
        for j in range(4):
            want = [weighted_iqm(values[i, j], w[env[i, j]].astype(np.float64)) for w in W]
            np.testing.assert_allclose(got[i, j], want, atol=1e-6)
    W = np.zeros((2, 10), np.float32)
    W[0, 3] = 10  # one env drawn ten times: its own IQM
    env = np.arange(60) % 10
    got = iqm_replicates(W, values[0, 0], env)
    assert got[0] == pytest.approx(iqm(values[0, 0][env == 3]), abs=1e-6)
    assert np.isnan(got[1])  # a replicate holding no episode


def test_ratio_replicates_are_means_over_the_drawn_envs_episodes():
    rng = np.random.default_rng(2)
    N, K = 30, 3
    counts = rng.integers(0, 4, N).astype(np.float64)
    sums = rng.normal(1000.0, 5.0, size=(N, K)) * counts[:, None]  # large values: centred before float32
    W = resample_counts(N, 50, rng)
    got = ratio_replicates(W, sums, counts)
    want = (W.astype(np.float64) @ sums) / (W.astype(np.float64) @ counts)[:, None]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    batched = ratio_replicates(W, np.stack([sums, 2 * sums]), np.stack([counts, counts]))
    np.testing.assert_allclose(batched[1], 2 * want, rtol=1e-9)


def test_percentile_interval_leaves_out_replicates_without_episodes():
    reps = np.arange(1000, dtype=np.float64)
    lo, hi = percentile_interval(reps, 0.95)
    assert lo == pytest.approx(np.quantile(reps, 0.025)) and hi == pytest.approx(np.quantile(reps, 0.975))
    reps[::10] = np.nan
    lo, hi = percentile_interval(np.stack([reps, reps]), 0.9)
    finite = reps[np.isfinite(reps)]
    np.testing.assert_allclose(lo, np.quantile(finite, 0.05))
    np.testing.assert_allclose(hi, np.quantile(finite, 0.95))
