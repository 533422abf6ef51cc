"""A ``[T, N, ...]`` array assembled from parts along the env axis, read lazily, with fill values.

`ShardedArray` serves the shards of a sharded rollout (`rollrec.io.sharded.rollout`) and the detail and
window members of a format-v2 file (`rollrec.io.volume_view`): each part covers a range of envs
and is an array (``[T_part, n, ...]``) or None (no data). Missing data reads as `fill_value`:
NaN for floats, False for bools, the dtype's minimum for signed integers and 0 for unsigned ones,
so reductions over the present envs keep working and a missing value never looks plausible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def fill_value(dtype: np.dtype) -> Any:
    """What missing data reads as: NaN, False, the signed dtype's minimum, or 0 (unsigned)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "b":
        return False
    if dtype.kind == "i":
        return np.iinfo(dtype).min
    return 0


def clip_range(bounds: tuple[int, int] | None, n: int) -> tuple[int, int]:
    """``(start, stop)`` of ``slice(*bounds)`` over ``n`` items (negative values count from the end)."""
    if bounds is None:
        return 0, n
    start, stop, _ = slice(*bounds).indices(n)
    return start, max(start, stop)


def axis_index(key: Any, n: int, axis: str) -> tuple[np.ndarray | int, bool]:
    """``key`` on an axis of length ``n`` as an int (scalar) or an int64 index array."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        k = int(key)
        if not -n <= k < n:
            raise IndexError(f"index {k} is out of bounds for the {axis} axis of size {n}")
        return k % n, True
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key], False
    idx = np.asarray(key)
    if idx.dtype == np.bool_:
        if idx.shape != (n,):
            raise IndexError(f"boolean index for the {axis} axis must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx), False
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise IndexError(f"the {axis} axis takes an int, a slice or a 1-D int/bool array, got {key!r}")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index out of bounds for the {axis} axis of size {n}")
    return idx.astype(np.int64) % n if idx.size else idx.astype(np.int64), False


def compact_index(idx: np.ndarray) -> slice | np.ndarray:
    """An evenly spaced index array as the equivalent slice (so memory maps stay views), else itself."""
    if idx.size == 0:
        return slice(0, 0)
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    step = int(idx[1] - idx[0])
    if step == 0 or not np.all(np.diff(idx) == step):
        return idx
    stop = int(idx[-1]) + (1 if step > 0 else -1)
    return slice(int(idx[0]), stop if stop >= 0 else None, step)


class ShardedArray:
    """A ``[T, N, ...]`` array of a sharded rollout, read lazily from the shards' arrays.

    Index it like a numpy array: ints, slices and one 1-D int/bool array among the time and env
    axes, then any basic index on the trailing axes. A selection inside one complete shard is
    that shard's member indexed (read from the file with pread for stored files, see
    `rollrec._npz.member_map`); one that spans shards, or touches missing data, is assembled
    from each shard's part, with the missing parts set to `fill_value`. ``np.asarray(a)`` reads
    it whole.

    ``parts``: ``(env_offset, num_envs, array or None[, first column])`` by offset: envs
    ``env_offset ..`` are the array's columns from ``first column`` (default 0) on; the array is
    indexed only when read (a detail member's columns are not sliced out in advance).
    """

    def __init__(self, name: str, parts: Sequence[tuple], T: int, N: int,
                 row_shape: tuple[int, ...], dtype: np.dtype):
        self.name = name
        # (env_offset, num_envs, shard array [T_s, n, ...] or None, its column of env_offset) by offset
        self._parts = [(p[0], p[1], p[2], p[3] if len(p) > 3 else 0) for p in parts]
        self.shape = (T, N, *row_shape)
        self.dtype = np.dtype(dtype)
        self.fill = fill_value(self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self[:, :])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"ShardedArray({self.name!r}, shape={self.shape}, dtype={self.dtype}, shards={len(self._parts)})"

    def _split(self, key: Any) -> tuple[Any, Any, tuple]:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is None for k in key):
            raise IndexError("np.newaxis is not supported when indexing a sharded array")
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices: {self.name} is {self.ndim}-dimensional")
        key = key + (slice(None),) * (2 - min(len(key), 2))
        return key[0], key[1], tuple(key[2:])

    def __getitem__(self, key: Any) -> np.ndarray:
        out = self._select(key)
        return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out  # a scalar, as numpy gives

    def _select(self, key: Any) -> np.ndarray:
        t_key, e_key, rest = self._split(key)
        T, N = self.shape[:2]
        t, t_scalar = axis_index(t_key, T, "time")
        e, e_scalar = axis_index(e_key, N, "env")
        # Keep numpy's result layout: refuse the mixes where advanced indices would move axes.
        t_arr = not t_scalar and not isinstance(t_key, slice)
        e_arr = not e_scalar and not isinstance(e_key, slice)
        if t_arr and e_arr:
            raise IndexError("index at most one of the time and env axes with an array")
        basic = [isinstance(k, (slice, int, np.integer)) for k in rest]
        ints = [not isinstance(k, slice) for k in rest]
        if (t_arr or e_arr or t_scalar or e_scalar) and not all(basic):
            raise IndexError("index the trailing axes with arrays only when the time and env axes take slices")
        if e_arr and ints != sorted(ints, reverse=True):  # numpy would move the env axis to the front
            raise IndexError("with an index array on the env axis, put int indices on the trailing axes right after it")
        row_shape = np.broadcast_to(np.empty((), self.dtype), self.shape[2:])[rest].shape
        t_dims = () if t_scalar else (len(t),)
        t_sel = t if t_scalar else compact_index(t)
        if e_scalar:
            offset, count, arr, col = self._part_of(e)
            return self._read(arr, t, t_scalar, t_sel, e - offset + col, rest, t_dims + row_shape)
        touched = []
        for offset, count, arr, col in self._parts:
            mask = (e >= offset) & (e < offset + count)
            if mask.any():
                touched.append((np.flatnonzero(mask), offset - col, arr))
        if len(touched) == 1 and touched[0][2] is not None and self._full_time(touched[0][2], t, t_scalar):
            pos, offset, arr = touched[0]
            return arr[(t_sel, compact_index(e[pos] - offset), *rest)]
        out = np.empty(t_dims + (len(e),) + row_shape, self.dtype)
        for pos, offset, arr in touched:
            dst = (slice(None), compact_index(pos)) if not t_scalar else (compact_index(pos),)
            local = compact_index(e[pos] - offset)
            out[dst] = self._read(arr, t, t_scalar, t_sel, local, rest, t_dims + (len(pos),) + row_shape)
        return out

    def _part_of(self, g: int) -> tuple[int, int, np.ndarray | None, int]:
        for part in self._parts:
            if part[0] <= g < part[0] + part[1]:
                return part
        raise IndexError(f"env {g} is in no shard")  # unreachable: the layout covers 0..N-1

    def _full_time(self, arr: np.ndarray, t: np.ndarray | int, t_scalar: bool) -> bool:
        steps = arr.shape[0]
        return (t < steps) if t_scalar else (t.size == 0 or int(t.max()) < steps)

    def _read(self, arr, t, t_scalar, t_sel, local, rest, shape) -> np.ndarray:
        """One shard's part: read what it holds, fill what it lacks (missing shard or steps past its end)."""
        if arr is None:
            return np.full(shape, self.fill, self.dtype)
        if self._full_time(arr, t, t_scalar):
            return arr[(t_sel, local, *rest)]
        if t_scalar:
            return np.full(shape, self.fill, self.dtype)
        out = np.full(shape, self.fill, self.dtype)
        have = np.flatnonzero(t < arr.shape[0])
        out[compact_index(have)] = arr[(compact_index(t[have]), local, *rest)]
        return out


__all__ = ["ShardedArray", "axis_index", "clip_range", "compact_index", "fill_value"]
