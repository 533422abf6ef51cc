"""The episodes of a rollout, from its index (format v2) or from ``done``/``rew`` (format v1, with
the segmentation kernel of `rollrec.io.segments`).

`EpisodeIndex` holds one entry per episode of every env, with the columns of the v2 index
(`rollrec.format.v2`): ``env``, ``start``, ``stop`` (recorded steps, stop exclusive),
``end`` (0 still running, 1 terminated, 2 truncated), ``captured``, ``row``, ``rows``, and the
float64 ``returns``. A v1 file has no index: `derive` builds the same entries from its members
(every field exists for every episode there, so every episode is captured).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.v2 import COLUMNS
from rollrec.io.segments import running_sum, segment

END_NAMES = ("unfinished", "terminated", "truncated")
_BLOCK_ELEMENTS = 1 << 22  # bounds the memory of `derive` (float64 cumulative sums)


class EpisodeIndex:
    """Episode entries (see the module docstring); ``every`` is the file's k, ``T`` its rows."""

    def __init__(self, table: np.ndarray, returns: np.ndarray, *, every: int, T: int, N: int, R: int, where: str):
        table = np.asarray(table, dtype=np.int64).reshape(-1, len(COLUMNS))
        self.every, self.T = every, T
        self.env, self.start, self.stop, self.end, self.captured, self.row, self.rows = (table[:, i] for i in range(len(COLUMNS)))
        self.returns = np.asarray(returns, dtype=np.float64)
        self._check(table, T, N, R, where)

    def _check(self, table: np.ndarray, T: int, N: int, R: int, where: str) -> None:
        """`RolloutFormatError` naming the first episode that breaks the format (`rollrec.format.v2`).

        Each check runs only on entries the checks before it passed, so no sum can overflow int64:
        steps are within ``T * every`` (at most 2**62, `rollrec.format.v2.MAX_STEPS`) before rows are
        derived from them, and ``row`` is compared with ``R - rows``, never summed."""
        checks = [
            (lambda: (self.env < 0) | (self.env >= N), f"an env outside 0..{N - 1}"),
            (lambda: (self.start < 0) | (self.stop <= self.start) | (self.stop > T * self.every),
             f"steps outside 0..{T * self.every}"),
            (lambda: (self.end < 0) | (self.end > 2), "an 'end' other than 0, 1, 2"),
            (lambda: (self.captured < 0) | (self.captured > 1), "a 'captured' other than 0, 1"),
            (lambda: (self.rows < 0) | (self.rows > np.maximum(self.last_row - self.first_row + 1, 0)),
             "more 'rows' than the episode has"),
            (lambda: (self.row < -1) | ((self.row >= 0) & (self.row > R - self.rows)), f"window rows outside 0..{R}"),
            (lambda: _overlapping(self.env, self.start, self.stop), "steps that overlap another episode of its env"),
            (lambda: _overlapping(np.zeros_like(self.row), self.row, self.row + self.rows, (self.row >= 0) & (self.rows > 0)),
             "window rows that overlap another episode's"),
        ]
        for bad, what in checks:
            bad = bad()
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
            seg = segment(done[:, a:b], truncated[:, a:b])  # every env's last episode ends (or stops) at T
            ret = seg.sums(running_sum(np.array(rew[:, a:b], dtype=np.float64)))
            parts.append(np.stack([seg.env + a, seg.start, seg.stop, seg.end.astype(np.int64)], 1))
            parts.append(ret)
        tables, rets = np.concatenate(parts[0::2]), np.concatenate(parts[1::2])
        # Index order: finished episodes by stop then env, then the ones still running, by env.
        order = np.lexsort((tables[:, 0], tables[:, 2], tables[:, 3] == 0))
        tables, rets = tables[order], rets[order]
        E = len(tables)
        full = np.column_stack([tables, np.ones(E, np.int64), np.full(E, -1), tables[:, 2] - tables[:, 1]])
        return cls(full, rets, every=1, T=T, N=N, R=0, where=where)


