"""Buffered writes that keep dirty pages bounded: the fallback where direct I/O is refused.

A buffered write only copies into the page cache; the kernel writes it back later, and a recorder
that writes GBs fills the cache with dirty pages until the kernel throttles every writer on the
machine in bursts. `WritebackWindow` keeps the dirty bytes behind a writer bounded instead: each
range written is handed to writeback at once (``sync_file_range(WRITE)``), and once more than
``limit`` bytes are in flight the oldest ranges are waited for and dropped from the cache
(``sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER)``, then ``posix_fadvise(DONTNEED)``). That is
not a durability barrier (it neither syncs metadata nor flushes the device's cache): commits
still ``fdatasync``. Where ``sync_file_range`` does not exist (not Linux) the window only drops
pages it cannot make clean, i.e. does nothing but the ``fadvise``.

`BufferedWriter` is the same contract as `rollrec._npz.direct_io.DirectWriter`, for any file
system: ``pwrite`` on the writer's thread, then the window.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os

import numpy as np

from rollrec._npz.files import linux_libc_function

#: Bytes written but not yet known clean, at most (plus the write in progress).
WINDOW = 64 << 20
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4


_sync_file_range = linux_libc_function("sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)


def sync_file_range(fd: int, offset: int, length: int, flags: int) -> bool:
    """Linux ``sync_file_range``; False where it is missing or the file system does not support it."""
    if _sync_file_range is None or length <= 0:
        return False
    if _sync_file_range(fd, offset, length, flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ESPIPE, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"sync_file_range of {length} bytes at {offset}: {os.strerror(err)}")


class WritebackWindow:
    """Starts writeback of each range written through ``fd`` and keeps at most ``limit`` bytes unfinished.

    ``keep_cached``: ranges written back stay in the page cache (clean: the kernel may still drop
    them under memory pressure) for a reader that comes soon after (an open-ended recording's
    compaction, see `rollrec._npz.stream`).
    """

    def __init__(self, fd: int, limit: int = WINDOW, *, keep_cached: bool = False):
        self.fd = fd
        self.limit = limit
        self.keep_cached = keep_cached
        self._ranges: collections.deque[tuple[int, int]] = collections.deque()
        self._bytes = 0

    def wrote(self, offset: int, length: int) -> None:
        """``length`` bytes at ``offset`` were just written: start their writeback, retire the oldest."""
        if length <= 0:
            return
        sync_file_range(self.fd, offset, length, _WRITE)
        self._ranges.append((offset, length))
        self._bytes += length
        while self._bytes > self.limit:
            self._retire()

    def finish(self) -> None:
        """Wait for every range and drop it from the page cache."""
        while self._ranges:
            self._retire()

    def _retire(self) -> None:
        offset, length = self._ranges.popleft()
        self._bytes -= length
        sync_file_range(self.fd, offset, length, _WAIT_BEFORE | _WRITE | _WAIT_AFTER)
        if hasattr(os, "posix_fadvise") and not self.keep_cached:
            os.posix_fadvise(self.fd, offset, length, os.POSIX_FADV_DONTNEED)


class BufferedWriter:
    """`rollrec._npz.direct_io.DirectWriter`'s contract with ordinary ``pwrite`` and a `WritebackWindow`.

    Writes complete before `write` returns; a failed one poisons the writer as there.
    """

    direct = False

    def __init__(self, fd: int, *, window: int = WINDOW):
        self.fd = fd
        self.window = WritebackWindow(fd, window)
        self._error: BaseException | None = None

    def write(self, stream: str, offset: int, data: np.ndarray) -> None:
        """Write ``data`` (C-contiguous ``uint8``) at ``offset``; ``stream`` is unused here."""
        if self._error is not None:
            raise self._error
        try:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.pwrite(self.fd, view[done:], offset + done)
            self.window.wrote(offset, done)
        except BaseException as exc:
            self._error = exc
            raise

    def drain(self) -> None:
        """Nothing is in flight; raises the error of a failed write."""
        if self._error is not None:
            raise self._error

    def fence(self) -> int:
        """Writes complete as they are made: nothing to mark."""
        return 0

    def wait_fence(self, fence: int) -> None:
        """Nothing is in flight; raises the error of a failed write."""
        self.drain()

    def close(self) -> None:
        """Nothing to release (the descriptor is the caller's)."""
