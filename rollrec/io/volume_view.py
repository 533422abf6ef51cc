"""Members of a v2 file seen as ``[T, N, ...]``: what the file does not hold reads as a fill value.

A detail member (``[T, M, ...]``, env ids in ``meta["env_ids"]``) and a window member (``[R, ...]``
rows of captured episodes) are shown to readers, as ``rollout[key]``, with the shape of a full
member, ``[T, N, ...]``: the values the file holds where it holds them, and NaN (floats), False
(bools), the dtype's minimum (signed ints) or 0 (unsigned) elsewhere, as for the missing envs of
a sharded rollout (`rollrec.io.env_array.fill_value`). Indexing reads only what it needs.
``rollout.stored(key)`` gives the member as stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rollrec.io.env_array import ShardedArray, axis_index, fill_value


def detail_view(name: str, member: Any, ids: np.ndarray, T: int, N: int) -> ShardedArray:
    """``[T, N, ...]`` of detail member ``member`` (``[T, M, ...]``, column j = env ``ids[j]``)."""
    parts: list[tuple[int, int, Any]] = []
    env = 0
    j = 0
    while j < len(ids):  # runs of consecutive ids are one part each
        k = j
        while k + 1 < len(ids) and ids[k + 1] == ids[k] + 1:
            k += 1
        if ids[j] > env:
            parts.append((env, int(ids[j]) - env, None))
        parts.append((int(ids[j]), k - j + 1, member, j))  # columns j..k, indexed only when read
        env = int(ids[k]) + 1
        j = k + 1
    if env < N:
        parts.append((env, N - env, None))
    return ShardedArray(name, parts, T, N, tuple(member.shape[2:]), member.dtype)


class WindowArray(ShardedArray):
    """``[T, N, ...]`` of a window member (``[R, ...]``), placed by the episode index's windows.

    ``windows``: ``{env: [(first kept row, rows, first window row), ...]}``. Indexes like
    `ShardedArray` (ints, slices, one 1-D array among the time and env axes, then basic indices).
    """

    def __init__(self, name: str, member: Any, windows: dict[int, list[tuple[int, int, int]]], T: int, N: int):
        super().__init__(name, [], T, N, tuple(member.shape[1:]), member.dtype)
        self._member = member
        self._windows = windows

    def __repr__(self) -> str:
        return f"WindowArray({self.name!r}, shape={self.shape}, dtype={self.dtype}, windows={sum(map(len, self._windows.values()))})"

    def _select(self, key: Any) -> np.ndarray:
        t_key, e_key, rest = self._split(key)
        T, N = self.shape[:2]
        t, t_scalar = axis_index(t_key, T, "time")
        e, e_scalar = axis_index(e_key, N, "env")
        if not (t_scalar or isinstance(t_key, slice)) and not (e_scalar or isinstance(e_key, slice)):
            raise IndexError("index at most one of the time and env axes with an array")
        if not all(isinstance(k, (slice, int, np.integer)) for k in rest):
            raise IndexError("index the trailing axes of a window member with ints and slices")
        row_shape = np.broadcast_to(np.empty((), self.dtype), self.shape[2:])[rest].shape
        t_arr = np.atleast_1d(t)
        envs = np.atleast_1d(e)
        out = np.full((len(t_arr), len(envs), *row_shape), fill_value(self.dtype), self.dtype)
        for p, g in enumerate(envs):
            for first, rows, at in self._windows.get(int(g), ()):
                hit = np.flatnonzero((t_arr >= first) & (t_arr < first + rows))
                if hit.size:
                    out[hit, p] = self._member[(at + t_arr[hit] - first, *rest)]
        if e_scalar:
            out = out[:, 0]
        if t_scalar:
            out = out[0]
        return out


__all__ = ["WindowArray", "detail_view"]
