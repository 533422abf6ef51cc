"""`CommittedArray`: one member of a recording in progress, as a lazy array of its committed rows.

Indexing reads the bounding box of what is asked (rows, and envs of a per-step member) with
``os.pread`` at the placement the sidecar names, then asks `RecordingFiles.confirm` whether the
sidecar still names it: if the member moved meanwhile (the writer grew the file), the read is
repeated at its new place; if the recording finished meanwhile, the rows are read from the
finished file. Nothing is memory-mapped: the writer punches and truncates the file while it is
read, which a map would turn into SIGBUS.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from rollrec._npz.layout import MemberSpec, Placement
from rollrec.format.errors import RolloutFormatError
from rollrec.io.env_array import axis_index
from rollrec.io.live.follow import RecordingFiles, RecordingFinished

_DENSE_STRIDE = 8 << 10  # bytes of all envs per row below which rows are read in blocks
_BLOCK_BYTES = 1 << 20
_CHUNK = 16 << 20
_RETRIES = 16


class CommittedArray:
    """Rows ``[0, rows)`` of member ``spec`` of the recording ``files`` follows, shaped
    ``[rows, *row_shape]`` (``[T, N, ...]`` for a per-step member). Index it like a numpy array
    (ints, slices, 1-D int or bool arrays on the first two axes, anything on the others); every
    index reads the file. ``np.asarray(a)`` reads it whole."""

    def __init__(self, files: RecordingFiles, spec: MemberSpec, rows: int):
        self._files = files
        self.name = spec.name
        self.dtype = np.dtype(spec.dtype)
        self.shape = (int(rows), *spec.row_shape)
        self._row_bytes = spec.row_bytes

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
        out = self.read_box((0, self.shape[0]), None)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"CommittedArray({self.name!r}, shape={self.shape}, dtype={self.dtype})"

    # ---- indexing -----------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices: {self.name} is {self.ndim}-dimensional")
        lead = min(2, self.ndim)
        key = key + (slice(None),) * (lead - min(len(key), lead))
        boxes, local = [], []
        for axis in range(lead):
            k = key[axis]
            idx, scalar = axis_index(k, self.shape[axis], "time" if axis == 0 else "env")
            if scalar:
                boxes.append((idx, idx + 1))
                local.append(0)
            elif isinstance(k, slice) and (k.step is None or k.step > 0):
                start, stop, step = k.indices(self.shape[axis])
                stop = max(start, stop)
                boxes.append((start, stop))
                local.append(slice(0, stop - start, step))
            else:
                lo = int(idx.min()) if idx.size else 0
                boxes.append((lo, int(idx.max()) + 1 if idx.size else 0))
                local.append(idx - lo)
        box = self.read_box(boxes[0], boxes[1] if lead == 2 else None)
        return box[(*local, *key[lead:])]

    # ---- reads --------------------------------------------------------------------------------
    def read_box(self, rows: tuple[int, int], cols: tuple[int, int] | None) -> np.ndarray:
        """Rows ``r0..r1`` (and columns ``c0..c1`` of the second axis, None: all) as a new array."""
        r0, r1 = rows
        c0, c1 = cols if cols is not None else (0, self.shape[1] if self.ndim > 1 else 0)
        shape = (r1 - r0, c1 - c0, *self.shape[2:]) if self.ndim > 1 else (r1 - r0,)
        out = np.empty(shape, self.dtype)
        if out.nbytes == 0:
            return out
        placement = self._files.placement(self.name)
        for _ in range(_RETRIES):
            whole = self._read_into(out, placement, r0, c0, c1)  # short: the file was cut past a member that moved
            try:
                moved = self._files.confirm(self.name, placement, r1)
            except RecordingFinished:
                return self._from_final(r0, r1, c0, c1)
            if moved is None:
                if not whole:
                    raise RolloutFormatError(f"{self._files.partial.data_path}: shorter than the committed rows of "
                                             f"{self.name!r} the sidecar names")
                return out
            placement = moved
        raise RolloutFormatError(f"{self._files.path}: member {self.name!r} kept moving while it was read; try again")

    def _read_into(self, out: np.ndarray, p: Placement, r0: int, c0: int, c1: int) -> bool:
        """Read the box at placement ``p``; False when the file ended first."""
        fd, row = self._files.fileno(), self._row_bytes
        base = p.data_offset + r0 * row
        n = out.shape[0]
        if self.ndim == 1 or (c0 == 0 and c1 == self.shape[1]):  # whole rows: one contiguous range
            return _pread_into(fd, memoryview(out.reshape(-1).view(np.uint8)), base)
        N = self.shape[1]
        width = row // N * (c1 - c0)
        skip = row // N * c0
        if row <= _DENSE_STRIDE:  # small rows: read blocks of whole rows, keep the columns
            block = max(1, _BLOCK_BYTES // row)
            buf = np.empty(min(block, n) * row, np.uint8)
            for t in range(0, n, block):
                k = min(block, n - t)
                if not _pread_into(fd, memoryview(buf[: k * row]), base + t * row):
                    return False
                out[t : t + k] = buf[: k * row].view(self.dtype).reshape(k, N, *self.shape[2:])[:, c0:c1]
            return True
        dst = out.reshape(n, -1).view(np.uint8)
        return all(_pread_into(fd, memoryview(dst[t]), base + t * row + skip, width) for t in range(n))

    def _from_final(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        archive = self._files.final_archive
        if self.ndim == 1:
            return archive.read_rows(self.name, r0, r1)
        if archive.shapes[self.name][1:] != self.shape[1:]:
            raise RolloutFormatError(f"{self._files.path}: member {self.name!r} has another shape in the finished file")
        if c0 == 0 and c1 == self.shape[1]:
            return archive.read_rows(self.name, r0, r1)
        return archive.read_block(self.name, (r0, r1), (c0, c1))


def _pread_into(fd: int, buf: memoryview, offset: int, size: int | None = None) -> bool:
    """Fill ``buf[:size]`` from ``offset``; False when the file ends first."""
    size = len(buf) if size is None else size
    done = 0
    while done < size:
        n = os.preadv(fd, [buf[done : min(size, done + _CHUNK)]], offset + done)
        if n <= 0:
            return False
        done += n
    return True


__all__ = ["CommittedArray"]
