"""Do the intervals hold their level? 1,000 simulated evaluations with a known difference.

Each trial is a synthetic pair of runs of 100 envs: returns are an env effect (the env's start,
constants, terrain) plus skewed episode noise, B's shifted by ``DELTA`` (so B - A is ``DELTA`` for
the mean and the IQM alike); an episode terminates when the env's propensity plus noise falls
below a threshold (B's threshold moves its rate by a known amount). *Paired* runs share the env
effects (same seeds: env k faced the same start in both), *unpaired* runs draw their own. Every
trial runs through `Differences.between`, the code `rollrec compare` runs, all trials at once
(leading axes), with the fixed seed the library uses.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from rollrec.stats.sample import Differences, Sample, verdict_codes

pytestmark = pytest.mark.slow

TRIALS, ENVS, RESAMPLES = 1000, 100, 1000
DELTA = 0.4
THRESHOLD_A, THRESHOLD_B = -0.8, -0.5  # termination when propensity + noise < threshold


def true_rate(threshold: float) -> float:
    return NormalDist().cdf(threshold / np.sqrt(2.0))  # propensity and noise are N(0, 1)


def simulate(seed: int, *, paired: bool, episodes: int, delta: float, thresholds: tuple[float, float]):
    rng = np.random.default_rng(seed)
    shape = (TRIALS, ENVS, episodes)
    env = np.repeat(np.arange(ENVS), episodes)

    def run(effect, propensity, shift, threshold):
        noise = rng.gamma(2.0, 1.0, size=shape) - 2.0  # skewed, mean 0
        ret = (10.0 + shift + effect[..., None] + noise).reshape(TRIALS, -1)
        terminated = (propensity[..., None] + rng.normal(size=shape) < threshold).reshape(TRIALS, -1)
        length = rng.integers(50, 200, size=ret.shape)
        return Sample(env, ret, length, terminated, np.zeros((*ret.shape, 0)), ENVS)

    effect, propensity = rng.normal(size=(TRIALS, ENVS)), rng.normal(size=(TRIALS, ENVS))
    a = run(effect, propensity, 0.0, thresholds[0])
    if not paired:
        effect, propensity = rng.normal(size=(TRIALS, ENVS)), rng.normal(size=(TRIALS, ENVS))
    b = run(effect, propensity, delta, thresholds[1])
    return a, b


def coverage(interval, truth: float) -> float:
    return float(np.mean((interval.low <= truth) & (truth <= interval.high)))


@pytest.mark.parametrize(("paired", "episodes"), [(True, 1), (False, 3)], ids=["paired-first-episode", "unpaired-3-episodes"])
def test_95_percent_intervals_cover_the_true_difference(paired, episodes):
    a, b = simulate(1, paired=paired, episodes=episodes, delta=DELTA, thresholds=(THRESHOLD_A, THRESHOLD_B))
    d = Differences.between(a, b, paired=paired, resamples=RESAMPLES)
    rate = true_rate(THRESHOLD_B) - true_rate(THRESHOLD_A)
    got = {"mean": coverage(d.mean, DELTA), "iqm": coverage(d.iqm, DELTA), "termination": coverage(d.termination, rate)}
    print(f"coverage ({'paired' if paired else 'unpaired'}, {episodes} episodes per env): {got}")
    for metric, share in got.items():
        assert 0.93 <= share <= 0.97, (metric, share)


@pytest.mark.parametrize(("paired", "episodes"), [(True, 1), (False, 3)], ids=["paired-first-episode", "unpaired-3-episodes"])
def test_no_difference_is_rarely_called_better(paired, episodes):
    a, b = simulate(2, paired=paired, episodes=episodes, delta=0.0, thresholds=(THRESHOLD_A, THRESHOLD_A))
    d = Differences.between(a, b, paired=paired, resamples=RESAMPLES)
    better = {"mean": float(np.mean(verdict_codes(d.mean.low, d.mean.high) == 1)),
              "iqm": float(np.mean(verdict_codes(d.iqm.low, d.iqm.high) == 1)),
              "termination": float(np.mean(verdict_codes(d.termination.low, d.termination.high) == -1))}  # lower is better
    print(f"false 'better' at zero difference: {better}")
    for metric, share in better.items():
        assert share <= 0.05, (metric, share)


def test_pairing_narrows_the_interval_when_envs_share_starts():
    a, b = simulate(3, paired=True, episodes=1, delta=DELTA, thresholds=(THRESHOLD_A, THRESHOLD_B))
    paired = Differences.between(a, b, paired=True, resamples=RESAMPLES)
    unpaired = Differences.between(a, b, paired=False, resamples=RESAMPLES)
    for metric in ("mean", "iqm", "termination"):
        p, u = getattr(paired, metric), getattr(unpaired, metric)
        ratio = float(np.median((p.high - p.low) / (u.high - u.low)))
        print(f"{metric}: paired interval / unpaired interval = {ratio:.2f}")
        assert ratio < 0.9, (metric, ratio)
    assert float(np.median(paired.mean.detectable / unpaired.mean.detectable)) < 0.9  # a smaller detectable difference
