"""The `Overview` of a recording in progress, extended over the rows it commits, never recomputed.

`GrowingOverview.extend` reads only the rows ``T0..T1`` of ``done``, ``truncated``, ``rew`` and
``rew_terms`` (of every env, in blocks of env columns like `compute_overview`) and runs the
segmentation kernel (`rollrec.io.segments`) on them. Per env it carries the episode running at
the last row (its start and its sums of ``rew`` and each reward term) into the next block: the
first episode of an env in the new rows continues it. Episodes that end are kept; the Overview
of rows ``0..T1`` is every ended episode plus each env's running one (*unfinished*), env-major:
the same table `compute_overview` makes of those rows (tests compare them).

A format-v2 recording is summarised from its episode index instead (`overview_from_index`,
cheap: no rows are read), without the worst reward term while it records (that reads every
row of ``rew_terms``); it is there once the recording has finished and is summarised again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rollrec.io.segments import UNFINISHED, running_sum, segment
from rollrec.viewer.overview.episodes import BLOCK_ELEMENTS, Overview, overview_from_index


class GrowingOverview:
    """The `Overview` of ``rollout``'s rows so far, extended by `extend` (see the module docstring)."""

    def __init__(self, rollout: Any, *, block_elements: int = BLOCK_ELEMENTS):
        self.rollout = rollout
        self.block_elements = int(block_elements)
        self.N = rollout.N
        self.names = tuple(rollout.reward_term_names)
        self.K = len(self.names)
        self.T = 0
        self._start = np.zeros(self.N, np.int64)  # where each env's running episode starts
        self._ret = np.zeros(self.N)  # its return so far
        self._terms = np.zeros((self.N, self.K))  # its reward-term sums so far
        self._count = np.zeros(self.N, np.int64)  # episodes of each env that ended
        self._totals = np.zeros(self.N)
        self._ended: list[tuple[np.ndarray, ...]] = []  # (env, episode, start, stop, ret, end, terms) chunks

    def extend(self, steps: int, progress: Callable[[float], None] | None = None) -> Overview:
        """The Overview of rows ``0..steps`` (reads rows ``T..steps`` only; ``steps`` >= `T`)."""
        T0, T1 = self.T, int(steps)
        if T1 < T0:
            raise ValueError(f"an overview grows: {T1} steps after {T0}")
        r = self.rollout
        if r.layout.has_index:
            self.T = T1
            return overview_from_index(_NoTermRows(r), steps=T1, block_elements=self.block_elements, progress=progress)
        dT = T1 - T0
        if dT:
            has_truncated = "truncated" in r
            step = max(1, self.block_elements // (dT * max(1, self.K)))
            for a in range(0, self.N, step):
                b = min(self.N, a + step)
                self._block(a, b, T0, T1, has_truncated)
                if progress is not None:
                    progress(b / self.N)
            self.T = T1
        return self.overview()

    def _block(self, a: int, b: int, T0: int, T1: int, has_truncated: bool) -> None:
        r, K = self.rollout, self.K
        done = np.asarray(r.read("done", (T0, T1), (a, b)), bool)
        truncated = np.asarray(r.read("truncated", (T0, T1), (a, b)), bool) if has_truncated else None
        csum = running_sum(np.asarray(r.read("rew", (T0, T1), (a, b)), np.float64))  # [dT, n]
        self._totals[a:b] += csum[-1]
        seg = segment(done, truncated)
        env = seg.env + a
        ret = seg.sums(csum)
        terms = seg.sums(running_sum(np.asarray(r.read("rew_terms", (T0, T1), (a, b)), np.float64))) if K \
            else np.zeros((len(seg), 0))
        start = seg.start + T0
        first = seg.first
        ret[first] += self._ret[env[first]]  # the episode running at T0 goes on
        terms[first] += self._terms[env[first]]
        start[first] = self._start[env[first]]
        ended = seg.end != UNFINISHED
        # episode numbers: the env's ended ones so far, then in order
        number = self._count[env] + seg.number()
        e = np.flatnonzero(ended)
        if e.size:
            self._ended.append((env[e], number[e], start[e], seg.stop[e] + T0, ret[e], seg.end[e], terms[e]))
            np.add.at(self._count, env[e], 1)
        last = np.flatnonzero(np.r_[first[1:], True])  # each env's last segment in the block
        cont = ~ended[last]
        envs = env[last]
        self._start[envs] = np.where(cont, start[last], T1)
        self._ret[envs] = np.where(cont, ret[last], 0.0)
        self._terms[envs] = np.where(cont[:, None], terms[last], 0.0)

    def overview(self) -> Overview:
        """The Overview of the rows read so far (`T`)."""
        T = self.T
        running = np.flatnonzero(self._start < T)
        parts = list(self._ended) + [(running, self._count[running], self._start[running], np.full(len(running), T),
                                      self._ret[running], np.full(len(running), UNFINISHED, np.int8),
                                      self._terms[running])]
        env, episode, start, stop, ret, end, terms = (np.concatenate(p) for p in zip(*parts))
        order = np.lexsort((start, env))
        env, episode, start, stop, ret, end = (x[order] for x in (env, episode, start, stop, ret, end))
        terms = terms.reshape(-1, self.K)[order]
        if self.K:
            worst = np.argmin(terms, axis=1)
            worst_value = terms[np.arange(len(worst)), worst]
            none = ~(worst_value < 0)
            worst = np.where(none, -1, worst)
            worst_value = np.where(none, 0.0, worst_value)
        else:
            worst, worst_value = np.full(len(env), -1), np.zeros(len(env))
        return Overview(env.astype(np.int32), episode.astype(np.int32), start.astype(np.int64), stop.astype(np.int64),
                        ret.astype(np.float64), end.astype(np.int8), worst.astype(np.int16), worst_value.astype(np.float64),
                        self.names, self._totals.copy(), self.N, T)


class _NoTermRows:
    """``rollout`` as `overview_from_index` sees it while recording: its reward terms are not
    read (the worst term needs every row of them)."""

    def __init__(self, rollout: Any):
        self._r = rollout

    def kind(self, key: str) -> str:
        return "window" if key == "rew_terms" else self._r.kind(key)

    def __contains__(self, key: object) -> bool:
        return key in self._r

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)


__all__ = ["GrowingOverview"]
