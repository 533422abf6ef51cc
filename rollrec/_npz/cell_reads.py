"""Read the cells a selection needs from a stored member with ``pread``: few calls, the right bytes, several threads when cold.

A stored member is a C-contiguous ``[A, B, *cell]`` array at ``data_offset`` in the file (``[A,
*cell]`` when it has one leading axis). `read_cells` reads ``member[rows][:, cols]`` (``rows`` and
``cols`` sorted and distinct, see `rollrec._npz.selection`) into a new array:

- Columns close together are read as one *window* (the bytes between them come along when the
  gap is under `MERGE_GAP`: one read of a few KiB more costs less than another call, warm or
  cold); a window holding only needed columns is read straight into the result.
- When one window covers whole rows, rows close together are read as one range of the file, in
  pieces of at most `CHUNK` bytes: a full scan is a few large reads, as fast as the disk reads.
- Otherwise one read per row and window: ``r[key][:, k]`` is ``T`` small reads, a page apart, as
  `rollrec.io.reader.Rollout.env` does them.

Many small reads of a file that is not in the page cache wait on the disk one after another, so
they are issued from `COLD_THREADS` threads at once, with the kernel's read-ahead turned off for
the duration (it would fetch the neighbouring cells too); reads of cached bytes are CPU work and
stay on the caller's thread (more threads only contend for the GIL). Whether the bytes are
cached is asked with ``RWF_NOWAIT`` on the first and last read.

A read that comes back short (the file was truncated by another process) raises what ``shrunk()``
returns: never SIGBUS, as touching a lost page of a memory map would.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Bytes between two needed ranges below which they are read as one.
MERGE_GAP = 16 << 10
#: Largest single read.
CHUNK = 16 << 20
#: Threads issuing small reads of bytes that are not cached.
COLD_THREADS = 8
_MIN_THREADED_READS = 32  # fewer reads than this stay on the caller's thread
_SMALL_READ = 16 << 10  # reads up to this size are joined as bytes, then copied once

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(COLD_THREADS, thread_name_prefix="rollrec-read")
        return _pool


def read_cells(fd: int, data_offset: int, shape: Sequence[int], dtype: np.dtype, rows: np.ndarray,
               cols: np.ndarray | None, shrunk: Callable[[], Exception]) -> np.ndarray:
    """``member[rows][:, cols]`` (``[len(rows), len(cols), *shape[2:]]``; without ``cols``,
    ``member[rows]``) of the stored member of ``shape`` and ``dtype`` at ``data_offset`` of ``fd``."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    if cols is None:
        width, cols, cell_shape = 1, np.zeros(1, np.int64), shape[1:]
        out_shape = (len(rows), *shape[1:])
    else:
        width, cell_shape = shape[1], shape[2:]
        out_shape = (len(rows), len(cols), *shape[2:])
    out = np.empty(out_shape, dtype)
    cell = int(np.prod(cell_shape, dtype=np.int64)) * dtype.itemsize
    if out.nbytes == 0:
        return out
    reader = _Reader(fd, data_offset, width * cell, cell, shrunk)
    flat = out.reshape(len(rows), -1).view(np.uint8)  # one row of the result per row read
    windows = _windows(np.asarray(cols, np.int64), cell)
    if len(windows) == 1 and windows[0][0] == 0 and windows[0][1] == width:
        reader.whole_rows(np.asarray(rows, np.int64), windows[0][2], flat)
    else:
        reader.row_windows(np.asarray(rows, np.int64), windows, flat)
    return out


def _windows(cols: np.ndarray, cell: int) -> list[tuple[int, int, np.ndarray | None]]:
    """Columns ``cols`` grouped into windows ``(first, stop, positions)``: ``positions`` are the
    needed columns' places in the window (None when the window holds needed columns only)."""
    if len(cols) == 0:
        return []
    first, last = int(cols[0]), int(cols[-1])
    if last - first + 1 == len(cols):  # one range of columns (the common case): no gaps to look at
        return [(first, last + 1, None)]
    gap = (np.diff(cols) - 1) * cell
    cuts = np.flatnonzero(gap > MERGE_GAP) + 1
    out = []
    for part in np.split(cols, cuts):
        first, stop = int(part[0]), int(part[-1]) + 1
        out.append((first, stop, None if stop - first == len(part) else part - first))
    return out


