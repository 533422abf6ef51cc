"""The env-cluster bootstrap, vectorised: resampling weights, ratio means, the IQM, intervals.

Episodes of one env are not independent of each other (the env's own constants, terrain, start),
so the unit resampled is the env: a bootstrap replicate draws N envs with replacement and keeps
every episode of each drawn env as many times as it was drawn. A replicate is a row of
``W [B, N]``, the number of times each env was drawn (each row sums to N); with two runs of the
same envs (*paired*), the same row weighs env k in both, so what env k's start and constants
contribute cancels in the difference.

Everything is a matrix product or a gather over ``W``: no Python loop over replicates, envs or
episodes. Statistics of one run:

- a mean over episodes is a ratio of per-env sums, ``(W @ sums) / (W @ counts)`` (`ratio_replicates`);
- the interquartile mean (IQM: the mean of the middle half of the episode returns, with the two
  boundary episodes counted in part; `iqm`) of every replicate at once (`iqm_replicates`): the
  sorted episodes are cut into bands of equal rank, the weight and weighted sum of every band in
  every replicate are one product ``W @ [counts | sums]``, and only the band holding each quartile
  is gathered episode by episode.

Leading axes broadcast (``values [..., E]`` gives ``[..., B]``), so many data sets (the coverage
simulations) run through one call. Numpy only.
"""

from __future__ import annotations

import warnings

import numpy as np

#: Replicates drawn by default: the 2.5% and 97.5% percentiles rest on 50 replicates each.
RESAMPLES = 2000
#: The seed of every bootstrap: the same inputs give the same intervals, run to run.
SEED = 0


def resample_counts(num_envs: int, resamples: int = RESAMPLES, rng: np.random.Generator | None = None) -> np.ndarray:
    """``[B, N]`` float32 (exact counts: N < 2**24): how many times each of ``num_envs`` envs is drawn in each of ``resamples``
    replicates (N draws with replacement; every row sums to N). ``rng`` defaults to ``SEED``."""
    rng = np.random.default_rng(SEED) if rng is None else rng
    n, b = int(num_envs), int(resamples)
    if n < 1 or b < 1:
        raise ValueError(f"need at least one env and one replicate, got {n} envs and {b} replicates")
    if n >= 1 << 24:
        raise ValueError(f"{n} envs: at most {(1 << 24) - 1} are resampled (float32 counts)")
    draws = rng.integers(0, n, size=(b, n), dtype=np.int64)
    draws += (np.arange(b, dtype=np.int64) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float32)


