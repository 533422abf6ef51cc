"""The completed episodes of a run as the statistics see them, and every difference between two runs.

`Sample` holds one run's completed episodes (env, return, length, termination, reward-term sums),
or many data sets of the same shape at once along leading axes (the coverage simulations).
`Differences.between(a, b)` computes every metric of both runs, the bootstrap replicates of each
difference (env-cluster bootstrap: `rollrec.stats.bootstrap`), their intervals and the
termination rate's Newcombe interval (`rollrec.stats.rates`). Paired runs (env k of one faced
what env k of the other did) share one resampling of envs; unpaired runs are resampled apart.
Numpy only, no Python loop over envs, episodes or replicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rollrec.stats.bootstrap import (
    RESAMPLES,
    SEED,
    iqm,
    iqm_replicates,
    percentile_interval,
    ratio_replicates,
    resample_counts,
)
from rollrec.stats.rates import ClusterRate, cluster_rate, rate_difference, z_value

#: Power at which the smallest detectable difference is stated (the usual 80%).
POWER = 0.8


@dataclass(frozen=True)
class Sample:
    """Completed episodes ``[..., E]`` of ``num_envs`` envs: ``env`` (int, 0..N-1), ``ret`` (return),
    ``length`` (steps), ``terminated`` (bool: ended by termination, not a time limit), ``terms``
    ``[..., E, K]`` (each reward term's sum over the episode; K may be 0)."""

    env: np.ndarray
    ret: np.ndarray
    length: np.ndarray
    terminated: np.ndarray
    terms: np.ndarray
    num_envs: int
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_episodes(self) -> int:
        return int(self.ret.shape[-1])

    def per_env(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(episodes [..., N], sums [..., N, 2 + K], terminations [..., N])``: per env, the completed
        episodes, the sums of (return, length, each term) over them, and how many terminated."""
        if "per_env" not in self._cache:
            lead, E, N = self.ret.shape[:-1], self.ret.shape[-1], self.num_envs
            S = int(np.prod(lead, dtype=np.int64))
            cell = (np.arange(S)[:, None] * N + np.broadcast_to(self.env, self.ret.shape).reshape(S, E)).ravel()
            values = np.concatenate([self.ret.reshape(S, E, 1), self.length.reshape(S, E, 1).astype(np.float64),
                                     self.terms.reshape(S, E, -1)], axis=2)
            K2 = values.shape[2]
            episodes = np.bincount(cell, minlength=S * N).reshape(*lead, N).astype(np.float64)
            cols = [np.bincount(cell, weights=values[..., j].ravel(), minlength=S * N) for j in range(K2)]
            sums = np.stack(cols, axis=-1).reshape(*lead, N, K2)
            falls = np.bincount(cell, weights=self.terminated.reshape(S * E).astype(np.float64), minlength=S * N)
            self._cache["per_env"] = (episodes, sums, falls.reshape(*lead, N))
        return self._cache["per_env"]

    def means(self) -> np.ndarray:
        """``[..., 2 + K]`` the mean return, length and term sums over the completed episodes (NaN: none)."""
        episodes, sums, _ = self.per_env()
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums.sum(axis=-2) / episodes.sum(axis=-1)[..., None]

    def iqm(self) -> np.ndarray:
        """``[...]`` the IQM of the returns (NaN: no episode)."""
        return iqm(self.ret)

    def rate(self) -> ClusterRate:
        episodes, _, falls = self.per_env()
        return cluster_rate(falls, episodes)


@dataclass(frozen=True)
class Interval:
    """A difference (run minus baseline) with its interval and the smallest difference the data could
    detect (at ``POWER``): arrays of the leading shape."""

    difference: np.ndarray
    low: np.ndarray
    high: np.ndarray
    detectable: np.ndarray


@dataclass(frozen=True)
class Differences:
    """Every difference of run ``b`` against baseline ``a``: ``mean`` (return), ``iqm`` (return),
    ``length``, ``terms`` (``[..., K]`` arrays in each field), ``termination`` (rate)."""

    mean: Interval
    iqm: Interval
    length: Interval
    terms: Interval
    termination: Interval
    paired: bool
    level: float
    resamples: int

    @classmethod
    def between(cls, a: Sample, b: Sample, *, paired: bool, level: float = 0.95, resamples: int = RESAMPLES,
                seed: int = SEED) -> Differences:
        """``b`` against ``a`` at ``level``. ``paired`` needs the same number of envs (env k of ``a``
        pairs with env k of ``b``). The replicates depend on ``seed``, the env counts and ``paired``
        only, so the same two runs give the same intervals in every call."""
        if paired and a.num_envs != b.num_envs:
            raise ValueError(f"paired runs need the same number of envs, got {a.num_envs} and {b.num_envs}")
        rng = np.random.default_rng(seed)
        Wa = resample_counts(a.num_envs, resamples, rng)
        Wb = Wa if paired else resample_counts(b.num_envs, resamples, rng)
        z = z_value(level)
        spread = z + z_value(2 * POWER - 1)  # two-sided level, one-sided power

        def boot(point: np.ndarray, reps: np.ndarray) -> Interval:
            lo, hi = percentile_interval(reps, level)
            with np.errstate(invalid="ignore"):
                se = np.nanstd(reps, axis=-1, ddof=1) if reps.shape[-1] > 1 else np.full(point.shape, np.nan)
            return Interval(point, lo, hi, spread * se)

        diff_means = b.means() - a.means()  # [..., 2 + K]
        ratios = _ratio_differences(Wa, Wb, a, b)  # [..., B, 2 + K]
        mean = boot(diff_means[..., 0], ratios[..., 0])
        length = boot(diff_means[..., 1], ratios[..., 1])
        terms = boot(diff_means[..., 2:], np.moveaxis(ratios[..., 2:], -1, -2))
        iqm_reps = iqm_replicates(Wb, b.ret, b.env) - iqm_replicates(Wa, a.ret, a.env)
        iqm_ = boot(b.iqm() - a.iqm(), iqm_reps)
        ra, rb = a.rate(), b.rate()
        lo, hi = rate_difference(ra, rb, level, paired=paired)
        termination = Interval(rb.rate - ra.rate, lo, hi, spread * (hi - lo) / (2 * z))
        return cls(mean, iqm_, length, terms, termination, paired, float(level), int(resamples))


def _ratio_differences(Wa: np.ndarray, Wb: np.ndarray, a: Sample, b: Sample) -> np.ndarray:
    """``[..., B, 2 + K]`` replicates of the differences of mean return, length and term sums."""
    ea, sa, _ = a.per_env()
    eb, sb, _ = b.per_env()
    return ratio_replicates(Wb, sb, eb) - ratio_replicates(Wa, sa, ea)


def verdict_codes(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``[...]`` int8: +1 where the interval lies above 0 (the run is higher), -1 below, 0 where it
    holds 0 (or is undefined)."""
    low, high = np.asarray(low), np.asarray(high)
    return (np.where(low > 0, 1, 0) - np.where(high < 0, 1, 0)).astype(np.int8)


__all__ = ["POWER", "Differences", "Interval", "Sample", "verdict_codes"]
