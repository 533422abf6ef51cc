"""`MemberMap`: a stored member as a read-only memory map whose indexing reads with ``pread``.

It is an `np.memmap` (a numpy array everywhere: shapes, ufuncs, reductions, ``np.asarray``
without a copy), except that ``member[key]`` is answered by a ``select(key)`` function given when
it is made (`rollrec._npz.archive.NpzArchive`): the selection is read from the file into a new
array with as few ``pread`` calls as its bytes allow (`rollrec._npz.cell_reads`), where indexing
the map would fault its pages in one at a time. Arrays derived from it (views, copies, results of
arithmetic) are plain memory maps or arrays: only the member itself reads this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class MemberMap(np.memmap):
    """A stored member: a read-only `np.memmap` whose ``[key]`` reads the selection with pread (see the module docstring)."""

    _select: Callable[[Any], Any] | None = None

    def __array_finalize__(self, obj: Any) -> None:
        super().__array_finalize__(obj)
        self._select = None  # only the member itself reads through its archive

    def __getitem__(self, key: Any) -> Any:
        select = self._select
        if select is None:
            return _plain(super().__getitem__(key))
        return select(key)

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # As for a plain np.memmap (numpy keeps subclasses as they are): results that are not the
        # map itself are plain arrays, or scalars.
        arr = np.ndarray.__array_wrap__(self, arr, context, return_scalar)
        if arr is self or not isinstance(arr, np.ndarray):
            return arr
        return arr[()] if return_scalar else arr.view(np.ndarray)

    def mapped(self, key: Any) -> Any:
        """``member[key]`` through the memory map: a view where numpy gives one (nothing read yet)."""
        return _plain(super().__getitem__(key))


def _plain(res: Any) -> Any:
    """What indexing a plain np.memmap gives: a memmap view of the map, else an ndarray."""
    if type(res) is MemberMap:
        return res.view(np.memmap) if res._mmap is not None else res.view(np.ndarray)
    return res


__all__ = ["MemberMap"]