def ratio_replicates(W: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``[..., B, K]`` float64 the ratio ``(W @ sums) / (W @ counts)`` of every replicate: a mean over
    episodes of per-env ``sums [..., N, K]`` over per-env episode ``counts [..., N]``. NaN where a
    replicate drew no episode.

    The products run in float32 (three times faster than float64 here) on sums centred on the
    overall mean, so their rounding is a float32 ulp of the spread, not of the values."""
    W = _float32(W)
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.nan_to_num(sums.sum(axis=-2) / counts.sum(axis=-1)[..., None])  # [..., K]
    centred = sums - counts[..., None] * center[..., None, :]
    lead, (N, K) = sums.shape[:-2], sums.shape[-2:]
    both = _product_all(W, np.concatenate([centred, counts[..., None]], axis=-1).reshape(-1, N, K + 1))
    both = np.swapaxes(both, 1, 2).astype(np.float64).reshape(*lead, W.shape[0], K + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return center[..., None, :] + both[..., :-1] / both[..., -1:]


def iqm(values: np.ndarray) -> np.ndarray:
    """``[...]`` the interquartile mean of ``values [..., E]``: the mean of the middle half of the
    sorted values, ``2/E * integral over u in [E/4, 3E/4] of Q(u)``, where ``Q`` is the sorted values
    as a step function (a value straddling a quartile counts for the part inside). Equals the 25%
    trimmed mean when E is a multiple of 4. NaN for E == 0."""
    v = np.sort(np.asarray(values, dtype=np.float64), axis=-1)
    E = v.shape[-1]
    if E == 0:
        return np.full(v.shape[:-1], np.nan)
    pos = np.arange(E, dtype=np.float64)  # element i spans [i, i + 1)
    part = np.clip(np.minimum(pos + 1, 0.75 * E) - np.maximum(pos, 0.25 * E), 0.0, 1.0)
    return (v * part).sum(axis=-1) / (0.5 * E)


def iqm_replicates(W: np.ndarray, values: np.ndarray, env: np.ndarray) -> np.ndarray:
    """``[..., B]`` the IQM of every replicate of ``W [B, N]``: episode returns ``values [..., E]``
    of envs ``env [..., E]`` (int, ``0..N-1``), each episode weighted by its env's draw count.

    The integral of `iqm` with sorted episode i spanning its weight: exact, not an approximation.
    How: the sorted episodes are cut into `BRANCH` bands of equal rank; the weight and weighted sum of
    every band in every replicate are one product ``W @ [counts | sums]`` (per-env counts and sums
    of each band); the band holding each quartile is cut again the same way, over the envs it holds,
    until it holds at most `LEAF` episodes, which are gathered one by one. NaN where a replicate
    holds no episode.
    """
    W = _float32(W)
    values = np.asarray(values, dtype=np.float64)
    env = np.broadcast_to(np.asarray(env, dtype=np.int64), values.shape)
    B = W.shape[0]
    lead, E = values.shape[:-1], values.shape[-1]
    if E == 0:
        return np.full((*lead, B), np.nan)
    order = np.argsort(values, axis=-1, kind="stable")
    v = np.take_along_axis(values, order, -1).reshape(-1, E)  # [S, E] sorted, one row per data set
    e = np.take_along_axis(env, order, -1).reshape(-1, E)
    G = min(FIRST_BRANCH, -(-E // LEAF))
    step = max(1, _SETS_BLOCK // (B * (2 * G + 2)))  # data sets at a time: bounds the [2G, S * B] arrays
    out = [_iqm_sorted(W, v[i : i + step], e[i : i + step], G) for i in range(0, v.shape[0], step)]
    return np.concatenate(out).reshape(*lead, B)


_SETS_BLOCK = 1 << 24


def _iqm_sorted(W: np.ndarray, v: np.ndarray, e: np.ndarray, G: int) -> np.ndarray:
    """``[S, B]`` `iqm_replicates` of data sets ``v [S, E]`` (sorted) of envs ``e [S, E]``, first cut in G bands."""
    (B, N), (S, E) = W.shape, v.shape
    center = v[:, E // 2].copy()  # products run in float32 on values centred on their median
    v = v - center[:, None]
    # The first cut, of every data set at once: [S, B, G] weights and sums of G bands.
    size = -(-E // G)
    cell = ((np.arange(S)[:, None] * N + e) * G + np.arange(E) // size).ravel()
    per_env = np.concatenate([np.bincount(cell, minlength=S * N * G).reshape(S, N, G),
                              np.bincount(cell, weights=v.ravel(), minlength=S * N * G).reshape(S, N, G)], axis=2)
    # Band-major [2G + 1, S * B]: row g + 1 the weight (then the sum) of bands 0..g; short running sums
    # over a few bands are row adds (np.cumsum along an axis of length G runs one tiny loop per row).
    per_band = _product_all(W, per_env).transpose(1, 0, 2).reshape(2 * G, S * B)
    cum = np.zeros((2 * G + 2, S * B))
    cum[1 : G + 1] = per_band[:G]
    cum[G + 2 :] = per_band[G:]
    for g in range(1, G):
        cum[g + 1] += cum[g]
        cum[G + g + 2] += cum[G + g + 1]
    cum_w0, cum_s0 = cum[: G + 1], cum[G + 1 :]  # [g]: the weight and sum of the bands before band g
    total = cum_w0[G]
    rows = np.arange(S * B)
    out = np.zeros(S * B)
    for q, sign in ((0.75, 1.0), (0.25, -1.0)):
        x = q * total
        g = np.minimum((cum_w0[1:] < x).sum(axis=0), G - 1)
        lo = g * size
        cut = _Cut(lo, np.minimum(lo + size, E), cum_w0[g, rows], cum_s0[g, rows])
        while True:
            wide = np.flatnonzero(cut.hi - cut.lo > LEAF)
            if not wide.size:
                break
            _refine(cut, wide, x, W, v, e)
        out += sign * _leaf_integral(cut, x, W, v, e)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (out / (0.5 * total) + np.repeat(center, B)).reshape(S, B)


#: Bands of the first cut of the sorted episodes (one product for every replicate and data set), of
#: each later cut, and the most episodes gathered one by one per replicate. A gathered episode costs
#: about as much as 300 multiply-adds of a product here, hence a fine first cut.
FIRST_BRANCH, BRANCH, LEAF = 64, 16, 16


class _Cut:
    """Per replicate row (``[S * B]``): the band ``[lo, hi)`` of sorted episodes holding the target,
    and the weight and weighted sum of the episodes before it."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, before_w: np.ndarray, before_s: np.ndarray):
        self.lo, self.hi, self.before_w, self.before_s = lo, hi, before_w, before_s


def _refine(cut: _Cut, wide: np.ndarray, x: np.ndarray, W: np.ndarray, v: np.ndarray, e: np.ndarray) -> None:
    """Cut the band of every row in ``wide`` into up to `BRANCH` bands and keep the one holding ``x``.

    Rows sharing a band (data set and range) share one product, over the envs that band holds only."""
    B, E = W.shape[0], v.shape[1]
    key = (wide // B * E + cut.lo[wide]) * (E + 1) + cut.hi[wide]
    keys, group = np.unique(key, return_inverse=True)
    for k in range(len(keys)):
        mine = wide[group == k]
        s, lo, hi = int(mine[0] // B), int(cut.lo[mine[0]]), int(cut.hi[mine[0]])
        n = hi - lo
        G = min(BRANCH, -(-n // LEAF))
        size = -(-n // G)
        envs, local = np.unique(e[s, lo:hi], return_inverse=True)
        cell = local * G + np.arange(n) // size
        m = len(envs)
        per_env = np.concatenate([np.bincount(cell, minlength=m * G).reshape(m, G),
                                  np.bincount(cell, weights=v[s, lo:hi], minlength=m * G).reshape(m, G)], axis=1)
        per_band = _product(W, mine % B, envs, per_env)  # [rows, 2G]
        cw = cut.before_w[mine, None] + np.cumsum(per_band[:, :G], axis=1)
        cs = cut.before_s[mine, None] + np.cumsum(per_band[:, G:], axis=1)
        j = np.minimum((cw < x[mine, None]).sum(axis=1), G - 1)
        r = np.arange(len(mine))
        cut.before_w[mine] = cw[r, j] - per_band[r, j]
        cut.before_s[mine] = cs[r, j] - per_band[r, G + j]
        cut.lo[mine] = lo + j * size
        cut.hi[mine] = np.minimum(lo + (j + 1) * size, hi)


def _product(W: np.ndarray, b: np.ndarray, envs: np.ndarray, per_env: np.ndarray) -> np.ndarray:
    """``W[b][:, envs] @ per_env``, computed the cheapest way: a gather of the few columns a narrow band
    needs, else one product over every env (rows picked before it when they are few, after when many)."""
    B, N = W.shape
    per_env = per_env.astype(np.float32)
    if len(envs) * 8 <= N:
        out = W[np.ix_(b, envs)] @ per_env
    else:
        full = np.zeros((N, per_env.shape[1]), np.float32)
        full[envs] = per_env
        out = (W @ full)[b] if 2 * len(b) >= B else W[b] @ full
    return out.astype(np.float64)


def _leaf_integral(cut: _Cut, x: np.ndarray, W: np.ndarray, v: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``[S * B]`` the integral from 0 to ``x``: what lies before each row's band, then its episodes one
    by one (rows taken in blocks of about `_LEAF_BLOCK` episodes, to bound the temporaries)."""
    width = int((cut.hi - cut.lo).max())
    step = max(1, _LEAF_BLOCK // max(width, 1))
    out = np.empty(len(x))
    for r0 in range(0, len(x), step):
        r = slice(r0, min(r0 + step, len(x)))
        out[r] = _leaf_block(cut.lo[r], cut.hi[r], cut.before_w[r], cut.before_s[r], x[r], np.arange(r.start, r.stop),
                             width, W, v, e)
    return out


_LEAF_BLOCK = 1 << 20


def _leaf_block(lo, hi, before_w, before_s, x, rows, width, W, v, e) -> np.ndarray:
    (B, N), E = W.shape, v.shape[1]
    # Laid out [width, rows]: the running sum is one contiguous row add per position (np.cumsum
    # along either axis of such short rows runs an order of magnitude slower).
    # Episodes past the band (and repeats of the last one past E) start at or after the weight that ends
    # the band, which is at least x: they add nothing, so no mask is needed. Weights are whole numbers
    # below 2**24 and x a multiple of 1/4 of one: float32 holds them exactly.
    idx = lo[None, :] + np.arange(width)[:, None]  # sorted positions
    np.minimum(idx, E - 1, out=idx)
    idx += rows // B * E
    vals = np.take(v, idx)
    idx = np.take(e, idx)
    idx += rows % B * N
    w = np.take(W, idx)
    start = np.empty_like(w)  # the weight before each episode, in its band
    start[0] = 0.0
    for j in range(1, width):
        np.add(start[j - 1], w[j - 1], out=start[j])
    start += before_w.astype(np.float32)  # where each episode's weight begins
    np.subtract(x.astype(np.float32), start, out=start)
    np.clip(start, 0.0, w, out=start)  # the part of each episode's weight below x
    return before_s + np.einsum("lr,lr->r", vals, start.astype(np.float64))


def _product_all(W: np.ndarray, per_env: np.ndarray) -> np.ndarray:
    """``[S, C, B]`` float32 ``(W @ per_env[s]).T`` for every data set ``s`` of ``per_env [S, N, C]``: one
    float32 product (as ``[N, S * C]``, so BLAS runs it as one matrix product)."""
    S, N, C = per_env.shape
    right = np.ascontiguousarray(per_env.transpose(1, 0, 2).reshape(N, S * C), dtype=np.float32)
    return (W @ right).T.reshape(S, C, W.shape[0])


def _float32(W: np.ndarray) -> np.ndarray:
    W = np.asarray(W)
    return W if W.dtype == np.float32 else W.astype(np.float32)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` ``[...]``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of
    ``replicates [..., B]`` (NaN replicates, which drew no episode, left out)."""
    a = (1.0 - float(level)) / 2.0
    replicates = np.asarray(replicates, dtype=np.float64)
    if replicates.size == 0:
        empty = np.zeros(replicates.shape[:-1])
        return empty, empty.copy()
    if not np.isnan(replicates).any():  # np.nanquantile runs a Python loop over rows
        q = np.quantile(replicates, [a, 1.0 - a], axis=-1)
        return q[0], q[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no replicate drew an episode
        q = np.nanquantile(replicates, [a, 1.0 - a], axis=-1)
    return q[0], q[1]


__all__ = ["RESAMPLES", "SEED", "iqm", "iqm_replicates", "percentile_interval", "ratio_replicates", "resample_counts"]
