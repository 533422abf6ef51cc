"""Rates (the share of episodes that ended by termination) and the interval of their difference.

- `wilson_interval`: Wilson's score interval of a proportion (Wilson 1927), which keeps its
  coverage near 0 and 1 where the textbook p ± z·se interval collapses.
- `newcombe_difference`: Newcombe's hybrid score interval of the difference of two proportions
  from their Wilson intervals (Newcombe 1998, Statistics in Medicine 17: "Interval estimation for
  the difference between independent proportions", method 10; and, for paired samples, "Improved
  confidence intervals for the difference between binomial proportions based on paired data",
  method 10, with the correlation ``phi`` of the pairs).
- `cluster_rate`: the rate of one run whose envs each contribute any number of episodes. Episodes
  of one env are correlated, so the n of the Wilson interval is the *effective* number of
  episodes (Kish's design effect: the variance of the ratio estimator over env clusters against
  the binomial variance, never below 1), and the paired ``phi`` is the correlation of the two
  runs' per-env residuals. With one episode per env (``--first-episode``) the design effect is
  N / (N - 1) and ``phi`` is exactly Newcombe's phi coefficient of the 2x2 table.

Every function broadcasts over leading axes. Numpy only (z quantiles from the standard library).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def z_value(level: float) -> float:
    """The two-sided standard normal quantile of ``level`` (1.95996... for 0.95)."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def wilson_interval(p: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` Wilson score interval of a proportion ``p`` observed over ``n`` trials (``n``
    may be an effective, non-integer count). NaN where ``n`` is 0."""
    z = z_value(level)
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z2n = z * z / n
        center = (p + z2n / 2.0) / (1.0 + z2n)
        half = z * np.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    return center - half, center + half


def newcombe_difference(p1: np.ndarray, n1: np.ndarray, p2: np.ndarray, n2: np.ndarray, level: float,
                        phi: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` interval of ``p1 - p2`` from the Wilson intervals of ``p1`` (over ``n1``) and
    ``p2`` (over ``n2``); ``phi``: the correlation of paired samples (0: independent samples)."""
    l1, u1 = wilson_interval(p1, n1, level)
    l2, u2 = wilson_interval(p2, n2, level)
    p1, p2, phi = np.asarray(p1, np.float64), np.asarray(p2, np.float64), np.asarray(phi, np.float64)
    with np.errstate(invalid="ignore"):
        lower = np.sqrt(np.maximum((p1 - l1) ** 2 - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
        upper = np.sqrt(np.maximum((u1 - p1) ** 2 - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    d = p1 - p2
    return d - lower, d + upper


@dataclass(frozen=True)
class ClusterRate:
    """A rate over envs' episodes: ``rate`` = events / episodes, ``effective_n`` (Kish), and the
    per-env residuals ``events_k - rate * episodes_k`` (``[..., N]``, for the paired correlation)."""

    rate: np.ndarray
    episodes: np.ndarray
    effective_n: np.ndarray
    residuals: np.ndarray


def cluster_rate(events: np.ndarray, episodes: np.ndarray) -> ClusterRate:
    """The rate of ``events [..., N]`` (per env) over ``episodes [..., N]`` (per env), and its
    effective number of episodes: ``n / deff`` with ``deff = max(1, var_cluster / var_binomial)``."""
    events = np.asarray(events, dtype=np.float64)
    episodes = np.asarray(episodes, dtype=np.float64)
    n = episodes.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = events.sum(axis=-1) / n
        residuals = events - rate[..., None] * episodes
        clusters = (episodes > 0).sum(axis=-1)
        var_cluster = clusters / np.maximum(clusters - 1, 1) * (residuals**2).sum(axis=-1) / (n * n)
        var_binomial = rate * (1.0 - rate) / n
        deff = np.where(var_binomial > 0, np.maximum(var_cluster / var_binomial, 1.0), 1.0)
    return ClusterRate(rate, n, n / deff, np.nan_to_num(residuals))


def paired_phi(a: ClusterRate, b: ClusterRate) -> np.ndarray:
    """The correlation over envs of two runs' per-env residuals (0 where either does not vary)."""
    num = (a.residuals * b.residuals).sum(axis=-1)
    den = np.sqrt((a.residuals**2).sum(axis=-1) * (b.residuals**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, 0.0)


def rate_difference(a: ClusterRate, b: ClusterRate, level: float, *, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` interval of ``b.rate - a.rate`` (Newcombe's method 10 on the effective counts;
    with ``paired``, the runs' envs are the pairs)."""
    phi = paired_phi(a, b) if paired else 0.0
    return newcombe_difference(b.rate, b.effective_n, a.rate, a.effective_n, level, phi)


__all__ = ["ClusterRate", "cluster_rate", "newcombe_difference", "paired_phi", "rate_difference", "wilson_interval",
           "z_value"]
