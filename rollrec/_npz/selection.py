"""A numpy index of a ``[A, B, ...]`` array as the rows and columns to read, and the index to apply to them.

Reading a selection of a stored member from the file (rather than through a memory map) needs to
know which cells the selection touches: the rows (axis 0) and columns (axis 1) it needs, each a
sorted array of distinct indices, and how to index the block ``member[rows][:, cols]`` once read
to get exactly what ``member[key]`` would. `plan` works that out for every numpy index: ints
(negative too), slices (with steps, reversed), ``...``, ``None``, integer arrays of any shape,
boolean arrays (over one or several axes, turned into their ``nonzero()``), and any mix of them.

The index on the block keeps the structure of ``key`` (an int stays an int, a slice a slice, an
array an array of the same shape), so numpy places the result's axes as it would for the
member: only the positions change. Whatever `plan` cannot prove valid (out-of-bounds indices,
boolean arrays of the wrong shape, too many indices, floats...) makes it return None: the caller
then indexes the member itself and gets numpy's own result or error.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Plan:
    """What to read for ``member[key]`` and how to index it.

    ``rows``: sorted distinct indices along axis 0. ``cols``: the same along axis 1 (None for a
    1-D member). ``local``: the index to apply to the block ``[len(rows), len(cols), ...]``
    (``[len(rows), ...]`` without columns). ``basic``: True when ``key`` is a basic index (ints,
    slices, ``...``, ``None``), whose numpy result is a view.
    """

    rows: np.ndarray
    cols: np.ndarray | None
    local: tuple
    basic: bool

    def block_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the block read for a member of ``shape``."""
        if self.cols is None:
            return (len(self.rows), *shape[1:])
        return (len(self.rows), len(self.cols), *shape[2:])


def plan(key: Any, shape: tuple[int, ...]) -> Plan | None:
    """The `Plan` of ``array[key]`` for an array of ``shape`` (``ndim >= 1``), or None (see the module docstring)."""
    ndim = len(shape)
    if ndim == 0:
        return None
    entries = _entries(key, shape)
    if entries is None:
        return None
    planned = 1 if ndim == 1 else 2
    axis, rows, cols, local, basic = 0, None, None, [], True
    for kind, value in entries:
        if kind == "new":
            local.append(None)
            continue
        if kind == "ellipsis":  # full ranges: the block holds all of them, the ellipsis stays as it is
            local.append(Ellipsis)
            axis += value
            continue
        if kind == "array":
            basic = False
        if axis < planned:
            picked = _axis(kind, value, shape[axis])
            if picked is None:
                return None
            indices, value = picked
            if axis == 0:
                rows = indices
            else:
                cols = indices
        local.append(value)
        axis += 1
    if rows is None:
        rows = np.arange(shape[0], dtype=np.int64)
    if planned == 2 and cols is None:
        cols = np.arange(shape[1], dtype=np.int64)
    return Plan(rows, cols, tuple(local), basic)


def _entries(key: Any, shape: tuple[int, ...]) -> list[tuple[str, Any]] | None:
    """``key`` as ``(kind, value)`` per axis consumed (``"int"``, ``"slice"``, ``"array"``), ``("new", None)``
    and ``("ellipsis", axes it stands for)``; boolean arrays replaced by their ``nonzero()`` arrays.
    None: let numpy decide."""
    items = key if isinstance(key, tuple) else (key,)
    typed: list[tuple[str, Any]] = []  # first pass: each item's kind, and the axes it consumes
    consumed = 0
    for item in items:
        if item is None:
            typed.append(("new", None))
        elif item is Ellipsis:
            if any(kind == "ellipsis" for kind, _ in typed):
                return None  # numpy: "an index can only have a single ellipsis"
            typed.append(("ellipsis", 0))
        elif isinstance(item, slice):
            typed.append(("slice", item))
            consumed += 1
        elif isinstance(item, (bool, np.bool_)):
            return None  # a scalar boolean adds an axis: rare, left to numpy
        elif isinstance(item, (int, np.integer)):
            typed.append(("int", int(item)))
            consumed += 1
        else:
            try:
                arr = np.asarray(item)
            except Exception:  # noqa: BLE001 - numpy raises its own error for what it cannot index with
                return None
            if arr.dtype == np.bool_:
                if arr.ndim == 0:
                    return None
                typed.append(("bool", arr))
                consumed += arr.ndim
            elif arr.dtype.kind in "iu":
                typed.append(("int", int(operator.index(arr[()]))) if arr.ndim == 0 else ("array", arr))
                consumed += 1
            elif arr.size == 0 and isinstance(item, list):
                typed.append(("array", arr.astype(np.intp)))  # numpy takes [] as an empty integer index
                consumed += 1
            else:
                return None
    if consumed > len(shape):
        return None
    out: list[tuple[str, Any]] = []
    axis = 0
    for kind, value in typed:
        if kind == "ellipsis":
            value = len(shape) - consumed
        elif kind == "bool":
            if value.shape != tuple(shape[axis : axis + value.ndim]):
                return None
            out.extend(("array", np.asarray(nz, dtype=np.intp)) for nz in value.nonzero())
            axis += value.ndim
            continue
        out.append((kind, value))
        axis += value if kind == "ellipsis" else 0 if kind == "new" else 1
    return out


def _axis(kind: str, value: Any, n: int) -> tuple[np.ndarray, Any] | None:
    """``(sorted distinct indices read on an axis of length n, index on them)``, or None (out of bounds)."""
    if kind == "int":
        if not -n <= value < n:
            return None
        return np.array([value % n], dtype=np.int64), 0
    if kind == "slice":
        picked = np.arange(n, dtype=np.int64)[value]
        if len(picked) > 1 and picked[1] < picked[0]:  # a negative step: read ascending, index reversed
            return picked[::-1].copy(), slice(None, None, -1)
        return picked, slice(None)
    arr = np.asarray(value)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        return None
    flat = arr.astype(np.int64, copy=False) % max(n, 1) if arr.size else arr.astype(np.int64)
    indices = np.unique(flat)
    return indices, np.searchsorted(indices, flat).astype(np.intp)


__all__ = ["Plan", "plan"]
