"""Wilson and Newcombe intervals against the published worked examples, and the cluster rate."""

from __future__ import annotations

import numpy as np
import pytest

from rollrec.stats.rates import cluster_rate, newcombe_difference, paired_phi, rate_difference, wilson_interval, z_value


def test_wilson_interval_matches_newcombe_1998():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I: 81/263
    lo, hi = wilson_interval(81 / 263, 263, 0.95)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.2553, 0.3662)
    lo, hi = wilson_interval(0.0, 10, 0.95)  # 0/10: the interval still has width
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)


def test_newcombe_difference_matches_the_worked_example():
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # method 10 on 56/70 - 48/80: 0.0524 to 0.3339
    lo, hi = newcombe_difference(56 / 70, 70, 48 / 80, 80, 0.95)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.0524, 0.3339)


def test_paired_correlation_narrows_the_interval():
    lo0, hi0 = newcombe_difference(0.3, 100, 0.2, 100, 0.95, phi=0.0)
    lo, hi = newcombe_difference(0.3, 100, 0.2, 100, 0.95, phi=0.8)
    assert lo > lo0 and hi < hi0 and lo < 0.1 < hi


def test_cluster_rate_with_one_episode_per_env_is_the_plain_rate():
    events = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1, 0], float)
    r = cluster_rate(events, np.ones(10))
    assert r.rate == pytest.approx(0.3) and r.episodes == 10
    assert r.effective_n == pytest.approx(10 * 9 / 10)  # design effect N / (N - 1)


def test_correlated_episodes_count_for_fewer():
    # every env terminates all of its 5 episodes or none: 20 envs carry what 20 episodes would
    events = np.repeat([5.0, 0.0], 10)
    r = cluster_rate(events, np.full(20, 5.0))
    assert r.rate == pytest.approx(0.5)
    assert r.effective_n == pytest.approx(20 * 19 / 20)
    # independent-looking episodes keep their count (the design effect is never below 1)
    r = cluster_rate(np.array([1.0, 2, 1, 2]), np.full(4, 3.0))
    assert r.effective_n <= 12 and r.effective_n > 8


def test_paired_phi_is_the_phi_coefficient_of_the_two_by_two_table():
    a = np.array([1, 1, 0, 0, 1, 0, 0, 0], float)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], float)
    ones = np.ones(8)
    phi = paired_phi(cluster_rate(a, ones), cluster_rate(b, ones))
    assert phi == pytest.approx(np.corrcoef(a, b)[0, 1])
    lo, hi = rate_difference(cluster_rate(a, ones), cluster_rate(b, ones), 0.95, paired=True)
    assert lo < 0 < hi


def test_level_is_checked():
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        z_value(95)
