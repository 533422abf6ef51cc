"""Write byte ranges of a file around the page cache: ``O_DIRECT`` (Linux), ``F_NOCACHE`` (macOS).

Direct I/O moves data from the caller's memory to the device: no copy into the page cache, no
dirty pages for the kernel to write back later, so a recorder runs at the device's rate for hours
and leaves the machine's memory to everyone else. Its rules, and how `DirectWriter` keeps them:

- Every write starts at a multiple of `BLOCK` (4 KiB) in the file, covers whole blocks and comes
  from memory aligned to `BLOCK`. A range that starts inside a block is written with the bytes of
  that block before it: the *carry*, the end of the previous write of the same stream (a member),
  kept in memory. A range that ends inside a block is written padded with zeros; the next write
  of the stream rewrites that block with the carry first. So padding only ever lands past the end
  of what the stream wrote (space nothing references: see `rollrec._npz.stream`), and the last
  partial block of a stream is on disk as soon as its write completes, not only at the end.
- The block-aligned middle of a range goes straight from the caller's memory when that memory is
  aligned where the file is (the recorder's ring and staging buffers are allocated so that it is,
  see `aligned_array`); otherwise it goes through aligned bounce buffers, `CHUNK` bytes at a time.
- Writes run on `threads` I/O threads, several in flight. `write` returns once they are queued;
  `drain` waits for all of them; `fence` marks the writes queued so far and `wait_fence` waits
  for those only (later writes stay in flight: the recorder queues a segment's writes while the
  previous segment's complete, so the device never waits for the writer between segments). Writes to different blocks may complete in any order; the one
  block two writes share (a stream's partial last block, rewritten by its next write) is ordered:
  the rewrite is queued only once the padded write before it has completed. Memory handed to `write` must not change until `drain` returns.
- A write that fails poisons the writer: `drain` and every later `write` raise that error, so
  rows whose bytes may not be on disk are never named as committed.

Streams named with `keep_cached` are written through the page cache instead (ordinary writes on
the same I/O threads, behind a bounded `rollrec._npz.writeback.WritebackWindow` that leaves the
pages cached once clean), for bytes that will be read back soon: an open-ended recording's
members after the first, copied once at finalize where the file system cannot remove the holes
between members in place (`rollrec._npz.stream`).

`open_direct` gives the direct descriptor beside the file's ordinary one, or None where the file
system refuses direct I/O (it probes with one block write); the ordinary descriptor stays for
everything that is not whole blocks of rows (headers, kernel copies, reads).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import queue
import sys
import threading
from collections.abc import Callable

import numpy as np

from rollrec._npz.writeback import WritebackWindow

#: File offsets, lengths and memory addresses of direct writes are multiples of this.
BLOCK = 4096
#: Largest single write, and the size of a bounce buffer.
CHUNK = 16 << 20
_BOUNCE_BUFFERS = 4  # at most this many CHUNK bounce buffers (64 MiB) exist per writer
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def aligned_array(nbytes: int) -> np.ndarray:
    """A zero-filled ``uint8`` array of ``nbytes`` whose first byte is `BLOCK`-aligned (anonymous mmap)."""
    mem = mmap.mmap(-1, max(int(nbytes), 1))
    return np.frombuffer(mem, dtype=np.uint8, count=int(nbytes))


def address(arr: np.ndarray) -> int:
    """Address of the first byte of ``arr``."""
    return int(arr.__array_interface__["data"][0])


def open_direct(fd: int, path: str) -> int | None:
    """A second descriptor of the open file ``fd`` (at ``path``) that bypasses the page cache.

    Linux: the same inode reopened through ``/proc/self/fd`` with ``O_DIRECT``; macOS: ``path``
    reopened with ``F_NOCACHE``. A probe writes one zero block at offset 0 (the caller's file is
    new and writes its header there last). None where the file system refuses (the probe's
    error, e.g. EINVAL on a network file system), or the platform has no such mode.
    """
    dfd = None
    try:
        if _O_DIRECT and os.path.isdir("/proc/self/fd"):
            dfd = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | _O_DIRECT | _CLOEXEC)
        elif sys.platform == "darwin":  # pragma: no cover - not run in CI
            import fcntl

            dfd = os.open(path, os.O_RDWR | _CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
            if os.fstat(dfd).st_ino != os.fstat(fd).st_ino:
                raise OSError(errno.ESTALE, f"{path} was replaced while opening it")
            fcntl.fcntl(dfd, getattr(fcntl, "F_NOCACHE", 48), 1)
        else:
            return None
        probe = aligned_array(BLOCK)
        if os.pwrite(dfd, memoryview(probe), 0) != BLOCK:
            raise OSError(errno.EIO, "short direct write")
        return dfd
    except OSError:
        if dfd is not None:
            os.close(dfd)
        return None


class _BufferPool:
    """Aligned buffers of one size, reused; `get` blocks while ``limit`` are in use."""

    def __init__(self, size: int, limit: int | None):
        self.size = size
        self.limit = limit
        self._free: list[np.ndarray] = []
        self._made = 0
        self._cond = threading.Condition()

    def get(self, failed: Callable[[], bool]) -> np.ndarray | None:
        with self._cond:
            while not self._free and self.limit is not None and self._made >= self.limit:
                if failed():
                    return None
                self._cond.wait(0.1)
            if self._free:
                return self._free.pop()
            self._made += 1
        return aligned_array(self.size)

    def put(self, buf: np.ndarray) -> None:
        with self._cond:
            self._free.append(buf)
            self._cond.notify()


class DirectWriter:
    """Writes streams of bytes at given file offsets as whole aligned blocks; see the module docstring.

    ``dfd`` is the direct descriptor, ``fd`` the file's ordinary one (read when a stream continues
    somewhere its carry does not describe, e.g. after its bytes were moved). Not thread-safe: one
    thread calls `write` and `drain`; `close` after that thread is done.
    """

    direct = True

    def __init__(self, dfd: int, fd: int, *, threads: int = 2):
        self.dfd = dfd
        self.fd = fd
        self.threads = max(1, int(threads))
        self._carry: dict[str, tuple[int, bytes]] = {}  # stream -> (end offset, bytes of its last partial block)
        self._small = _BufferPool(BLOCK, None)
        self._bounce = _BufferPool(CHUNK, _BOUNCE_BUFFERS)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._in_flight = 0
        self._seq = 0  # writes queued so far (each write's number is its place in that count)
        self._pending: set[int] = set()  # numbers of the writes not yet completed
        self._last_done: threading.Event | None = None  # completion of the latest write queued
        self._tail_done: dict[str, threading.Event] = {}  # stream -> its padded last block's write
        self._error: BaseException | None = None
        self._kept: frozenset[str] = frozenset()  # streams written through the page cache
        self._window: WritebackWindow | None = None
        self._window_lock = threading.Lock()
        self.zero_copy_bytes = 0  # written straight from the caller's memory
        self.copied_bytes = 0  # copied into bounce buffers first (the caller's and the carried bytes)

    # ---- the writer thread ---------------------------------------------------------------------
    def keep_cached(self, streams: frozenset[str]) -> None:
        """Write ``streams`` through the page cache from now on, and leave their pages cached (see the module docstring)."""
        self._kept = frozenset(streams)
        if self._kept and self._window is None:
            self._window = WritebackWindow(self.fd, keep_cached=True)

    def write(self, stream: str, offset: int, data: np.ndarray) -> None:
        """Queue ``data`` (C-contiguous ``uint8``) to be written at ``offset`` after the earlier bytes of ``stream``."""
        self._raise_if_failed()
        n = int(data.size)
        if n == 0:
            return
        if stream in self._kept:
            self._submit(data, offset, None, None, buffered=True)
            return
        head = self._head(stream, offset)
        pending = self._tail_done.pop(stream, None)
        if head and pending is not None:  # the padded block this write rewrites must land first
            pending.wait()
        start = offset - len(head)  # aligned
        k = (-len(head)) % BLOCK  # bytes of data that complete the head block
        if head and n <= k:  # all of it lands in the head block
            self._write_small(start, head, data)
        elif address(data[k:]) % BLOCK:  # not aligned where the file is: copy
            self._write_bounced(start, head, data)
        else:
            if head:
                self._write_small(start, head, data[:k])
            middle = (n - k) // BLOCK * BLOCK
            for a in range(k, k + middle, CHUNK):
                self._submit(data[a : min(a + CHUNK, k + middle)], offset + a, None, None)
            self.zero_copy_bytes += middle
            if k + middle < n:
                self._write_small(offset + k + middle, b"", data[k + middle :])
        end = offset + n
        tail = end % BLOCK
        keep = bytes(data[n - tail :]) if tail <= n else head[len(head) - (tail - n) :] + bytes(data)
        self._carry[stream] = (end, keep)
        if tail and self._last_done is not None:  # the last write queued holds the padded last block
            self._tail_done[stream] = self._last_done

    def drain(self) -> None:
        """Wait until every queued write has completed; raise the first error of any."""
        with self._cond:
            while self._in_flight:
                self._cond.wait()
        self._tail_done.clear()  # every write has completed
        self._raise_if_failed()

    def fence(self) -> int:
        """A mark of the writes queued so far, for `wait_fence`."""
        return self._seq

    def wait_fence(self, fence: int) -> None:
        """Wait until every write queued before ``fence`` was taken has completed (later ones may
        still be in flight); raise the first error of any write. May run on another thread than
        `write`."""
        with self._cond:
            while self._pending and min(self._pending) < fence:
                self._cond.wait()
        self._raise_if_failed()

    def close(self) -> None:
        """Wait for the writes in flight, end the I/O threads and close the direct descriptor. Idempotent."""
        with self._cond:
            while self._in_flight:
                self._cond.wait()
        if self._window is not None:
            with contextlib.suppress(OSError):
                self._window.finish()
        for _ in self._workers:
            self._queue.put(None)
        for t in self._workers:
            t.join()
        self._workers = []
        if self.dfd >= 0:
            os.close(self.dfd)
            self.dfd = -1

    # ---- pieces -----------------------------------------------------------------------------
    def _head(self, stream: str, offset: int) -> bytes:
        """The bytes of ``offset``'s block before ``offset`` (empty when ``offset`` is aligned)."""
        c = offset % BLOCK
        if c == 0:
            return b""
        end, carry = self._carry.get(stream, (-1, b""))
        if end == offset and len(carry) == c:
            return carry
        self.drain()  # the stream moved (its bytes were copied): read them where they are now
        got = os.pread(self.fd, c, offset - c)
        if len(got) != c:
            raise OSError(errno.EIO, f"unexpected end of file at byte {offset - c + len(got)}")
        return got

    def _write_small(self, start: int, head: bytes, data: np.ndarray) -> None:
        """One block: ``head + data`` (at most `BLOCK` bytes) padded with zeros, at ``start``."""
        buf = self._small.get(lambda: False)
        h, n = len(head), int(data.size)
        buf[:h] = np.frombuffer(head, dtype=np.uint8)
        buf[h : h + n] = data
        buf[h + n :] = 0
        self.copied_bytes += h + n
        self._submit(buf, start, self._small, buf)

    def _write_bounced(self, start: int, head: bytes, data: np.ndarray) -> None:
        """``head + data`` through bounce buffers, `CHUNK` bytes a write, the last one padded."""
        pos, n, first = 0, int(data.size), True
        while first or pos < n:
            buf = self._bounce.get(lambda: self._error is not None)
            if buf is None:
                self._raise_if_failed()
            h = len(head) if first else 0
            take = min(CHUNK - h, n - pos)
            if first:
                buf[:h] = np.frombuffer(head, dtype=np.uint8)
            buf[h : h + take] = data[pos : pos + take]
            used = h + take
            size = -(-used // BLOCK) * BLOCK
            buf[used:size] = 0
            self.copied_bytes += used
            self._submit(buf[:size], start, self._bounce, buf)
            start += size
            pos += take
            first = False

    def _submit(self, view: np.ndarray, offset: int, pool: _BufferPool | None, buf: np.ndarray | None,
                *, buffered: bool = False) -> None:
        """Queue one write of ``view`` at ``offset``; ``buf`` goes back to ``pool`` once written
        (``buffered``: an ordinary write, see `keep_cached`)."""
        if not self._workers:
            for i in range(self.threads):
                t = threading.Thread(target=self._work, name=f"rollrec-io-{i}", daemon=True)
                t.start()
                self._workers.append(t)
        with self._cond:
            self._in_flight += 1
            seq = self._seq
            self._seq += 1
            self._pending.add(seq)
        self._last_done = threading.Event()
        self._queue.put((view, offset, pool, buf, self._last_done, seq, buffered))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            view, offset, pool, buf, done, seq, buffered = item
            try:
                if self._error is None and buffered:
                    _pwrite_all(self.fd, view, offset)
                    with self._window_lock:
                        self._window.wrote(offset, int(view.size))
                elif self._error is None:
                    _pwrite_blocks(self.dfd, view, offset)
            except BaseException as exc:  # noqa: BLE001 - reported by drain
                with self._cond:
                    if self._error is None:
                        self._error = exc
            finally:
                if pool is not None:
                    pool.put(buf)
                done.set()
                with self._cond:
                    self._in_flight -= 1
                    self._pending.discard(seq)
                    self._cond.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


def _pwrite_all(fd: int, buf: np.ndarray, offset: int) -> None:
    view = memoryview(buf)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _pwrite_blocks(fd: int, buf: np.ndarray, offset: int) -> None:
    view = memoryview(buf)
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0 or n % BLOCK:
            raise OSError(errno.EIO, f"direct write of {len(view)} bytes at {offset} wrote {done + n}")
        done += n