def _overlapping(group: np.ndarray, start: np.ndarray, stop: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Mask of entries whose ``[start, stop)`` (non-empty) overlaps another's of the same ``group``
    (only entries in ``among`` take part). Sorted by start within each group, the ranges are
    disjoint exactly when each starts at or after the stop of the one before it."""
    idx = np.flatnonzero(among) if among is not None else np.arange(len(group))
    bad = np.zeros(len(group), bool)
    if len(idx) < 2:
        return bad
    order = idx[np.lexsort((start[idx], group[idx]))]
    g, a, b = group[order], start[order], stop[order]
    bad[order[1:][(g[1:] == g[:-1]) & (a[1:] < b[:-1])]] = True
    return bad


class RolloutEpisodes:
    """The episode reads of `rollrec.io.reader.Rollout` (a mixin: it uses the rollout's members,
    ``layout``, ``_rows``, ``_column``, ``_check_env`` and ``env``)."""

    @property
    def index(self) -> EpisodeIndex:
        """Every episode of every env (`rollrec.io.episode_index`): the file's index (format v2),
        or derived from ``done``/``rew``/``truncated`` (read whole, in env blocks) for a v1 file."""
        if self._index is None:
            where = str(self.path)
            if "episodes" in self._fields:
                table = self._rows("episodes", 0, self._fields["episodes"].shape[0])
                returns = self._rows("episode_return", 0, self._fields["episode_return"].shape[0])
                self._index = EpisodeIndex(table, returns, every=self.every, T=self.T, N=self.N, R=self.layout.R, where=where)
            else:
                cols = {k: self._file.read_all(k) if self._file is not None else self._fields[k]
                        for k in ("done", "rew", "truncated")}
                self._index = EpisodeIndex.derive(cols["done"], cols["rew"], cols["truncated"], T=self.T, N=self.N, where=where)
        return self._index

    def episodes(self) -> list[dict[str, Any]]:
        """One dict per episode of every env, in the order they ended (then the ones still running):
        ``env``, ``start``, ``stop`` (recorded steps, stop exclusive: with ``every=k`` row t is
        recorded step ``t * k``), ``return`` (float, exact), ``terminated``, ``truncated``, ``end``
        (``"terminated"``, ``"truncated"`` or ``"unfinished"``), ``captured`` (every field of it is
        in the file, at least for its last steps) and ``window_start`` (the recorded step from which
        every field is kept; None if none is)."""
        index = self.index
        return [index.entry(i) for i in range(len(index))]

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i`` (of `episodes`): ``{key: [n, ...]}`` over its n kept rows (rows
        ``ceil(start / every) .. (stop - 1) // every``), for every member that holds data for its env;
        steps before its window read as fill values (see `env`)."""
        index = self.index
        if not -len(index) <= i < len(index):
            raise IndexError(f"episode {i} out of range: {self.path.name} has {len(index)} episodes")
        i %= len(index)
        first, last = int(index.first_row[i]), int(index.last_row[i])
        env = int(index.env[i])
        whole = self.env(env)
        return {k: v[first : last + 1] for k, v in whole.items()}

    def episode_bounds(self, env: int) -> np.ndarray:
        """``[E, 2]`` int64 ``(start, stop)`` row ranges of env ``env``'s episodes, in order.

        An episode ends after a step whose ``done`` is set; the last one may be unfinished
        (its stop is T). With an episode index (format v2) the ranges are its episodes' kept rows
        (with ``every=k``, episodes shorter than k may hold none: they are left out).
        """
        env = self._check_env(env)
        if self.layout.has_index:
            i = self._kept_episodes(env)
            return np.stack([self.index.first_row[i], self.index.last_row[i] + 1], axis=1).astype(np.int64)
        if self.T == 0:  # one empty episode
            return np.zeros((1, 2), np.int64)
        seg = segment(self._column("done", env)[:, None])
        return np.stack([seg.start, seg.stop], axis=1).astype(np.int64)

    def _kept_episodes(self, env: int) -> np.ndarray:
        i = self.index.of_env(env)
        return i[self.index.last_row[i] >= self.index.first_row[i]]

    def episode_returns(self, env: int) -> np.ndarray:
        """``[E]`` float64 return of each episode of env ``env`` (see `episode_bounds`): the sum of
        ``rew`` over it, or the index's exact returns (format v2)."""
        env = self._check_env(env)
        if self.layout.has_index:
            return self.index.returns[self._kept_episodes(env)].copy()
        if self.T == 0:  # one empty episode
            return np.zeros(1)
        seg = segment(self._column("done", env)[:, None])
        return seg.sums(running_sum(self._column("rew", env).astype(np.float64)[:, None]))

    def total_rewards(self) -> np.ndarray:
        """``[N]`` float64 sum of ``rew`` over the whole rollout, per env (reads ``rew`` whole; with
        an episode index, the sum of its exact returns)."""
        if self.layout.has_index:
            return np.bincount(self.index.env, weights=self.index.returns, minlength=self.N).astype(np.float64)
        rew = self._file.read_all("rew") if self._file is not None else self._fields["rew"]
        return np.asarray(rew, dtype=np.float64).sum(axis=0)


__all__ = ["END_NAMES", "EpisodeIndex", "RolloutEpisodes"]
