"""Streaming reads of the rollout's per-step members for an export, in bounded memory.

`BlockReader` reads members for a block of envs over a window of steps at once (one `read` of
``[steps, envs, ...]`` per member: a few large preads instead of one per step and env), sized so
that a block holds at most `BLOCK_BYTES`, and hands out one env's rows of it. Exporters visit
episodes in env order, then by start (`rollrec.exports.selection`), so each block is read once.
When even one env's steps exceed the budget, the block covers a window of steps, and exporters
ask for at most `BlockReader.max_rows` rows at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from rollrec.exports.selection import Episode
from rollrec.io.protocol import ReadableRollout

#: The most bytes one block of members holds (what an export keeps in memory besides its output's buffers).
BLOCK_BYTES = 64 << 20


def row_bytes(r: ReadableRollout, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(trailing shape, dtype, bytes per env-step)`` of per-step member ``key``."""
    arr = r[key]
    trailing = tuple(arr.shape[2:])
    return trailing, arr.dtype, int(np.prod(trailing, dtype=np.int64)) * arr.dtype.itemsize


class BlockReader:
    """Rows of members ``keys`` of ``r`` for the envs ``envs`` (the ones an export visits)."""

    def __init__(self, r: ReadableRollout, keys: Sequence[str], envs: Sequence[int], *, budget: int | None = None):
        self.r = r
        self.keys = list(keys)
        self._envs = np.asarray(sorted(set(int(e) for e in envs)), np.int64)
        budget = BLOCK_BYTES if budget is None else budget
        per_step = max(1, sum(row_bytes(r, k)[2] for k in self.keys))
        T = max(r.T, 1)
        self.envs_per_block = max(1, budget // (per_step * T))
        self.max_rows = T if per_step * T <= budget else max(1, budget // per_step)
        self._block: tuple[int, int, int, int] | None = None  # envs a..b, steps t0..t1
        self._data: dict[str, np.ndarray] = {}

    def _load(self, env: int, t0: int) -> None:
        a = env
        upto = self._envs[(self._envs >= a) & (self._envs < a + self.envs_per_block)]
        b = int(upto[-1]) + 1 if upto.size else a + 1
        if self.max_rows >= self.r.T:
            t0, t1 = 0, self.r.T
        else:
            t1 = min(self.r.T, t0 + self.max_rows)
        self._data = {}  # the old block goes before the new one is read
        self._data = {k: self.r.read(k, (t0, t1), (a, b)) for k in self.keys}
        self._block = (a, b, t0, t1)

    def rows(self, env: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """``{key: [stop-start, ...]}`` of env ``env`` (views into the block: copy to keep them
        past the next call). ``stop - start`` must be at most `max_rows`."""
        if stop - start > self.max_rows:
            raise ValueError(f"asked for {stop - start} rows at once; at most {self.max_rows}")
        blk = self._block
        if blk is None or not (blk[0] <= env < blk[1] and blk[2] <= start and stop <= blk[3]):
            self._load(env, start)
            blk = self._block
        a, _, t0, _ = blk
        return {k: v[start - t0 : stop - t0, env - a] for k, v in self._data.items()}

    def chunks(self, episode: Episode, max_rows: int | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(first row, {key: [n, ...]})`` pieces of ``episode``'s rows, in order, each at most
        ``max_rows`` (default `max_rows`) long."""
        step = min(self.max_rows, max_rows or self.max_rows)
        for t in range(episode.row_start, episode.row_stop, step):
            yield t, self.rows(episode.env, t, min(t + step, episode.row_stop))


__all__ = ["BLOCK_BYTES", "BlockReader", "row_bytes"]
