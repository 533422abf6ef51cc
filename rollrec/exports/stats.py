"""Feature statistics as LeRobot stores them (``meta/stats.json``, the episodes' ``stats/...``).

Per episode (`episode_stats`): ``min``, ``max``, ``mean``, ``std`` (population), ``count`` and the
quantiles ``q01 q10 q50 q90 q99`` of each column, over the episode's frames; the dataset's
(`StatsAggregate`) combines episodes the way LeRobot's ``aggregate_stats`` does
(``lerobot/datasets/compute_stats.py``, v0.4.4): min of mins, max of maxes, the count-weighted
mean, the pooled variance (each episode's variance plus its mean's squared distance from the
total mean, count-weighted), and count-weighted means of the episodes' quantiles. Scalars
(feature shape ``(1,)``) have stats of shape ``(1,)``, vectors ``(D,)``, images per channel
``(3, 1, 1)`` in ``[0, 1]``; ``count`` is ``(1,)``. Everything is computed in float64.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


def episode_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of one episode's ``[n, D]`` values (columns), each of shape ``(D,)`` (count ``(1,)``)."""
    x = np.asarray(values, dtype=np.float64)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0),
           "count": np.array([x.shape[0]], np.int64)}
    qs = np.quantile(x, QUANTILES, axis=0)
    out.update({k: qs[i] for i, k in enumerate(QUANTILE_KEYS)})
    return out


def image_stats(frames: np.ndarray, *, max_side: int = 150) -> dict[str, np.ndarray]:
    """Per-channel stats ``(3, 1, 1)`` in ``[0, 1]`` of ``[n, H, W, 3]`` uint8 frames (downsampled to
    at most ``max_side`` pixels a side first, as LeRobot samples images); ``count`` is n."""
    n, h, w = frames.shape[:3]
    step = max(1, -(-max(h, w) // max_side))
    pixels = frames[:, ::step, ::step].reshape(-1, frames.shape[-1]) / 255.0
    stats = episode_stats(pixels)
    out = {k: v.reshape(-1, 1, 1) for k, v in stats.items() if k != "count"}
    out["count"] = np.array([n], np.int64)
    return out


class StatsAggregate:
    """Stats of a feature over the episodes `add`-ed so far (see the module docstring)."""

    def __init__(self) -> None:
        self.count = 0
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None  # sum over frames of squared deviations from the mean
        self._q: dict[str, np.ndarray] = {}

    def add(self, ep: dict[str, np.ndarray]) -> None:
        n = int(ep["count"][0])
        if n == 0:
            return
        mean, var = ep["mean"], ep["std"] ** 2
        if self._mean is None:
            self._min, self._max, self._mean, self._m2 = ep["min"].copy(), ep["max"].copy(), mean.copy(), var * n
            self._q = {k: ep[k] * n for k in QUANTILE_KEYS}
            self.count = n
            return
        total = self.count + n
        delta = mean - self._mean
        self._m2 = self._m2 + var * n + delta**2 * (self.count * n / total)
        self._mean = self._mean + delta * (n / total)
        self._min = np.minimum(self._min, ep["min"])
        self._max = np.maximum(self._max, ep["max"])
        for k in QUANTILE_KEYS:
            self._q[k] = self._q[k] + ep[k] * n
        self.count = total

    def result(self) -> dict[str, np.ndarray]:
        if self._mean is None:
            raise ValueError("no frames")
        out = {"min": self._min, "max": self._max, "mean": self._mean, "std": np.sqrt(self._m2 / self.count),
               "count": np.array([self.count], np.int64)}
        out.update({k: v / self.count for k, v in self._q.items()})
        return out


def as_json(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: np.asarray(v).tolist() for k, v in stats.items()}


__all__ = ["QUANTILE_KEYS", "StatsAggregate", "as_json", "episode_stats", "image_stats"]
