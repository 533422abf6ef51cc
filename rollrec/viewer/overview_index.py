"""The overview of a format-v2 file, from its episode index (exact returns, every episode).

A v2 file (`rollrec.io.format_v2`) lists every episode of every env in its index, with its
return summed over every recorded step, also where ``every=k`` keeps one step in k or the
rewards of most envs were not kept. `overview_from_index` turns it into the same `Overview` the
viewer's overview tab shows for a v1 file: one row per episode holding at least one kept step,
steps in the file's rows (row t is recorded step ``t * k``), env-major. ``detail`` marks the
episodes whose rows hold every field (a detail env's, or a captured one). The worst reward term
is computed from ``rew_terms`` where every env kept it (``-1`` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rollrec.viewer.overview.episodes import BLOCK_ELEMENTS, Overview, _column_block, _running_sum


def overview_from_index(rollout, *, steps: int | None = None, block_elements: int = BLOCK_ELEMENTS,
                        progress: Callable[[float], None] | None = None) -> Overview:
    """The `Overview` of ``rollout``'s first ``steps`` rows (default all), from its episode index."""
    T = rollout.T if steps is None else int(steps)
    index = rollout.index
    first, last = index.first_row, np.minimum(index.last_row, T - 1)
    keep = first <= last
    order = np.lexsort((first[keep], index.env[keep]))  # env-major, in time
    rows = np.flatnonzero(keep)[order]
    env = index.env[rows]
    start, stop = first[rows], last[rows] + 1
    new_env = np.r_[True, env[1:] != env[:-1]]
    begins = np.flatnonzero(new_env)
    episode = np.arange(len(rows)) - np.repeat(begins, np.diff(np.append(begins, len(rows))))
    names = tuple(rollout.reward_term_names)
    worst = np.full(len(rows), -1, np.int16)
    worst_value = np.zeros(len(rows))
    if names and "rew_terms" in rollout and rollout.kind("rew_terms") == "all":
        _worst_terms(rollout, env, start, stop, T, len(names), block_elements, worst, worst_value, progress)
    totals = np.bincount(index.env, weights=index.returns, minlength=rollout.N).astype(np.float64)
    if progress is not None:
        progress(1.0)
    return Overview(env.astype(np.int32), episode.astype(np.int32), start.astype(np.int64), stop.astype(np.int64),
                    index.returns[rows].copy(), index.end[rows].astype(np.int8), worst, worst_value, names, totals,
                    rollout.N, T, detail=index.captured[rows].astype(bool) & (index.rows[rows] > 0))


def _worst_terms(rollout, env, start, stop, T, K, block_elements, worst, worst_value, progress) -> None:
    """Fill ``worst``/``worst_value`` from the reward terms, read in blocks of envs."""
    N = rollout.N
    step = max(1, int(block_elements) // (T * K))
    for a in range(0, N, step):
        b = min(N, a + step)
        here = np.flatnonzero((env >= a) & (env < b))
        if here.size:
            terms = _running_sum(_column_block(rollout, "rew_terms", a, b, T, np.float64))  # [T, n, K]
            col = env[here] - a
            total = terms[stop[here] - 1, col]
            total[start[here] > 0] -= terms[start[here][start[here] > 0] - 1, col[start[here] > 0]]
            w = np.argmin(total, axis=1)
            v = total[np.arange(len(w)), w]
            neg = v < 0
            worst[here] = np.where(neg, w, -1)
            worst_value[here] = np.where(neg, v, 0.0)
        if progress is not None:
            progress(b / N)


__all__ = ["overview_from_index"]
