"""The episodes of a rollout, from its index (format v2) or from ``done``/``rew`` (format v1).

`EpisodeIndex` holds one entry per episode of every env, with the columns of the v2 index
(`rollrec.io.format_v2`): ``env``, ``start``, ``stop`` (recorded steps, stop exclusive),
``end`` (0 still running, 1 terminated, 2 truncated), ``captured``, ``row``, ``rows``, and the
float64 ``returns``. A v1 file has no index: `derive` builds the same entries from its members
(every field exists for every episode there, so every episode is captured).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rollrec.io.errors import RolloutFormatError
from rollrec.io.format_v2 import COLUMNS

END_NAMES = ("unfinished", "terminated", "truncated")
_BLOCK_ELEMENTS = 1 << 22  # bounds the memory of `derive` (float64 cumulative sums)


class EpisodeIndex:
    """Episode entries (see the module docstring); ``every`` is the file's k, ``T`` its rows."""

    def __init__(self, table: np.ndarray, returns: np.ndarray, *, every: int, T: int, N: int, R: int, where: str):
        table = np.asarray(table, dtype=np.int64).reshape(-1, len(COLUMNS))
        self.every, self.T = every, T
        self.env, self.start, self.stop, self.end, self.captured, self.row, self.rows = (table[:, i] for i in range(len(COLUMNS)))
        self.returns = np.asarray(returns, dtype=np.float64)
        kept = self.last_row - self.first_row + 1
        problems = [
            ((self.env < 0) | (self.env >= N), f"an env outside 0..{N - 1}"),
            ((self.start < 0) | (self.stop <= self.start) | (self.stop > T * every), f"steps outside 0..{T * every}"),
            ((self.end < 0) | (self.end > 2), "an 'end' other than 0, 1, 2"),
            ((self.captured < 0) | (self.captured > 1), "a 'captured' other than 0, 1"),
            ((self.rows < 0) | (self.rows > np.maximum(kept, 0)), "more 'rows' than the episode has"),
            ((self.row < -1) | ((self.row >= 0) & (self.row + self.rows > R)), f"window rows outside 0..{R}"),
        ]
        for bad, what in problems:
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise RolloutFormatError(f"{where}: episode {i} of the index has {what}: {table[i].tolist()}")

    def __len__(self) -> int:
        return int(self.env.size)

    @property
    def first_row(self) -> np.ndarray:
        """The first kept row (file step) of each episode: ``ceil(start / every)``."""
        return -(-self.start // self.every)

    @property
    def last_row(self) -> np.ndarray:
        """The last kept row of each episode: ``(stop - 1) // every`` (before ``first_row``: none)."""
        return (self.stop - 1) // self.every

    def entry(self, i: int) -> dict[str, Any]:
        """Episode ``i`` as `Rollout.episodes` returns it."""
        rows = int(self.rows[i])
        end = int(self.end[i])
        return {
            "env": int(self.env[i]),
            "start": int(self.start[i]),
            "stop": int(self.stop[i]),
            "return": float(self.returns[i]),
            "terminated": end == 1,
            "truncated": end == 2,
            "end": END_NAMES[end],
            "captured": bool(self.captured[i]),
            "window_start": (int(self.last_row[i]) - rows + 1) * self.every if rows else None,
        }

    def of_env(self, env: int) -> np.ndarray:
        """The indices of env ``env``'s episodes, in order."""
        return np.flatnonzero(self.env == env)

    def windows_by_env(self) -> dict[int, list[tuple[int, int, int]]]:
        """``{env: [(first kept row, rows, first window row), ...]}`` of the captured windows."""
        out: dict[int, list[tuple[int, int, int]]] = {}
        has = np.flatnonzero((self.row >= 0) & (self.rows > 0))
        for i in has:
            rows = int(self.rows[i])
            out.setdefault(int(self.env[i]), []).append((int(self.last_row[i]) - rows + 1, rows, int(self.row[i])))
        return out

    @classmethod
    def derive(cls, done: Any, rew: Any, truncated: Any, *, T: int, N: int, where: str) -> EpisodeIndex:
        """The entries a v1 file's ``done``/``rew``/``truncated`` ``[T, N]`` describe (read in env
        blocks): an episode ends after a step whose ``done`` is set; each env's last one may still
        be running (its stop is T)."""
        if T == 0 or N == 0:
            return cls(np.zeros((0, len(COLUMNS)), np.int64), np.zeros(0), every=1, T=T, N=N, R=0, where=where)
        parts = []
        step = max(1, _BLOCK_ELEMENTS // T)
        for a in range(0, N, step):
            b = min(N, a + step)
            d = np.asarray(done[:, a:b], dtype=bool)
            tr = np.asarray(truncated[:, a:b], dtype=bool)
            csum = np.concatenate([np.zeros((1, b - a)), np.cumsum(np.asarray(rew[:, a:b], dtype=np.float64), axis=0)])
            end_d = d.copy()
            end_d[T - 1] = True  # every env's last episode ends (or stops) at T
            env, last = np.nonzero(end_d.T)  # env-major, steps ascending
            stop = last + 1
            first = np.r_[True, env[1:] != env[:-1]]
            start = np.where(first, 0, np.r_[0, stop[:-1]])
            ended = d[last, env]
            end = np.where(ended, np.where(tr[last, env], 2, 1), 0)
            ret = csum[stop, env] - csum[start, env]
            parts.append(np.stack([env + a, start, stop, end], 1))
            parts.append(ret)
        tables, rets = np.concatenate(parts[0::2]), np.concatenate(parts[1::2])
        # Index order: finished episodes by stop then env, then the ones still running, by env.
        order = np.lexsort((tables[:, 0], tables[:, 2], tables[:, 3] == 0))
        tables, rets = tables[order], rets[order]
        E = len(tables)
        full = np.column_stack([tables, np.ones(E, np.int64), np.full(E, -1), tables[:, 2] - tables[:, 1]])
        return cls(full, rets, every=1, T=T, N=N, R=0, where=where)


__all__ = ["END_NAMES", "EpisodeIndex"]
