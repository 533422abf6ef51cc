"""Move ring segments to disk without stalling the thread that records.

::

    main thread      record() ─► ring[seg s] ... full (or flush interval over) ─► flush(s, rows)
                                                  │
    CUDA only        side stream: wait(event after those rows written) ─► D2H copy into pinned staging
                                                  │ job(wait, arrays, release)
    writer thread    wait for the copy ─► append every member (queue writes, CRC) ─► fence ─► next job
    I/O threads                                     └─ direct writes, several in flight ─┘
    completer        wait for the fence (that job's writes) ─► release the job ─► offer its rows to the committer

A flush hands over rows of one segment: all of it when it is full, or the rows recorded so far
when the recorder's flush interval has passed (the rest of the segment follows in a later flush).
On CPU the writer writes straight from the ring, and the main thread does not start a segment
again until every flush of it is released; rows not yet handed over are never read by the
writer, so recording continues into them meanwhile. On CUDA the rows go to one of
``staging_buffers`` pinned buffers; the compute stream waits (on the device, not the host) for
the last copy out of a segment before it overwrites it. The main thread blocks only when no
segment (CPU) or staging buffer (CUDA) is free: backpressure, never dropped data. The writer
thread is the only place the host waits on the device while recording.

The CUDA ordering, stream by stream (tested with a stand-in for ``torch.cuda`` in
``tests/engine/test_cuda_ordering.py``; only a GPU run shows the device keeps it):

- `FlushPipeline.acquire` runs in ``record()`` before the first step of a segment: it notes the
  recording device's current stream (the stream ``record()`` writes the segment on) and makes
  it wait for the last copy out of that segment.
- `FlushPipeline.flush` makes the pipeline's side stream wait for that stream (and for the
  stream current at the flush, when another: ``close()`` may run outside the ``torch.cuda.stream``
  block ``record()`` ran in), then copies the rows on the side stream and records ``copied``.
  It runs under ``torch.cuda.device(recording device)``: a recorder on ``cuda:1`` of a process
  whose current device is 0 orders its own device's streams and never touches device 0.
- The writer thread makes the recording device current when it starts (a new thread starts on
  device 0, and leaving a stream context there would create a context on GPU 0), waits for
  ``copied`` on a blocking event (it sleeps; a default event spins a core), writes, drains the
  writes, and only then gives the staging buffer back.
- `FlushPipeline.close` waits for the side stream before unpinning the staging, so no copy is
  in flight into memory that is given back.

A ``gather`` (`Gather`: the recorder's volume control, an episode index and captured windows)
runs on the writer thread after a job's rows are on the host. Its ``staged`` tensors (the
episode buffers, which share the ring's slots) cross with the job's rows, into the same
staging buffer, so the gather reads them on the host; what it still needs from the device
(captured windows, whose size depends on the data) it copies itself, which is why it runs on
the thread that may wait. With a gather, a segment is not recorded into again until its jobs
are released, on CUDA too.

Direct I/O (`rollrec._npz.direct_io`) writes from memory aligned where the file is, without a copy.
So the CPU ring and each field's pinned staging start on a 4 KiB boundary (`aligned_zeros`,
`rollrec.engine.cuda_host.PinnedHostBuffer`: one registered allocation per staging buffer, cut
into views), and a D2H copy lands at the offset in its staging view that has the same place
within a 4 KiB block as the rows' place in the file (the file's data offsets are 4 KiB-aligned).
The ring's rows are aligned that way on their first pass and, where a segment's bytes are a
multiple of 4 KiB (e.g. N a multiple of 4096, or float32 fields with N a multiple of 1024),
always; other fields go through the writer's bounce buffers (one copy). A job's memory is
released, and its rows offered for commit, only once all of its writes have completed.

After each job the writer hands a snapshot (rows written, their CRCs) to a committer thread,
which syncs the rows to disk and names them in the sidecar (`rollrec._npz.stream`); it takes
the newest snapshot each time, so the writer never waits for the disk to commit. `close` waits
for the last commit; after a failure (disk full, directory removed) `close` still joins the
threads and drops the ring and the staging buffers, so a failed recording holds no thread and no
memory.

The writer thread does not wait for a job's writes before it queues the next job's: a fence
marks each job's writes, and a completer thread waits for it, releases the job's memory and
offers the job's snapshot (rows and CRCs as of that job) for commit. So the device always has
the next segment's writes queued behind the current ones, instead of idling while the writer
drains, releases, commits and takes the next job.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np
import torch

from rollrec.engine.cuda_host import PinnedHostBuffer, carved_size
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
    staged: dict[str, np.ndarray] = field(default_factory=dict)  # the gather's staged rows, on the host


class Gather(Protocol):
    """The writer thread's hook for rows of other members (see the module docstring).

    ``staged``: ``[capacity, ...]`` tensors that share the ring's slots; the rows of each job
    reach the host with the job (CUDA: in its staging buffer) and are handed to the call.
    ``gather(first_slot, rows, first_row, staged) -> {member: rows}``: ``staged`` holds those
    host rows (``[rows, ...]`` numpy arrays, valid during the call). `close` frees what it holds
    once the writer thread has ended.
    """

    staged: Mapping[str, torch.Tensor]

    def __call__(self, first_slot: int, rows: int, first_row: int,
                 staged: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]: ...

    def close(self) -> None: ...


class RowEncoder(Protocol):
    """Turns a job's rows of a ring field into rows of other members (a camera's packets and index)."""

    def encode_rows(self, rows: np.ndarray, first_row: int) -> Mapping[str, np.ndarray]: ...


def aligned_zeros(nbytes: int) -> torch.Tensor:
    """A zero-filled ``uint8`` CPU tensor of ``nbytes`` whose first byte is `BLOCK`-aligned (for direct I/O).

    Over-allocates by one block and returns the aligned view (it keeps the allocation alive).
    """
    raw = torch.zeros(nbytes + BLOCK, dtype=torch.uint8)
    skip = (-raw.data_ptr()) % BLOCK
    return raw[skip : skip + nbytes]


@dataclass
class Staging:
    """One staging buffer (CUDA): a pinned allocation cut into a view per ring field (``views``,
    with a block of room so rows land at their place within a block) and per staged tensor."""

    memory: PinnedHostBuffer
    views: dict[str, torch.Tensor]
    staged: dict[str, torch.Tensor]


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
        # Normal tensors even when the first record() runs under torch.inference_mode(): close()
        # updates some in place outside it. Zeroed, not empty: touching every page now keeps page
        # faults out of record()'s first pass over the ring (an untouched 5 MB step costs ~6x the copy).
        with torch.inference_mode(False):
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
    ``gather`` adds rows of other members to each job (see `Gather`). ``encoders`` map ring
    fields stored encoded (cameras) to what turns a job's rows into other members' rows
    (``encode_rows(rows, first_row) -> {member: rows}``: `rollrec.engine.images.CameraEncoder`),
    on the writer thread, before the job is released. ``device``: where the
    ring lives (needed when it holds no tensor: everything kept is gathered).

    CUDA: ``staging_buffers`` pinned buffers, one registered host allocation each
    (`pinned_bytes` reports them; `staging` lists them); the ordering is in the module docstring.
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
        encoders: Mapping[str, RowEncoder] | None = None,
    ):
        self.ring: RingBuffers | None = ring
        self.encoders = dict(encoders or {})
        self.gather = gather
        self.staged: dict[str, torch.Tensor] = dict(gather.staged) if gather is not None else {}
        self._queued_rows = 0  # rows handed to the writer (main thread): where the next flush lands in the file
        self.seg = segment_steps
        self.num_segments = ring.capacity // segment_steps
        self.stream = stream
        # A segment's worth of each constant's rows, built once in aligned memory (written without a copy).
        self.constants = {name: _repeated_rows(row, segment_steps) for name, row in (constants or {}).items()}
        self.transforms = dict(transforms or {})
        self.error: BaseException | None = None
        self.written_rows = 0  # rows written to the file (completer thread)
        device = device if device is not None else next(iter(ring.tensors.values())).device
        self.cuda = device.type == "cuda"
        self._closed = False
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._segment_free = [threading.Event() for _ in range(self.num_segments)]
        self._pending = [0] * self.num_segments  # flushes of each segment not yet released
        self._lock = threading.Lock()
        for ev in self._segment_free:
            ev.set()
        self.staging: tuple[Staging, ...] = ()
        if self.cuda:
            self._device = device
            self._side = torch.cuda.Stream(device=device)
            self._copied: list[torch.cuda.Event | None] = [None] * self.num_segments
            self._writers: list[torch.cuda.Stream | None] = [None] * self.num_segments  # record()'s stream per segment
            self._row_bytes = {name: t[0].numel() * t.element_size() for name, t in ring.tensors.items()}
            self._staged_row_bytes = {name: t[0].numel() * t.element_size() for name, t in self.staged.items()}
            self.staging = tuple(self._new_staging(segment_steps) for _ in range(staging_buffers))
            self._free_staging: queue.Queue[Staging] = queue.Queue()
            for buf in self.staging:
                self._free_staging.put(buf)
        self._committer = _Committer(stream, self._set_error)
        self._thread = threading.Thread(target=self._run, name="rollrec-writer", daemon=True)
        self._thread.start()

    def _new_staging(self, rows: int) -> Staging:
        ring, staged = list(self._row_bytes), list(self._staged_row_bytes)
        # Ring fields: a block of room in front, so rows land at their place within a block.
        sizes = [BLOCK + rows * self._row_bytes[n] for n in ring] + [rows * self._staged_row_bytes[n] for n in staged]
        memory = PinnedHostBuffer(carved_size(sizes))
        views = memory.carve(sizes)
        return Staging(memory, dict(zip(ring, views)), dict(zip(staged, views[len(ring):])))

    @property
    def pinned_bytes(self) -> int:
        """Pinned host bytes the staging buffers hold now (0 on CPU and once closed)."""
        return sum(buf.memory.nbytes for buf in self.staging)

    # ---- main thread ------------------------------------------------------------------------
    def acquire(self, segment: int) -> None:
        """Call in ``record()`` before writing the first step of ``segment``: waits until it may be overwritten.

        CUDA: the recording device's current stream (the one ``record()`` writes the segment
        on) is noted, and waits on the device for the last copy out of the segment.
        """
        self.raise_if_failed()
        if not self.cuda or self.gather is not None:
            self._segment_free[segment].wait()
        if self.cuda:
            writer = torch.cuda.current_stream(self._device)
            self._writers[segment] = writer
            copied = self._copied[segment]
            if copied is not None:
                writer.wait_event(copied)

    def flush(self, segment: int, rows: int, first: int = 0) -> None:
        """Hand steps ``first .. first + rows - 1`` of ``segment`` to the writer thread.

        Does not wait, but for a free staging buffer (CUDA) when every one is in use: that wait
        comes before anything changes, so a Ctrl-C there leaves the pipeline as it was.
        """
        self.raise_if_failed()
        start = segment * self.seg + first
        file_row = self._queued_rows
        if self.cuda:
            staging = self._take_staging()
            try:
                job = self._stage(segment, start, rows, file_row, staging)
            except BaseException:
                self._give_staging(staging)
                raise
        else:
            arrays = {name: t[start : start + rows].numpy() for name, t in self.ring.tensors.items()}
            staged = {name: t[start : start + rows].numpy() for name, t in self.staged.items()}
            job = _Job(rows, arrays, None, partial(self._release, segment), start, file_row, staged)
        if not self.cuda or self.gather is not None:
            self._hold(segment)
        self._jobs.put(job)
        self._queued_rows = file_row + rows

    def _stage(self, segment: int, start: int, rows: int, file_row: int, staging: Staging) -> _Job:
        """Queue the D2H copy of the job's rows into ``staging`` (see the module docstring)."""
        views = {}
        for name, t in self.ring.tensors.items():  # the rows' place within a 4 KiB block, as in the file
            rb = self._row_bytes[name]
            at = file_row * rb % BLOCK
            views[name] = staging.views[name][at : at + rows * rb].view(t.dtype).view(rows, *t.shape[1:])
        staged = {name: staging.staged[name][: rows * self._staged_row_bytes[name]].view(t.dtype).view(rows, *t.shape[1:])
                  for name, t in self.staged.items()}
        with torch.cuda.device(self._device):
            current = torch.cuda.current_stream(self._device)
            writer = self._writers[segment] or current
            self._side.wait_stream(writer)  # the rows record() wrote on its stream
            if current != writer:  # e.g. close() outside record()'s torch.cuda.stream block
                self._side.wait_stream(current)
            with torch.cuda.stream(self._side):
                for name, t in self.ring.tensors.items():
                    views[name].copy_(t[start : start + rows], non_blocking=True)
                for name, t in self.staged.items():
                    staged[name].copy_(t[start : start + rows], non_blocking=True)
                copied = torch.cuda.Event(blocking=True)  # the writer sleeps on it instead of spinning
                copied.record(self._side)
        self._copied[segment] = copied
        return _Job(rows, {name: v.numpy() for name, v in views.items()}, copied.synchronize,
                    partial(self._release_staging, staging, segment), start, file_row,
                    {name: v.numpy() for name, v in staged.items()})

    def _take_staging(self) -> Staging:
        """A free staging buffer; blocks while every one is in use (backpressure)."""
        return self._free_staging.get()

    def _give_staging(self, staging: Staging) -> None:
        self._free_staging.put(staging)

    def _release_staging(self, staging: Staging, segment: int) -> None:
        self._give_staging(staging)
        if self.gather is not None:
            self._release(segment)

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
        dropped (the staging unpinned, once no copy into it is in flight) when this returns or
        raises. Idempotent.
        """
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._committer.close()
        if not self._closed:
            self._closed = True
            if self.cuda:
                with torch.cuda.device(self._device):  # after a failure, jobs were dropped unwaited
                    idle = torch.cuda.Event(blocking=True)
                    idle.record(self._side)
                idle.synchronize()
                for buf in self.staging:
                    buf.memory.close()
                self.staging = ()  # the memory goes with the last view of it
                self._free_staging = None
                self._copied = self._writers = None
            if self.gather is not None:
                self.gather.close()
        self.ring = None
        self.staged = {}
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"writing {self.stream.path} failed: {self.error}") from self.error

    # ---- writer thread ------------------------------------------------------------------------
    def _set_error(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    def _run(self) -> None:
        if self.cuda:  # a new thread starts on device 0: leaving a stream context there would make a context on it
            torch.cuda.set_device(self._device)
        done: queue.SimpleQueue = queue.SimpleQueue()
        completer = threading.Thread(target=self._complete, args=(done,), name="rollrec-complete", daemon=True)
        completer.start()
        try:
            while (job := self._jobs.get()) is not None:
                try:
                    if self.error is None:
                        held = self._write(job)
                        # The job's writes may still be in flight: the completer releases its memory
                        # and offers its rows for commit once they have completed (see the module docstring).
                        done.put((job, self.stream.fence(), self.stream.snapshot(wait=False), held))
                        continue
                except BaseException as exc:  # noqa: BLE001 (keep draining so the main thread never deadlocks)
                    self._set_error(exc)
                    with contextlib.suppress(BaseException):
                        self.stream.drain()  # no write may read the job's memory once it is released
                done.put((job, None, None, None))
        finally:
            done.put(None)
            completer.join()
        if self.error is None:
            try:
                self._committer.offer(self.stream.snapshot())  # also writes the recovery info set last
            except BaseException as exc:  # noqa: BLE001 - reported by raise_if_failed
                self._set_error(exc)

    def _complete(self, done: queue.SimpleQueue) -> None:
        """Release each job once its writes have completed, in order, and offer its rows for commit."""
        while (item := done.get()) is not None:
            job, fence, snapshot, _held = item  # _held: arrays the writes read, alive until they complete
            try:
                if fence is not None:
                    self.stream.wait_fence(fence)  # returns or raises once every earlier write has completed
                    self.written_rows += job.rows
                    if self.error is None:
                        self._committer.offer(snapshot)
            except BaseException as exc:  # noqa: BLE001 - reported by raise_if_failed
                self._set_error(exc)
            finally:
                job.release()

    def _write(self, job: _Job) -> list[np.ndarray]:
        """Queue the job's writes for every member (CRCs taken meanwhile); returns the arrays made
        here that the writes read (the job's own memory is held until it is released)."""
        if job.wait is not None:
            job.wait()
        held = []
        for name, rows in job.arrays.items():
            encoder = self.encoders.get(name)
            if encoder is not None:  # encoded while the other members' writes are in flight
                for member, data in encoder.encode_rows(rows, job.first_row).items():
                    self.stream.append(member, data, wait=False)
                continue
            fn = self.transforms.get(name)
            if fn is not None:
                rows = fn(rows)
                held.append(rows)
            self.stream.append(name, rows, wait=False)
        for name, rows in self.constants.items():
            self.stream.append(name, rows[: job.rows], wait=False)
        # Gathered rows are fresh arrays that nothing changes while their writes are in flight.
        gathered = self.gather(job.first_slot, job.rows, job.first_row, job.staged) if self.gather is not None else {}
        for name, rows in gathered.items():
            self.stream.append(name, rows, wait=False)
            held.append(rows)
        return held


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
