"""The episodes still running in a format-v2 recording in progress, for its episode index.

A recorder with volume options (`rollrec.format.v2`) writes an episode's index entry when the
episode ends, so while it records, each env's current episode has no entry. `RunningEpisodes`
adds one per env to the entries committed so far: from the stop of the env's last ended episode
(0 before one ended) to the committed rows, ``end`` 0, with its return summed over its kept rows
of ``rew`` (NaN for an env whose ``rew`` is not kept). It reads incrementally: each refresh
reads the new index entries and the new rows of ``rew`` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rollrec.format.v2 import COLUMNS, Layout

_ENV, _START, _STOP = COLUMNS.index("env"), COLUMNS.index("start"), COLUMNS.index("stop")


class RunningEpisodes:
    """Per env: where its running episode starts and its return so far (see the module docstring)."""

    def __init__(self, layout: Layout, rows: int = 0):
        self.every = layout.every
        self.N = layout.N
        self._layout = layout
        self._table = np.zeros((0, len(COLUMNS)), np.int64)  # the committed entries read so far
        self._returns = np.zeros(0)
        self._rows = 0  # rows of ``rew`` summed so far
        self._start = np.zeros(self.N, np.int64)  # recorded step where each env's running episode starts
        self._sum = np.zeros(self.N)  # its return over rows first_row .. self._rows
        ids = next(iter(layout.env_ids.values()), None)
        self._detail = np.zeros(self.N, bool)
        if ids is not None:
            self._detail[ids] = True
        elif not layout.window_members:
            self._detail[:] = True  # every field of every env is kept (every= alone)

    def index(self, fields: dict[str, Any], rows: int) -> tuple[np.ndarray, np.ndarray]:
        """``(episodes [E, 7] int64, episode_return [E] float64)``: the committed entries of
        ``fields`` then one running episode per env that has a step in the ``rows`` committed rows."""
        k = self.every
        ended = fields["episodes"].shape[0]
        if len(self._table) < ended:
            new = np.asarray(fields["episodes"][len(self._table) : ended], np.int64).reshape(-1, len(COLUMNS))
            new_ret = np.asarray(fields["episode_return"][len(self._returns) : ended], np.float64)
            self._table = np.concatenate([self._table, new])
            self._returns = np.concatenate([self._returns, new_ret])
        else:
            new = np.zeros((0, len(COLUMNS)), np.int64)
        csum = self._rew_sums(fields, rows)  # [rows - self._rows + 1, N]: sums of the new rows from self._rows
        restarted = np.zeros(self.N, bool)
        for e, stop in zip(new[:, _ENV], new[:, _STOP]):  # in the order they ended
            self._start[e] = max(self._start[e], stop)
            restarted[e] = True
        first = -(-self._start // k)  # first kept row of each running episode
        at = np.clip(first - self._rows, 0, len(csum) - 1)
        cols = np.arange(self.N)
        self._sum = np.where(restarted, csum[-1] - csum[at, cols], self._sum + csum[-1])
        self._rows = rows
        stop = rows * k
        running = np.flatnonzero(self._start < stop)
        kept = np.maximum(rows - first[running], 0)
        table = np.column_stack([
            running, self._start[running], np.full(len(running), stop), np.zeros(len(running), np.int64),
            self._detail[running].astype(np.int64), np.full(len(running), -1),
            np.where(self._detail[running], kept, 0),
        ]).astype(np.int64).reshape(-1, len(COLUMNS))
        return np.concatenate([self._table, table]), np.concatenate([self._returns, self._sum[running]])

    def _rew_sums(self, fields: dict[str, Any], rows: int) -> np.ndarray:
        """Running sums of ``rew`` over rows ``self._rows .. rows`` per env, a zero row first."""
        n = max(rows - self._rows, 0)
        out = np.zeros((n + 1, self.N))
        if n == 0:
            return out
        kind = self._layout.kind("rew")
        if kind == "all":
            block = np.asarray(fields["rew"][self._rows : rows], np.float64)
            out[1:] = np.cumsum(block, axis=0)
        elif kind == "detail":
            ids = self._layout.env_ids["rew"]
            block = np.asarray(fields["rew"][self._rows : rows], np.float64)
            out[:] = np.nan
            out[0, ids] = 0.0
            out[1:, ids] = np.cumsum(block, axis=0)
        else:  # window: no per-row return for episodes still running
            out[:] = np.nan
        return out


__all__ = ["RunningEpisodes"]
