"""Move ring segments to disk without stalling the thread that records.

::

    main thread      record() ─► ring[seg s] ... full (or flush interval over) ─► flush(s, rows)
                                                  │
    CUDA only        side stream: wait(event after those rows written) ─► D2H copy into pinned staging
                                                  │ job(wait, arrays, release)
    writer thread    wait for the copy ─► append every member (queue writes, CRC) ─► drain ─► release ─► commit
    I/O threads                                     └─ direct writes, several in flight ─┘

A flush hands over rows of one segment: all of it when it is full, or the rows recorded so far
when the recorder's flush interval has passed (the rest of the segment follows in a later flush).
On CPU the writer writes straight from the ring, and the main thread does not start a segment
again until every flush of it is released; rows not yet handed over are never read by the
writer, so recording continues into them meanwhile. On CUDA the rows go to one of
``staging_buffers`` pinned buffers; the compute stream waits (on the device, not the host) for
the last copy out of a segment before it overwrites it. The main thread blocks only when no
segment (CPU) or staging buffer (CUDA) is free: backpressure, never dropped data. The writer
thread is the only place the host waits on the device.

A ``gather`` function (the recorder's volume control: an episode index, captured windows) runs
on the writer thread after a job's rows are on the host: it reads device memory beyond the
staged rows, with selections whose size depends on the data (which is why it runs there: only
that thread may wait on the device), and returns rows for other members. With one, a segment is
not recorded into again until its jobs are released, on CUDA too.

Direct I/O (`rollrec._npz.direct_io`) writes from memory aligned where the file is, without a copy.
So the CPU ring and each field's pinned staging start on a 4 KiB boundary (`aligned_zeros`), and
a D2H copy lands at the offset in its staging buffer that has the same place within a 4 KiB block
as the rows' place in the file (the file's data offsets are 4 KiB-aligned). The ring's rows
are aligned that way on their first pass and, where a segment's bytes are a multiple of 4 KiB
(e.g. N a multiple of 4096, or float32 fields with N a multiple of 1024), always; other fields
go through the writer's bounce buffers (one copy). A job's memory is released, and its rows
offered for commit, only once all of its writes have completed.

After each job the writer hands a snapshot (rows written, their CRCs) to a committer thread,
which syncs the rows to disk and names them in the sidecar (`rollrec._npz.stream`); it takes
the newest snapshot each time, so the writer never waits for the disk to commit. `close` waits
for the last commit; after a failure (disk full, directory removed) `close` still joins both
threads and drops the ring and the staging buffers, so a failed recording holds no thread and no
memory.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from rollrec._npz.direct_io import BLOCK
from rollrec._npz.stream import NpzStreamWriter


@dataclass
class _Job:
    rows: int
    arrays: dict[str, np.ndarray]
    wait: Callable[[], None] | None
    release: Callable[[], None]
    first_slot: int = 0  # ring slot of the job's first row
    first_row: int = 0  # rows flushed before this job


#: ``gather(first_slot, rows, first_row) -> {member: rows}``: see the module docstring.
Gather = Callable[[int, int, int], Mapping[str, np.ndarray]]


def aligned_zeros(nbytes: int, *, device: torch.device | str = "cpu", pin_memory: bool = False) -> torch.Tensor:
    """A zero-filled ``uint8`` tensor of ``nbytes`` whose first byte is `BLOCK`-aligned (for direct I/O).

    Over-allocates by one block and returns the aligned view (it keeps the allocation alive).
    """
    raw = torch.zeros(nbytes + BLOCK, dtype=torch.uint8, device=device, pin_memory=pin_memory)
    skip = (-raw.data_ptr()) % BLOCK
    return raw[skip : skip + nbytes]


def _aligned_ring(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if device.type != "cpu":  # written through pinned staging, never directly
        return torch.zeros(shape, dtype=dtype, device=device)
    nbytes = int(np.prod(shape, dtype=np.int64)) * torch.empty(0, dtype=dtype).element_size()
    return aligned_zeros(nbytes).view(dtype).view(shape)


def _repeated_rows(row: np.ndarray, count: int) -> np.ndarray:
    """``[count, *row.shape]`` copies of ``row`` in `BLOCK`-aligned memory."""
    row = np.asarray(row)
    out = aligned_zeros(count * row.nbytes).numpy().view(row.dtype).reshape(count, *row.shape)
    out[:] = row
    return out


class RingBuffers:
    """``[capacity, N, *row]`` tensors on ``device``, one per field, and per-slot views of them.

    ``envs`` gives some fields another env count than ``num_envs`` (detail envs). On CPU each
    tensor starts on a 4 KiB boundary (see the module docstring).
    """

    def __init__(self, shapes: Mapping[str, tuple[tuple[int, ...], torch.dtype]], capacity: int, num_envs: int,
                 device: torch.device, envs: Mapping[str, int] | None = None):
        self.capacity = capacity
        envs = envs or {}
        # Zeroed, not empty: touching every page now keeps page faults out of record()'s first
        # pass over the ring (an untouched 5 MB step costs ~6x the copy itself).
        self.tensors = {
            name: _aligned_ring((capacity, envs.get(name, num_envs), *row), dtype, torch.device(device))
            for name, (row, dtype) in shapes.items()
        }
        # Views built once: indexing a tensor costs more host time than the copy itself on CUDA.
        self.slots = [tuple(t[i] for t in self.tensors.values()) for i in range(capacity)]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


class FlushPipeline:
    """Flushes segments of ``ring`` to ``stream`` on a writer thread; see the module docstring.

    ``transforms`` map a member name to a function applied to its rows on the writer thread
    (dtype casts, quaternion reordering). ``constants`` are members written as repeated rows.
    ``gather`` adds rows of other members to each job (see the module docstring). ``device``:
    where the ring lives (needed when it holds no tensor: everything kept is gathered).
    """

    def __init__(
        self,
        ring: RingBuffers,
        segment_steps: int,
        stream: NpzStreamWriter,
        *,
        constants: Mapping[str, np.ndarray] | None = None,
        transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
        staging_buffers: int = 2,
        gather: Gather | None = None,
        device: torch.device | None = None,
    ):
        self.ring: RingBuffers | None = ring
        self.gather = gather
        self._queued_rows = 0  # rows handed to the writer (main thread): where the next flush lands in the file
        self.seg = segment_steps
        self.num_segments = ring.capacity // segment_steps
        self.stream = stream
        # A segment's worth of each constant's rows, built once in aligned memory (written without a copy).
        self.constants = {name: _repeated_rows(row, segment_steps) for name, row in (constants or {}).items()}
        self.transforms = dict(transforms or {})
        self.error: BaseException | None = None
        self.written_rows = 0  # rows written to the file (writer thread)
        device = device if device is not None else next(iter(ring.tensors.values())).device
        self.cuda = device.type == "cuda"
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._segment_free = [threading.Event() for _ in range(self.num_segments)]
        self._pending = [0] * self.num_segments  # flushes of each segment not yet released
        self._lock = threading.Lock()
        for ev in self._segment_free:
            ev.set()
        if self.cuda:
            self._device = device
            self._side = torch.cuda.Stream(device=device)
            self._copied: list[torch.cuda.Event | None] = [None] * self.num_segments
            self._staging: queue.Queue[dict[str, torch.Tensor]] = queue.Queue()
            self._row_bytes = {name: t[0].numel() * t.element_size() for name, t in ring.tensors.items()}
            for _ in range(staging_buffers):  # per field: a block of room to land at any offset within a block
                self._staging.put(
                    {name: aligned_zeros(BLOCK + segment_steps * rb, pin_memory=True) for name, rb in self._row_bytes.items()}
                )
        self._committer = _Committer(stream, self._set_error)
        self._thread = threading.Thread(target=self._run, name="rollrec-writer", daemon=True)
        self._thread.start()

    # ---- main thread ------------------------------------------------------------------------
    def acquire(self, segment: int) -> None:
        """Call before writing the first step of ``segment``: waits until it may be overwritten."""
        self.raise_if_failed()
        if not self.cuda or self.gather is not None:
            self._segment_free[segment].wait()
        if self.cuda:
            copied = self._copied[segment]
            if copied is not None:
                torch.cuda.current_stream(self._device).wait_event(copied)

    def flush(self, segment: int, rows: int, first: int = 0) -> None:
        """Hand steps ``first .. first + rows - 1`` of ``segment`` to the writer thread (non-blocking)."""
        self.raise_if_failed()
        start = segment * self.seg + first
        file_row, self._queued_rows = self._queued_rows, self._queued_rows + rows
        if self.cuda:
            staging = self._staging.get()  # backpressure: blocks while every buffer is in use
            views = {}
            for name, t in self.ring.tensors.items():  # the rows' place within a 4 KiB block, as in the file
                rb = self._row_bytes[name]
                at = file_row * rb % BLOCK
                views[name] = staging[name][at : at + rows * rb].view(t.dtype).view(rows, *t.shape[1:])
            written = torch.cuda.Event()
            written.record()
            with torch.cuda.stream(self._side):
                self._side.wait_event(written)
                for name, t in self.ring.tensors.items():
                    views[name].copy_(t[start : start + rows], non_blocking=True)
                copied = torch.cuda.Event()
                copied.record(self._side)
            self._copied[segment] = copied
            arrays = {name: v.numpy() for name, v in views.items()}
            if self.gather is not None:
                self._hold(segment)

            def release(staging=staging, segment=segment) -> None:
                self._staging.put(staging)
                if self.gather is not None:
                    self._release(segment)

            self._jobs.put(_Job(rows, arrays, copied.synchronize, release, start, file_row))
        else:
            self._hold(segment)
            arrays = {name: t[start : start + rows].numpy() for name, t in self.ring.tensors.items()}
            self._jobs.put(_Job(rows, arrays, None, lambda: self._release(segment), start, file_row))

    def _hold(self, segment: int) -> None:
        with self._lock:
            self._pending[segment] += 1
            self._segment_free[segment].clear()

    def _release(self, segment: int) -> None:
        with self._lock:
            self._pending[segment] -= 1
            if self._pending[segment] == 0:
                self._segment_free[segment].set()

    def close(self) -> None:
        """Wait until every flushed row is on disk and committed; re-raises a writer failure.

        Whatever happens, the writer thread has ended and the ring and staging buffers are
        dropped when this returns or raises.
        """
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._committer.close()
        self.ring = None
        self._staging = None
        self._copied = None
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"writing {self.stream.path} failed: {self.error}") from self.error

    # ---- writer thread ------------------------------------------------------------------------
    def _set_error(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if self.error is None:
                    self._write(job)
                    self._committer.offer(self.stream.snapshot())
            except BaseException as exc:  # noqa: BLE001 (keep draining so the main thread never deadlocks)
                self._set_error(exc)
                with contextlib.suppress(BaseException):
                    self.stream.drain()  # no write may read the job's memory once it is released
            finally:
                job.release()
        if self.error is None:
            try:
                self._committer.offer(self.stream.snapshot())  # also writes the recovery info set last
            except BaseException as exc:  # noqa: BLE001 - reported by raise_if_failed
                self._set_error(exc)

    def _write(self, job: _Job) -> None:
        """Queue the job's writes for every member, then wait for them all (the job's memory is in use until then)."""
        if job.wait is not None:
            job.wait()
        for name, rows in job.arrays.items():
            fn = self.transforms.get(name)
            self.stream.append(name, fn(rows) if fn is not None else rows, wait=False)
        for name, rows in self.constants.items():
            self.stream.append(name, rows[: job.rows], wait=False)
        # Gathered rows are fresh arrays that nothing changes while their writes are in flight.
        gathered = self.gather(job.first_slot, job.rows, job.first_row) if self.gather is not None else {}
        for name, rows in gathered.items():
            self.stream.append(name, rows, wait=False)
        self.stream.drain()
        self.written_rows += job.rows


class _Committer:
    """Commits the newest snapshot it was offered, on its own thread, until closed."""

    def __init__(self, stream: NpzStreamWriter, on_error: Callable[[BaseException], None]):
        self.stream = stream
        self.on_error = on_error
        self._cond = threading.Condition()
        self._latest: tuple[int, dict[str, int], dict[str, int]] | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="rollrec-commit", daemon=True)
        self._thread.start()

    def offer(self, snapshot: tuple[int, dict[str, int], dict[str, int]]) -> None:
        with self._cond:
            self._latest = snapshot  # an older one not yet committed is superseded
            self._cond.notify()

    def close(self) -> None:
        """Commit what was offered last, then end the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._latest is None and not self._closing:
                    self._cond.wait()
                snapshot, self._latest = self._latest, None
            if snapshot is None:
                return
            try:
                self.stream.commit_snapshot(*snapshot)
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread by raise_if_failed
                self.on_error(exc)
                return
