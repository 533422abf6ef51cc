"""References on the disk itself: what the device sustains, what numpy gets, and the dirty pages left behind.

* `direct_write`: the device limit. ``nbytes`` written with ``O_DIRECT`` in 64 MiB writes from
  one aligned buffer into a new file, then ``fdatasync``: no page cache, nothing left to write
  back, nothing but the device in the way. None where the file system refuses direct I/O.
* `np_save_fsync`: ``np.save`` of ``nbytes`` then ``fsync``: a buffered writer made to finish its
  job (the page cache only defers the disk; ``np.save`` alone measures memory). To keep GBs out
  of memory the array is one pool of bytes repeated: the file gets ``np.save``'s header and then
  the pool's ``tofile`` once per repeat, which is what ``np.save`` does with a contiguous array.
* `DirtyPeak`: the largest ``Dirty:`` figure of ``/proc/meminfo`` (the machine's dirty page
  cache, all processes) while a block of code runs, sampled every 20 ms.

Every function deletes the file it wrote.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from rollrec._npz.direct_io import aligned_array

_WRITE = 64 << 20


def direct_write(path: Path, nbytes: int) -> float | None:
    """Seconds to write ``nbytes`` (rounded down to 64 MiB, at least one write) with O_DIRECT, synced."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    buf = aligned_array(_WRITE)
    buf[:] = np.random.default_rng(0).integers(0, 255, _WRITE, dtype=np.uint8)  # touched, incompressible
    total = max(_WRITE, nbytes // _WRITE * _WRITE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | flag, 0o644)
    except OSError:
        return None
    try:
        view = memoryview(buf)
        t0 = time.perf_counter()
        for off in range(0, total, _WRITE):
            done = 0
            while done < _WRITE:
                done += os.pwrite(fd, view[done:], off + done)
        os.fdatasync(fd)
        seconds = time.perf_counter() - t0
    except OSError:  # accepted the flag, refused the write (some network file systems)
        return None
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return seconds * nbytes / total


def np_save_fsync(path: Path, pool: np.ndarray, nbytes: int) -> float:
    """Seconds to ``np.save`` ``nbytes`` (``pool``, C-contiguous, repeated) to a new file and ``fsync`` it.

    Scaled to ``nbytes`` from the whole repeats written.
    """
    pool = np.ascontiguousarray(pool).reshape(-1).view(np.uint8)
    reps = max(1, nbytes // pool.size)
    header = {"descr": "|u1", "fortran_order": False, "shape": (reps * pool.size,)}
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for _ in range(reps):
            pool.tofile(f)
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    path.unlink(missing_ok=True)
    return seconds * nbytes / (reps * pool.size)


def dirty_bytes() -> int | None:
    """The machine's ``Dirty:`` page cache in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class DirtyPeak:
    """``with DirtyPeak() as d: ...`` then ``d.peak``, ``d.before`` (bytes; None off Linux)."""

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.before = dirty_bytes()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self):  # -> DirtyPeak
        if self.before is not None:
            self._thread = threading.Thread(target=self._sample, name="dirty-peak", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._note()

    def _note(self) -> None:
        now = dirty_bytes()
        if now is not None:
            self.peak = max(self.peak or 0, now)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._note()