class _Reader:
    """The reads of one `read_cells` call (``stride``: bytes of a row of the member)."""

    def __init__(self, fd: int, base: int, stride: int, cell: int, shrunk: Callable[[], Exception]):
        self.fd, self.base, self.stride, self.cell, self.shrunk = fd, base, stride, cell, shrunk

    def _pread_into(self, buf: memoryview, offset: int) -> None:
        done = 0
        while done < len(buf):
            n = os.preadv(self.fd, [buf[done : done + CHUNK]], offset + done)
            if n <= 0:
                raise self.shrunk()
            done += n

    # ---- one window covering whole rows: ranges of rows ---------------------------------------
    def whole_rows(self, rows: np.ndarray, positions: np.ndarray | None, flat: np.ndarray) -> None:
        stride = self.stride
        first, last = int(rows[0]), int(rows[-1])
        if positions is None and last - first + 1 == len(rows):  # one range of the file, straight into the result
            self._pread_into(memoryview(flat.reshape(-1)), self.base + first * stride)
            return
        cuts = np.flatnonzero((np.diff(rows) - 1) * stride > MERGE_GAP) + 1
        groups = np.split(np.arange(len(rows)), cuts)
        jobs = []
        for g in groups:
            first, last = int(rows[g[0]]), int(rows[g[-1]])
            dense = last - first + 1 == len(g) and positions is None
            per = max(1, CHUNK // stride)  # rows per read when the rows go through a buffer
            if dense:
                jobs.append((g[0], first, len(g), None))
            else:
                for a in range(first, last + 1, per):
                    b = min(a + per, last + 1)
                    lo, hi = np.searchsorted(rows[g[0] : g[-1] + 1], [a, b]) + g[0]
                    if hi > lo:
                        jobs.append((int(lo), a, b - a, rows[lo:hi] - a))
        threaded = len(jobs) > 1 and not self._cached([self.base + int(rows[0]) * stride,
                                                        self.base + (int(rows[-1]) + 1) * stride - 1])
        self._run(jobs, lambda job: self._rows_job(job, positions, flat), threaded)

    def _rows_job(self, job, positions, flat: np.ndarray) -> None:
        at, first, count, picked = job
        offset = self.base + first * self.stride
        if picked is None:  # straight into the result
            self._pread_into(memoryview(flat[at : at + count]).cast("B"), offset)
            return
        buf = np.empty((count, self.stride), np.uint8)
        self._pread_into(memoryview(buf).cast("B"), offset)
        block = buf[picked]
        if positions is not None:
            block = block.reshape(len(picked), -1, self.cell)[:, positions].reshape(len(picked), -1)
        flat[at : at + len(picked)] = block

    # ---- windows within rows: one read per row and window --------------------------------------
    def row_windows(self, rows: np.ndarray, windows: list, flat: np.ndarray) -> None:
        cell, stride = self.cell, self.stride
        dst = 0
        plans = []
        for first, stop, positions in windows:
            n = len(positions) if positions is not None else stop - first
            plans.append((first, stop, positions, dst, n))
            dst += n * cell
        per_thread = max(1, -(-len(rows) // COLD_THREADS))
        jobs = [(a, min(a + per_thread, len(rows))) for a in range(0, len(rows), per_thread)]
        reads = len(rows) * len(windows)
        threaded = reads >= _MIN_THREADED_READS and not self._cached(
            [self.base + int(rows[0]) * stride + windows[0][0] * cell,
             self.base + int(rows[-1]) * stride + (windows[-1][1] - 1) * cell])

        width = flat.shape[1]
        whole = memoryview(flat.reshape(-1))

        def job(span: tuple[int, int]) -> None:
            a, b = span
            starts = self.base + rows[a:b] * stride
            fd, preadv, pread = self.fd, os.preadv, os.pread
            for first, stop, positions, at, n in plans:
                size = (stop - first) * cell
                offsets = (starts + first * cell).tolist()
                if size <= _SMALL_READ:  # a few KiB: bytes joined, then one copy (fewer Python steps per read)
                    data = b"".join([pread(fd, size, off) for off in offsets])
                    if len(data) != size * (b - a):
                        raise self.shrunk()
                    got = np.frombuffer(data, np.uint8).reshape(b - a, stop - first, cell)
                    if positions is not None:
                        got = got[:, positions]
                    flat[a:b, at : at + n * cell] = got.reshape(b - a, n * cell)
                    continue
                if positions is None:  # only needed columns: straight into the result
                    got = [preadv(fd, [whole[i * width + at : i * width + at + size]], off)
                           for i, off in enumerate(offsets, a)]
                else:
                    buf = np.empty((b - a, size), np.uint8)
                    view = memoryview(buf.reshape(-1))
                    got = [preadv(fd, [view[i * size : (i + 1) * size]], off) for i, off in enumerate(offsets)]
                    flat[a:b, at : at + n * cell] = buf.reshape(b - a, stop - first, cell)[:, positions].reshape(b - a, -1)
                if sum(got) != size * (b - a):
                    raise self.shrunk()

        if threaded:
            with random_access(self.fd):
                self._run(jobs, job, True)
        else:
            job((0, len(rows)))

    # ---- threads and the page cache --------------------------------------------------------------
    def _run(self, jobs: list, fn: Callable, threaded: bool) -> None:
        if threaded and len(jobs) > 1:
            for f in [_threads().submit(fn, j) for j in jobs]:
                f.result()
        else:
            for j in jobs:
                fn(j)

    def _cached(self, offsets: list[int]) -> bool:
        """Whether the bytes at ``offsets`` are in the page cache (False where that cannot be asked)."""
        if not hasattr(os, "RWF_NOWAIT"):
            return False
        buf = bytearray(1)
        try:
            return all(os.preadv(self.fd, [buf], off, os.RWF_NOWAIT) == 1 for off in offsets)
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: the file system cannot tell
            return False


class random_access:
    """The kernel's read-ahead off for ``fd`` while inside (scattered small reads)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self) -> None:
        _fadvise(self.fd, getattr(os, "POSIX_FADV_RANDOM", None))

    def __exit__(self, *exc) -> None:
        _fadvise(self.fd, getattr(os, "POSIX_FADV_NORMAL", None))


def _fadvise(fd: int, advice: int | None) -> None:
    if advice is not None:
        try:
            os.posix_fadvise(fd, 0, 0, advice)
        except OSError:
            pass


__all__ = ["CHUNK", "COLD_THREADS", "MERGE_GAP", "read_cells"]
