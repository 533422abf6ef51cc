"""Every episode of every env, computed once with vectorised numpy, in bounded memory.

`compute_overview` reads ``rew``, ``done``, ``truncated`` and ``rew_terms`` in blocks of env
columns (about `BLOCK_ELEMENTS` float64 values of reward terms per block), so a multi-GB rollout
is summarised without holding any of them whole. Per block, the episodes are found by the one
segmentation kernel (`rollrec.io.segments`: ends are the steps whose ``done`` is set, plus the
last step of an unfinished tail); returns and per-term sums are differences of running sums at
those ends. No Python loop runs over envs or episodes.

A format-v2 file is summarised from its episode index instead (`overview_from_index`: exact
returns, every episode). Plain Python, no viser: the overview tab (`rollrec.viewer.overview.gui`)
shows it, tests check it against a per-env loop, ``benchmarks/test_overview_benchmark.py`` times it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rollrec.io.segments import TERMINATED, TRUNCATED, running_sum, segment
from rollrec.io.segments import UNFINISHED as UNFINISHED  # an `Overview.ended` code too

#: How an episode ended, by code (`Overview.ended`).
ENDED_BY: tuple[str, ...] = ("unfinished", "termination", "time-out")
TERMINATION, TIME_OUT = TERMINATED, TRUNCATED  # the end codes of `rollrec.io.segments`
#: Elements (steps x envs x terms) per block: bounds the float64 working set to ~64 MB.
BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class Overview:
    """Every episode of a rollout's first ``num_steps`` steps, env-major (env 0's episodes in
    order, then env 1's, ...). Arrays are ``[E]`` unless noted.

    An episode ends after a step whose ``done`` is set; the last one of an env may be
    unfinished (``stop == num_steps``). ``worst_term`` is the index (into ``term_names``) of the
    reward term with the most negative sum over the episode, -1 when no term summed below zero;
    ``worst_value`` is that sum (0.0 for -1).
    """

    env: np.ndarray  # int32
    episode: np.ndarray  # int32, index of the episode within its env
    start: np.ndarray  # int64, first step
    stop: np.ndarray  # int64, one past the last step
    ret: np.ndarray  # float64, sum of rew over the episode
    ended: np.ndarray  # int8, codes into ENDED_BY
    worst_term: np.ndarray  # int16
    worst_value: np.ndarray  # float64
    term_names: tuple[str, ...]
    env_totals: np.ndarray  # [N] float64, sum of rew over all steps, per env
    num_envs: int
    num_steps: int
    detail: np.ndarray | None = None  # [E] bool: every field kept for it (format v2 files; None: all)

    def __len__(self) -> int:
        return len(self.env)

    @property
    def length(self) -> np.ndarray:
        """``[E]`` int64 steps in each episode."""
        return self.stop - self.start

    def counts(self) -> dict[str, int]:
        """Episodes by how they ended: ``{"unfinished": n, "termination": n, "time-out": n}``."""
        hist = np.bincount(self.ended.astype(np.int64), minlength=len(ENDED_BY))
        return {name: int(n) for name, n in zip(ENDED_BY, hist)}

    def find(self, env: int, step: int) -> int:
        """Row of the episode of ``env`` that contains ``step``. Raises IndexError when none does."""
        lo, hi = np.searchsorted(self.env, [env, env + 1])
        i = lo + int(np.searchsorted(self.stop[lo:hi], step, side="right"))
        if not lo <= i < hi:
            raise IndexError(f"no episode of env {env} contains step {step}")
        return int(i)


def column_block(rollout, key: str, a: int, b: int, steps: int, dtype) -> np.ndarray:
    """``rollout[key][:steps, a:b]`` as a new array of ``dtype`` (the one read of the file, with pread:
    a file truncated meanwhile raises `RolloutFormatError`, never SIGBUS)."""
    return np.asarray(rollout.read(key, (0, steps), (a, b)), dtype=dtype)


def compute_overview(
    rollout,
    *,
    steps: int | None = None,
    block_elements: int = BLOCK_ELEMENTS,
    progress: Callable[[float], None] | None = None,
) -> Overview:
    """The `Overview` of ``rollout`` (a `Rollout`) over its first ``steps`` steps (default all).

    Reads ``rew``, ``done``, ``truncated`` (when present) and ``rew_terms`` of about
    ``block_elements`` (steps x envs x terms) at a time; memory stays bounded whatever the file
    size. ``progress`` is called with the fraction done after each block. A file with an episode
    index (format v2) is summarised from it (`overview_from_index`).
    """
    T = rollout.T if steps is None else int(steps)
    if not 0 < T <= rollout.T:
        raise ValueError(f"steps must be in 1..{rollout.T}, got {steps}")
    if rollout.layout.has_index:
        return overview_from_index(rollout, steps=T, block_elements=block_elements, progress=progress)
    N = rollout.N
    names = tuple(rollout.reward_term_names)
    K = len(names)
    has_truncated = "truncated" in rollout
    step = max(1, int(block_elements) // (T * max(1, K)))
    parts: list[tuple[np.ndarray, ...]] = []
    totals = np.zeros(N, np.float64)
    for a in range(0, N, step):
        b = min(N, a + step)
        parts.append(_episodes_of_block(rollout, a, b, T, K, has_truncated, totals))
        if progress is not None:
            progress(b / N)
    env, episode, start, stop, ret, ended, worst, worst_value = (np.concatenate(p) for p in zip(*parts))
    return Overview(env, episode, start, stop, ret, ended, worst, worst_value, names, totals, N, T)


def _episodes_of_block(rollout, a: int, b: int, T: int, K: int, has_truncated: bool, totals: np.ndarray):
    done = column_block(rollout, "done", a, b, T, bool)  # [T, n]
    truncated = column_block(rollout, "truncated", a, b, T, bool) if has_truncated else None
    csum = running_sum(column_block(rollout, "rew", a, b, T, np.float64))  # [T, n]
    totals[a:b] = csum[-1]
    seg = segment(done, truncated)  # env-major, steps ascending within an env
    ret = seg.sums(csum)
    if K:
        term_sum = seg.sums(running_sum(column_block(rollout, "rew_terms", a, b, T, np.float64)))  # [E, K]
        worst = np.argmin(term_sum, axis=1)
        worst_value = term_sum[np.arange(len(worst)), worst]
        none = ~(worst_value < 0)
        worst = np.where(none, -1, worst)
        worst_value = np.where(none, 0.0, worst_value)
    else:
        worst = np.full(len(seg), -1)
        worst_value = np.zeros(len(seg))
    return (
        (seg.env + a).astype(np.int32),
        seg.number().astype(np.int32),
        seg.start,
        seg.stop,
        ret,
        seg.end.astype(np.int8),
        worst.astype(np.int16),
        worst_value.astype(np.float64),
    )


def compute_env_totals(rollout, *, steps: int | None = None, block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """``[N]`` float64 sum of ``rew`` over the first ``steps`` steps (default all), per env,
    read in blocks of about ``block_elements`` values (with an episode index: its exact returns)."""
    T = rollout.T if steps is None else int(steps)
    if rollout.layout.has_index and T == rollout.T:
        return rollout.total_rewards()
    N = rollout.N
    totals = np.zeros(N, np.float64)
    step = max(1, int(block_elements) // max(1, T))
    for a in range(0, N, step):
        b = min(N, a + step)
        totals[a:b] = column_block(rollout, "rew", a, b, T, np.float64).sum(axis=0)
    return totals


def histogram(values: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """``(edges [B+1], counts [B])`` of the finite ``values``; one unit-wide bin around a
    constant, ``([0, 1], [0])`` when there is nothing to count."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.array([0.0, 1.0]), np.zeros(1, np.int64)
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=max(1, int(bins)), range=(lo, hi))
    return edges, counts


# ---- a format-v2 file: from its episode index ----------------------------------------------------
def overview_from_index(rollout, *, steps: int | None = None, block_elements: int = BLOCK_ELEMENTS,
                        progress: Callable[[float], None] | None = None) -> Overview:
    """The `Overview` of ``rollout``'s first ``steps`` rows (default all), from its episode index.

    A v2 file (`rollrec.format.v2`) lists every episode of every env in its index, with its
    return summed over every recorded step, also where ``every=k`` keeps one step in k or the
    rewards of most envs were not kept. The result is the `Overview` a v1 file gets: one row per
    episode holding at least one kept step, steps in the file's rows (row t is recorded step
    ``t * k``), env-major. ``detail`` marks the episodes whose rows hold every field (a detail
    env's, or a captured one). The worst reward term is computed from ``rew_terms`` where every
    env kept it (``-1`` otherwise).
    """
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
            terms = running_sum(column_block(rollout, "rew_terms", a, b, T, np.float64))  # [T, n, K]
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
