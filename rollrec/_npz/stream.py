"""Write a stored (uncompressed) ``.npz`` in place, member by member, rows appended in order.

Layout
------
The file is laid out up front from each member's dtype, row shape and row capacity, the member
with the most bytes per row first (it starts the file and never moves), the others in order::

    offset 0   [zip local header | pad ][ npy header ][ rows 0 .. capacity-1 of the largest member ]
               [zip local header | pad ][ npy header ][ rows 0 .. capacity-1 of the next member ]
               ...
    finalise   [small members: meta, names ...][central directory][zip64 end records][end record]

Rows are written straight to their final offset, so each byte reaches the disk once; the CRC-32
of each member is computed on the bytes written as rows arrive. Where the file system allows it,
rows bypass the page cache (`rollrec._npz.direct_io`: ``O_DIRECT``, whole 4 KiB blocks from aligned
memory, several writes in flight) and each member's data starts on a multiple of 4 KiB;
elsewhere they are buffered writes that keep dirty pages bounded (`rollrec._npz.writeback`) and
data starts on a multiple of 64 bytes (``align`` overrides either). Everything that is not rows
(headers, the tail, kernel copies when the layout changes, reads) goes through the file's
ordinary descriptor. The central directory
lists the members in the order given, whatever their place in the file. See
`rollrec._npz.layout` for the placements, `rollrec._npz.zip_records` for the bytes of each record
and `rollrec._npz.sidecar` for the sidecar.

Data never moves under the sidecar
----------------------------------
A JSON sidecar (``layout_path``) names every member's offsets, the rows committed to disk and
their CRC-32. The writer keeps one rule: **no byte the sidecar references is written before the
sidecar stops referencing it**. Every move copies into space nothing references, syncs, switches
the sidecar, and only then gives the old space back (``fallocate(PUNCH_HOLE)``). So:

- `commit` names only rows whose writes have completed (`snapshot` waits for the writes in
  flight), syncs them to disk (``fdatasync``: direct writes into preallocated space still need
  it, for the extents' metadata and the device's cache), then replaces the sidecar (temporary
  file, ``fsync``, rename, directory ``fsync``).
- `grow` (more rows than reserved) copies the members after the first beyond both the end of the
  file and the first member's new capacity, switches, and the first member then grows in place
  into the space they left: only the smaller members are ever copied, and byte 0 stays a zip
  header (``np.load`` looks for one there).
- `finalize` gives unused capacity back, removes the holes between members where the file
  system can (``fallocate(COLLAPSE_RANGE)``: the one exception to the rule above, see
  "Recordings of unknown length"), else slides members down into large holes (the same
  copy-then-switch; a member whose new place would overlap its rows first moves past the end),
  writes the real npy and zip headers in place (the sidecar references rows, never headers), and
  puts the small members and the central directory right after the last member's rows. Members
  need not be adjacent in a zip: holes too small to be worth a copy read as zeros and take no
  disk space.

Guarantee: if the process dies at any instant (SIGKILL, OOM, a crash), the sidecar describes bytes
that hold exactly the committed rows, and `reopen` (``rollrec recover``) checks that against the
CRCs before it trusts them. If the machine loses power, the same holds where the file system honours
``fsync``/``fdatasync`` (the sidecar never reaches the disk before the rows it names); where it does
not, or with ``durable=False`` (no syncs: faster for rollouts the page cache can hold), `reopen`
refuses the mismatching rows with a clear error instead of returning wrong data with valid CRCs.
Every step that changes the file reports to `rollrec._npz.faults`.

Variable members
----------------
Members named in ``variable`` (an episode index, captured episode windows) hold their own
number of rows, appended independently of the others; the sidecar names their committed rows
separately (``variable_rows``). One that outgrows its capacity moves alone past the end of the
file (`_grow_member`: copy, sync, switch, punch), so a small index that grows often never
copies the large members.

Recordings of unknown length
----------------------------
With ``open_ended`` (the recorder's ``max_steps=None``) every fixed member gets room for as
many rows as the file system's free space holds, in a sparse file: only the rows asked for
are allocated up front, so the reservation costs no disk, and no member moves while rows are
appended (the file would be full first). Growing instead (doubling, copying the members after
the first each time, then closing the hole at the end) copied up to twice their bytes, through
the kernel's page-cache copy.

`finalize` then removes the holes between the members' rows with ``fallocate(COLLAPSE_RANGE)``
(ext4, XFS; probed on the new file): a change of extents, no byte copied, so the disk sees
every byte once (`_collapse_holes`). It moves referenced bytes, so it has its own protocol: the
sidecar first names the ranges and the file's size (`rollrec._npz.sidecar`), the ranges go
highest first, and since each removal shrinks the file by its length, the size alone says how
many went: `reopen` (and a live reader) computes the members' places from it. A killed process
leaves each removal done or not done (one system call). After a power loss, a file system that
applied part of one leaves rows the sidecar's CRCs reject: recovery refuses, never returns them
wrong. Where the file system cannot collapse (tmpfs, btrfs, NFS), the members after the first
(the smaller ones) are written through the page cache with direct I/O and left there once
clean, and `finalize` slides them down next to the first (`_close_holes`: one copy of their
bytes, read from memory, one sync and one sidecar switch). Where the file system cannot leave
holes (probed on the new file), members keep their capacity and grow as above. The reservation
shows in the partial file's size (``ls -l``), never in its disk use.

The writer is not thread-safe: one thread (the engine's writer thread) appends and grows, except
that `commit_snapshot` may run on another (the engine's committer, so the writer never waits for
the disk) and `set_recovery_info` on any. The writer's own I/O threads only ever write rows.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import os
import threading
import time
import zlib
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from rollrec._npz import faults, sidecar, zip_records
from rollrec._npz.direct_io import BLOCK, DirectWriter, aligned_array, open_direct
from rollrec.format.errors import RolloutFormatError
from rollrec._npz.files import (
    block_size,
    clone_range,
    collapse_range,
    copy_range,
    create_exclusive,
    fdatasync,
    memory_backed,
    punch_hole,
    replace_small_file,
)
from rollrec._npz.layout import (
    ALIGN,
    MemberSpec,
    Placement,
    after_collapse,
    align_up,
    header_before,
    header_fits,
    layout,
    placement_at,
)
from rollrec._npz.writeback import BufferedWriter, WritebackWindow
from rollrec._npz.zip_records import NPY_HEADER_BYTES, npy_header

try:  # ISA-L's CRC-32 runs ~5x faster than zlib's; same polynomial, same values.
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - platforms without isal wheels
    _crc32 = zlib.crc32

_TAIL_RESERVE = 1 << 20  # preallocated room for the small members and the directory
_COMPACT_MIN_HOLES = 8 << 20  # holes smaller than this are never worth copying members to close
_COMPACT_MIN_FRACTION = 0.25  # ... nor holes under this fraction of the bytes in use
_MIN_SLIDE = 1 << 20  # a member moves down only to close a gap at least this large
_READ_CHUNK = 64 << 20
_COPY_CHUNK = 8 << 20  # one read and one write of a copy between places of the file
_COPY_BUFFERS = 4
_RESERVE_LIMIT = 1 << 43  # open-ended: the reservation never exceeds this many bytes (8 TiB: ext4 files end at 16; tests lower it)
_RESERVE_QUANTUM = 1 << 16  # open-ended: rows reserved, in whole multiples of this (a multiple of any block size)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class NpzStreamWriter:
    """Append rows to the members of a stored ``.npz`` at ``path``; see the module docstring.

    ``members`` are laid out in `file_order` and listed in the zip directory in the order given.
    ``append(name, rows)`` takes a C-contiguous array of
    shape ``[n, *row_shape]`` and the member's dtype; `commit` makes rows durable and names them
    in the sidecar; `finalize` completes the archive in place; `close` releases the file;
    `abort` removes the files. Members named in ``variable`` keep their own row counts (see
    "Variable members"). ``path`` and ``layout_path`` are created exclusively (never
    through a symlink); ``overwrite`` replaces an existing sidecar, which otherwise is an error
    (an interrupted recording nobody recovered). A data file without a sidecar is always
    replaced: nothing could recover it. ``durable=False`` skips every sync (see the module
    docstring). ``direct``: None writes rows with direct I/O where the file system allows it and
    buffered otherwise, True requires direct I/O (OSError where refused), False never uses it;
    `direct` tells which was chosen. ``align`` (default 4096 with direct I/O, else 64) is where
    member data starts. ``io_threads``: direct writes in flight at once (None: 2, or 1 in memory,
    tmpfs, where writes to one file take turns on its lock and a second writer only spins: 0.81x
    against 0.72-0.75x of the memory's rate with two, `rollrec bench`'s CPU-side row). ``open_ended``: the
    number of rows is not known (see "Recordings of unknown length").
    """

    def __init__(
        self,
        path: str | os.PathLike,
        members: Sequence[MemberSpec],
        *,
        layout_path: str | None = None,
        recovery_info: Mapping | None = None,
        align: int | None = None,
        overwrite: bool = False,
        durable: bool = True,
        variable: Collection[str] = (),
        direct: bool | None = None,
        io_threads: int | None = None,
        open_ended: bool = False,
    ):
        self.path = os.fspath(path)
        self.durable = durable
        self.members = {m.name: m for m in members}
        if len(self.members) != len(members):
            raise ValueError("member names must be unique")
        self.variable = frozenset(variable)
        if not self.variable <= self.members.keys():
            raise ValueError(f"variable members {sorted(self.variable - self.members.keys())} are not members")
        self.layout_path = layout_path
        self._lock = threading.Lock()  # the sidecar, and the placements and commit it names
        self._info_json = json.dumps(dict(recovery_info or {}))
        self._now = time.time()
        self.rows = {m.name: 0 for m in members}
        self.crc = {m.name: 0 for m in members}
        self._committed = 0
        self._committed_crc = dict(self.crc)
        self._committed_variable = dict.fromkeys(self.variable, 0)
        self.file_size = 0
        self._fd = -1
        self._out: DirectWriter | BufferedWriter | None = None
        self._initial: dict[str, int] = {}  # open-ended: rows allocated up front, where the reservation is larger
        self._collapse: bool | None = None  # whether the file system takes COLLAPSE_RANGE (None: not known yet)
        self._in_memory = False  # whether the file lives in memory (tmpfs)
        self._copy_buffers: list[np.ndarray] = []  # aligned buffers of `_copy`, made on first use
        if layout_path is not None:  # claim the sidecar's name first: it is what makes a partial file someone's
            os.close(create_exclusive(layout_path, replace_stale=overwrite))
        try:
            self._fd = create_exclusive(self.path, replace_stale=True)
        except BaseException:
            if layout_path is not None:
                os.unlink(layout_path)
            raise
        try:
            dfd = None if direct is False else open_direct(self._fd, self.path)
            if dfd is None and direct:
                raise OSError(errno.EINVAL, f"{self.path}: this file system refuses direct I/O (O_DIRECT)")
            self._in_memory = memory_backed(self._fd)  # tmpfs: one I/O thread, no reservation (see `_allocate`)
            if io_threads is None:
                io_threads = 1 if self._in_memory else 2
            self._out = BufferedWriter(self._fd) if dfd is None else DirectWriter(dfd, self._fd, threads=io_threads)
            self.align = int(align) if align is not None else (BLOCK if dfd is not None else ALIGN)
            self._collapse = _collapsible(self._fd)
            if open_ended:
                self._reserve(members)
            self._placements = layout(members, align=self.align)
            self._allocate()
            self._write_layout()  # also makes both directory entries durable
        except BaseException:
            self.abort()
            raise
        faults.point("create")

    def _allocate(self) -> None:
        """Reserve the disk blocks of every member's capacity (and the tail) up front.

        A full disk fails here, before any step is recorded. Buffered writes into allocated
        blocks ran about 1.5x faster than extending the file on every write; direct writes run
        at the same rate either way (`benchmarks/bench_prealloc.py`: 4 GB at N=4096, 1.00x), so
        with direct I/O the reservation is kept for the early error. In memory (tmpfs) a reservation
        zeroes the memory, as costly as writing it (0.45 s of a 1.2 s recording of 2 GB into
        /dev/shm): there the free space is checked and only the tail's room reserved (so a disk that
        fills up still leaves `recover` room to finish the file). Filesystems without
        fallocate are fine: the file then grows as it is written. An open-ended file allocates
        the rows it was asked for, not its whole (sparse) reservation.
        """
        if self._initial:
            ranges = [(p.header_offset, p.data_offset + self._initial.get(n, p.capacity) * self.members[n].row_bytes)
                      for n, p in self._placements.items()]
            ranges.append((self._end(), self._end() + _TAIL_RESERVE))
        else:
            ranges = [(0, self._end() + _TAIL_RESERVE)]
        if self._in_memory:  # reserving zeroes the memory first: check the room, reserve the tail's only
            st = os.fstatvfs(self._fd)
            total = sum(b - a for a, b in ranges)
            if total > st.f_bavail * st.f_frsize:
                raise OSError(errno.ENOSPC, f"{self.path}: no space left for {total / 1e9:.2f} GB of rollout")
            ranges = [(self._end(), self._end() + _TAIL_RESERVE)]  # where finishing (and `recover` on a full disk) writes
        for start, end in ranges:
            try:
                os.posix_fallocate(self._fd, start, max(end - start, 1))
            except (AttributeError, OSError) as exc:
                if getattr(exc, "errno", None) == errno.ENOSPC:
                    total = sum(b - a for a, b in ranges)
                    raise OSError(errno.ENOSPC, f"{self.path}: no space left for {total / 1e9:.2f} GB of rollout") from None

    def _reserve(self, members: Sequence[MemberSpec]) -> None:
        """Open-ended: give every fixed member room for as many rows as the file system's free space
        holds (sparse: nothing is allocated past the rows asked for), so no member moves while rows
        are appended; see "Recordings of unknown length". Where the file system cannot leave holes,
        members keep their capacity and grow as before."""
        fixed = [m for m in members if m.name not in self.variable]
        step = sum(m.row_bytes for m in fixed)
        if not fixed or step <= 0 or not _sparse(self._fd):
            return
        st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        rows = min(st.f_bavail * st.f_frsize // step, _RESERVE_LIMIT // step)
        if rows >= _RESERVE_QUANTUM:  # whole multiples: the members' offsets modulo a block never depend on the free space
            rows -= rows % _RESERVE_QUANTUM
        if rows <= max(m.capacity for m in fixed):
            return
        first = max(fixed, key=lambda m: m.row_bytes)
        for m in fixed:
            self._initial[m.name] = m.capacity
            m.capacity = int(rows)
        if self._out.direct and not self._collapse:  # the others are copied once at finalize: read them from memory then
            self._out.keep_cached(frozenset(m.name for m in fixed if m is not first))

    def _end(self) -> int:
        """End of the space the placements reserve."""
        return max(p.data_offset + p.capacity * self.members[n].row_bytes for n, p in self._placements.items())

    @property
    def direct(self) -> bool:
        """Whether rows bypass the page cache (`rollrec._npz.direct_io`)."""
        return self._out is not None and self._out.direct

    @property
    def capacity(self) -> int:
        """Rows every member (but the variable ones) has room for."""
        fixed = [m.capacity for n, m in self.members.items() if n not in self.variable]
        return min(fixed or [m.capacity for m in self.members.values()])

    @property
    def committed_rows(self) -> int:
        """Rows the sidecar names as on disk."""
        return self._committed

    def set_recovery_info(self, info: Mapping) -> None:
        """Replace the JSON kept in the sidecar for `rollrec.recover` (written at the next commit).

        Serialised here, on the caller's thread, so the writer thread never reads a dict another
        thread is changing. Raises TypeError for values JSON cannot hold.
        """
        self._info_json = json.dumps(dict(info))

    # ---- rows -------------------------------------------------------------------------------
    def append(self, name: str, rows: np.ndarray, *, wait: bool = True) -> None:
        """Write ``rows`` (``[n, *row_shape]``) after the rows already written; their CRC is taken here.

        With ``wait=False`` the writes may still be in flight when this returns: ``rows`` must not
        change until `drain` (or `snapshot`) returns. Past the reserved capacity the file grows
        (`grow`, doubling), which copies data once.
        """
        m = self.members[name]
        if np.dtype(rows.dtype) != np.dtype(m.dtype) or tuple(rows.shape[1:]) != tuple(m.row_shape):
            # Other bytes per row would be written over the next rows and members, silently.
            raise ValueError(
                f"{name!r}: expected rows [n, {', '.join(map(str, m.row_shape))}] {np.dtype(m.dtype)}, "
                f"got {list(rows.shape)} {rows.dtype}"
            )
        n = rows.shape[0]
        if self.rows[name] + n > m.capacity:
            if name in self.variable:
                self._grow_member(name, max(2 * m.capacity, self.rows[name] + n, 16))
            else:
                self.grow(max(2 * m.capacity, self.rows[name] + n))
        if rows.nbytes == 0:  # e.g. zero reward terms: nothing to write, rows still count
            self.rows[name] += n
            return
        data = np.ascontiguousarray(rows).reshape(-1).view(np.uint8)
        offset = self._placements[name].data_offset + self.rows[name] * m.row_bytes
        self._out.write(name, offset, data)
        self.crc[name] = _crc32(memoryview(data), self.crc[name])  # while the write is in flight
        self.rows[name] += n
        if wait:
            self.drain()

    def drain(self) -> None:
        """Wait until every row appended has been written; raises the error of a failed write."""
        self._out.drain()

    def fence(self) -> int:
        """A mark of the rows appended so far: `wait_fence` waits until they are written."""
        return self._out.fence()

    def wait_fence(self, fence: int) -> None:
        """Wait until every row appended before ``fence`` was taken has been written (rows appended
        later may still be in flight); raises the error of a failed write. May run on another
        thread than `append`."""
        self._out.wait_fence(fence)

    def snapshot(self, *, wait: bool = True) -> tuple[int, dict[str, int], dict[str, int]]:
        """``(rows, CRC-32 per member, rows of each variable member)`` of what is appended now,
        for `commit_snapshot`.

        Waits for the writes in flight first, unless ``wait=False``: then the caller must
        `wait_fence` on a `fence` taken with it before committing it. Every member but the
        variable ones must hold the same number of rows.
        """
        if wait:
            self.drain()
        rows = {n for name, n in self.rows.items() if name not in self.variable}
        if len(rows) > 1:
            raise ValueError(f"members hold different row counts: {self.rows}")
        return rows.pop() if rows else 0, dict(self.crc), {name: self.rows[name] for name in self.variable}

    def commit(self, rows: int) -> None:
        """Make the first ``rows`` rows of every member (the variable ones: the rows they hold)
        durable, then name them in the sidecar.

        Every member but the variable ones must hold exactly ``rows`` rows. Waits for the writes in
        flight first.
        """
        self.drain()
        short = {name: n for name, n in self.rows.items() if n != rows and name not in self.variable}
        if short:
            raise ValueError(f"commit({rows}): members hold other row counts: {short}")
        self.commit_snapshot(rows, dict(self.crc), {name: self.rows[name] for name in self.variable})

    def commit_snapshot(self, rows: int, crc: Mapping[str, int], variable_rows: Mapping[str, int] | None = None) -> None:
        """`commit` what `snapshot` returned; may run on another thread than `append` and `grow`.

        The rows may have moved since (a `grow` copies every written row before it switches the
        sidecar); the sidecar written here names the placements current at that moment.
        """
        crc = dict(crc)
        var = dict(variable_rows or dict.fromkeys(self.variable, 0))
        if self.layout_path is not None:
            self._sync()
            faults.point("commit.synced")
        with self._lock:
            self._write_layout(committed=(rows, crc, var))
            self._committed, self._committed_crc, self._committed_variable = rows, crc, var  # once the sidecar says so
        faults.point("commit.named")

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` rows per member (see "Data never moves under the sidecar")."""
        if capacity <= self.capacity:
            return
        self._relayout({n: m.capacity if n in self.variable else max(m.capacity, capacity) for n, m in self.members.items()})

    def _relayout(self, caps: Mapping[str, int]) -> None:
        """Give every member the capacity ``caps`` names: the first grows in place, the others are
        copied past the end of the file and of the first's new rows (see `grow`)."""
        self.drain()  # the copies below read rows that may still be in flight
        old = dict(self._placements)
        first, *rest = self._in_file_order()
        new = {first.name: Placement(old[first.name].header_offset, old[first.name].data_offset, caps[first.name])}
        first_end = new[first.name].data_offset + caps[first.name] * first.row_bytes
        old_end = self._end()
        start = align_up(max(old_end, first_end), self.align)
        new.update(layout(rest, caps, start=start, align=self.align, ordered=True))
        end = max(p.data_offset + p.capacity * self.members[n].row_bytes for n, p in new.items())
        try:  # best effort: the copies below allocate what they write anyway
            os.posix_fallocate(self._fd, old_end, end - old_end + _TAIL_RESERVE)
        except (AttributeError, OSError):
            pass
        for m in rest:
            self._copy(old[m.name].data_offset, new[m.name].data_offset, self.rows[m.name] * m.row_bytes)
            faults.point("grow.copied")
        if self.layout_path is not None:
            self._sync()
            faults.point("grow.synced")
        self._switch(new)
        for m in self.members.values():
            m.capacity = caps[m.name]
        faults.point("grow.switched")
        for m in rest:  # what the first member does not grow into goes back to the disk
            p = old[m.name]
            lo, hi = max(p.header_offset, first_end), p.data_offset + p.capacity * m.row_bytes
            punch_hole(self._fd, lo, hi - lo)
        faults.point("grow.punched")

    def _grow_member(self, name: str, capacity: int) -> None:
        """Give variable member ``name`` room for ``capacity`` rows by moving it alone past the end
        of the file (copy, sync, switch, punch: see "Data never moves under the sidecar"). The
        member at byte 0 cannot move: it grows in place and the others move (`grow`'s way)."""
        m = self.members[name]
        self.drain()  # the copy below reads rows that may still be in flight
        if self._in_file_order()[0].name == name:
            self._relayout({n: capacity if n == name else s.capacity for n, s in self.members.items()})
            return
        old = self._placements[name]
        target = placement_at(m, align_up(self._end(), self.align), capacity, self.align)
        try:  # best effort, as in `grow`
            os.posix_fallocate(self._fd, target.header_offset, target.data_offset - target.header_offset
                               + capacity * m.row_bytes + _TAIL_RESERVE)
        except (AttributeError, OSError):
            pass
        self._copy(old.data_offset, target.data_offset, self.rows[name] * m.row_bytes)
        faults.point("grow.copied")
        if self.layout_path is not None:
            self._sync()
            faults.point("grow.synced")
        self._switch({name: target})
        m.capacity = capacity
        faults.point("grow.switched")
        punch_hole(self._fd, old.header_offset, old.data_offset + old.capacity * m.row_bytes - old.header_offset)
        faults.point("grow.punched")

    def _in_file_order(self) -> list[MemberSpec]:
        return sorted(self.members.values(), key=lambda m: self._placements[m.name].header_offset)

    def _switch(self, placements: Mapping[str, Placement]) -> None:
        """Name ``placements`` (some or all members) in the sidecar, then use them."""
        new = {**self._placements, **placements}
        with self._lock:
            self._write_layout(placements=new)
            self._placements = new  # only once the sidecar says so

    # ---- finishing --------------------------------------------------------------------------
    def finalize(self, small: Mapping[str, np.ndarray], num_rows: int | None = None) -> None:
        """Complete the archive in place with ``num_rows`` rows per member (each variable member:
        the rows it holds) and ``small`` after them.

        See "Data never moves under the sidecar". Large holes are closed by sliding the members
        after the first down (`_close_holes`); the file is then synced and stays open.
        """
        self.drain()
        if num_rows is None:
            num_rows = min((n for name, n in self.rows.items() if name not in self.variable), default=0)
        for name, n in self.rows.items():
            if n < num_rows and name not in self.variable:
                raise ValueError(f"{name!r} has {n} rows, fewer than the {num_rows} being finalised")
        rows = self._final_rows(num_rows)
        payloads = [(name, _npy_payload(name, arr)) for name, arr in small.items()]
        if self.layout_path is not None and num_rows < self._committed:
            self._uncommit(num_rows)  # the rows past num_rows are about to be given back
        crcs = {}
        for name, m in self.members.items():
            crcs[name] = self.crc[name] if rows[name] == self.rows[name] else (
                self._committed_crc[name] if num_rows == self._committed
                else self._crc_of(self._placements[name].data_offset, rows[name] * m.row_bytes)
            )
        self._punch_unused(rows)  # first: on a full disk this is the space the steps below use
        faults.point("finalize.punched")
        if not self._collapse_holes(rows) and self._holes(rows) > max(_COMPACT_MIN_HOLES, self._used(rows) * _COMPACT_MIN_FRACTION):
            self._close_holes(rows)
        self._place_headers(rows)
        entries = []
        for name, m in self.members.items():
            p = self._placements[name]
            npy = npy_header(m.dtype, (rows[name], *m.row_shape), NPY_HEADER_BYTES)
            nbytes = rows[name] * m.row_bytes
            crc = zip_records.crc_with_prefix(npy, crcs[name], nbytes)
            local = zip_records.local_header(
                (name + ".npy").encode(), crc, len(npy) + nbytes, p.data_offset - p.header_offset - len(npy), self._now
            )
            os.pwrite(self._fd, local + npy, p.header_offset)
            entries.append(((name + ".npy").encode(), crc, len(npy) + nbytes, p.header_offset))
            faults.point("finalize.header")
        last = self._in_file_order()[-1]
        tail = self._rows_end(last, rows[last.name])
        offset = tail
        blob = bytearray()
        for name, (npy, data) in payloads:
            name_b = (name + ".npy").encode()
            payload = npy + data
            header_len = zip_records.local_header_len(name_b, offset, len(npy), self.align)
            crc = zlib.crc32(payload)
            blob += zip_records.local_header(name_b, crc, len(payload), header_len, self._now) + payload
            entries.append((name_b, crc, len(payload), offset))
            offset += header_len + len(payload)
        blob += zip_records.central_directory(entries, offset, self._now)
        _pwrite_all(self._fd, bytes(blob), tail)
        faults.point("finalize.tail")
        self.file_size = tail + len(blob)
        os.ftruncate(self._fd, self.file_size)
        faults.point("finalize.truncated")
        self._sync()
        faults.point("finalize.synced")

    def _final_rows(self, num_rows: int) -> dict[str, int]:
        """Rows each member keeps when finalised with ``num_rows``: the variable ones keep theirs."""
        return {name: self.rows[name] if name in self.variable else num_rows for name in self.members}

    def _rows_end(self, m: MemberSpec, rows: int) -> int:
        return self._placements[m.name].data_offset + rows * m.row_bytes

    def _punch_unused(self, rows: Mapping[str, int]) -> None:
        """Give back every byte after each member's first ``rows[name]`` rows up to the next member."""
        ordered = self._in_file_order()
        file_end = max(os.fstat(self._fd).st_size, self._end())
        for i, m in enumerate(ordered):
            start = self._rows_end(m, rows[m.name])
            stop = self._placements[ordered[i + 1].name].header_offset if i + 1 < len(ordered) else file_end
            punch_hole(self._fd, start, stop - start)

    def _used(self, rows: Mapping[str, int]) -> int:
        """Bytes of headers and rows (what a file without holes would hold, less the tail)."""
        return sum(self._rows_end(m, rows[m.name]) - self._placements[m.name].header_offset for m in self.members.values())

    def _holes(self, rows: Mapping[str, int]) -> int:
        """Bytes between the members' rows (what `_close_holes` could give back)."""
        last = self._in_file_order()[-1]
        return self._rows_end(last, rows[last.name]) - self._used(rows)

    def _collapse_holes(self, rows: Mapping[str, int]) -> bool:
        """Remove the holes between the members' rows from the file (``fallocate(COLLAPSE_RANGE)``):
        the members after each hole move down by its length and no byte is copied. False where
        the file system cannot (nothing changed: the caller copies instead, `_close_holes`).

        Before each member, the range from the first block boundary after the previous member's
        kept rows up to the block boundary that leaves its data where a one-shot write of these
        rows puts it (with direct I/O exactly there; else within one block) goes: it holds no
        row the sidecar names (committed rows past the kept ones were uncommitted first), maybe
        the member's old local header, which is placed anew right after the previous rows.
        A removal the file system refuses midway ends the plan where it stands (the sidecar then
        names where the members are) and returns False: the caller copies the rest.
        The sidecar first names the ranges and the file's size (see `rollrec._npz.sidecar`); the
        ranges go highest first; the file is synced and the sidecar switched to the new places.
        All under the sidecar's lock: a concurrent `commit_snapshot` writes before the plan or
        after the switch.
        """
        if self._collapse is False:
            return False
        self.drain()
        unit = math.lcm(block_size(self._fd), self.align)
        size = os.fstat(self._fd).st_size
        ordered = self._in_file_order()
        ranges: list[tuple[int, int]] = []
        for prev, m in itertools.pairwise(ordered):
            prev_end = self._rows_end(prev, rows[prev.name])
            data = self._placements[m.name].data_offset
            start = align_up(prev_end, unit)
            one_shot = placement_at(m, prev_end, 0, self.align).data_offset
            length = (data - max(start, one_shot)) // unit * unit
            if length > 0 and start + length < size:  # a range must end before the end of the file
                ranges.append((start, length))
        if not ranges:
            return True
        ranges.sort(reverse=True)  # highest first: removing one never moves the start of another
        moved: dict[str, Placement] = {}
        prev_end = None
        for m in ordered:  # each header right after the previous member's rows (the first stays at byte 0)
            data = after_collapse(self._placements[m.name].data_offset, ranges)
            header = self._placements[m.name].header_offset if prev_end is None else header_before(m, data, prev_end)
            moved[m.name] = Placement(header, data, rows[m.name])
            prev_end = data + rows[m.name] * m.row_bytes
        with self._lock:
            self._write_layout(collapse=(size, ranges))
            faults.point("compact.planned")
            for i, (start, length) in enumerate(ranges):
                try:
                    removed = collapse_range(self._fd, start, length)
                except OSError:  # refused for a reason of its own (EPERM, an extent size hint, ...): copy instead
                    removed = False
                if not removed:  # the plan goes before the file's size changes; the caller copies what is left
                    self._collapse = False
                    done = ranges[:i]
                    now = {name: Placement(after_collapse(p.header_offset, done), after_collapse(p.data_offset, done),
                                           p.capacity) for name, p in self._placements.items()}
                    if done:
                        self._sync()
                    self._write_layout(placements=now)
                    self._placements = now
                    return False
                self._collapse = True
                faults.point("compact.collapsed")
            self._sync()
            self._write_layout(placements=moved)
            self._placements = moved
        for name, m in self.members.items():
            m.capacity = rows[name]
        faults.point("compact.switched")
        return True

    def _place_headers(self, rows: Mapping[str, int]) -> None:
        """Give each member a local header that fits between the previous member's kept rows and
        its data (`rollrec._npz.layout.header_fits`): after a recovery from a kill amid
        `_collapse_holes`, a removed range may have held one. Headers are not what the sidecar
        protects (it names rows), so this changes no sidecar."""
        prev_end = None
        for m in self._in_file_order():
            p = self._placements[m.name]
            if prev_end is not None and not header_fits(m, p, prev_end):
                self._placements[m.name] = Placement(header_before(m, p.data_offset, prev_end), p.data_offset, p.capacity)
            prev_end = self._rows_end(m, rows[m.name])

    def _close_holes(self, rows: Mapping[str, int]) -> None:
        """Slide the members after the first down onto the rows before them.

        Moves go in batches: the rows of every member of a batch are copied into space nothing
        references (no byte of another member's rows, nor of the batch's other targets), then one
        sync, one switch of the sidecar to all the new places, and the old places are punched. A
        member whose target would overlap rows still referenced ends the batch (it is planned
        again once the batch has moved); one whose new place would overlap its own rows moves past
        the end of the file first and slides down in the next pass; gaps under `_MIN_SLIDE` stay
        (they cost no disk).
        """
        for _ in range(3):  # a member moves at most twice: past the end, then down
            moved = False
            prev_end = None
            batch: dict[str, Placement] = {}
            for m in self._in_file_order():
                n = rows[m.name]
                if prev_end is None:  # the first member stays at byte 0
                    prev_end = self._rows_end(m, n)
                    continue
                cur = self._placements[m.name]
                target = placement_at(m, prev_end, n, self.align)
                gap = cur.header_offset - target.header_offset
                if gap <= 0 or gap < _MIN_SLIDE:
                    prev_end = self._rows_end(m, n)
                    continue
                if target.data_offset + n * m.row_bytes > cur.data_offset:  # would overlap its own rows
                    beyond = max([self._end()] + [p.data_offset + rows[k] * self.members[k].row_bytes for k, p in batch.items()])
                    target = placement_at(m, align_up(beyond, self.align), n, self.align)
                if self._referenced_overlap(target, m, n, rows, batch):
                    self._move_batch(batch, rows)  # what it overlaps moves first; then this one, from its new place
                    batch = {}
                    if self._referenced_overlap(target, m, n, rows, batch):
                        prev_end = self._rows_end(m, n)
                        continue
                batch[m.name] = target
                moved = True
                prev_end = target.data_offset + n * m.row_bytes if target.header_offset < cur.header_offset else prev_end
            self._move_batch(batch, rows)
            if not moved:
                return

    def _referenced_overlap(self, target: Placement, m: MemberSpec, n: int, rows: Mapping[str, int],
                            batch: Mapping[str, Placement]) -> bool:
        """Whether ``target`` (``n`` rows of ``m``, with its headers) overlaps the rows of another
        member where it is now, or a target already in ``batch``."""
        lo, hi = target.header_offset, target.data_offset + n * m.row_bytes
        spans = [(k, p) for k, p in self._placements.items() if k != m.name] + list(batch.items())
        for name, p in spans:
            a, b = p.data_offset, p.data_offset + rows[name] * self.members[name].row_bytes
            if a < b and a < hi and lo < b:
                return True
        return False

    def _move_batch(self, batch: Mapping[str, Placement], rows: Mapping[str, int]) -> None:
        """Copy each member of ``batch`` to its new place, sync once, switch the sidecar, punch the old places."""
        if not batch:
            return
        old = {name: self._placements[name] for name in batch}
        for name, target in batch.items():
            self._copy(old[name].data_offset, target.data_offset, rows[name] * self.members[name].row_bytes)
            faults.point("compact.copied")
        if self.layout_path is not None:
            self._sync()
        self._switch(dict(batch))
        faults.point("compact.switched")
        for name, p in old.items():
            punch_hole(self._fd, p.data_offset, rows[name] * self.members[name].row_bytes)

    def _copy(self, src: int, dst: int, nbytes: int) -> None:
        """Copy ``nbytes`` of this file from ``src`` to ``dst`` (ranges that do not overlap; ``dst``
        is space nothing references) and wait until the copy is written (not synced).

        A clone of the blocks where the file system shares them (XFS, btrfs: nothing is copied);
        else reads into aligned buffers and writes with the rows' own writer: with direct I/O,
        direct reads and writes of whole blocks, several in flight (the last partial block with
        ordinary I/O, so no padding lands past ``dst + nbytes``); else ordinary reads and writes
        behind a bounded writeback window. The kernel's own copy (``copy_file_range``, through the
        page cache) ran at 0.2 GB/s here, against 1.5-2 GB/s for direct writes.
        """
        if nbytes <= 0:
            return
        self.drain()
        aligned = nbytes // BLOCK * BLOCK if src % BLOCK == dst % BLOCK == 0 else 0
        if aligned and clone_range(self._fd, src, dst, aligned):
            done = aligned
        else:
            done = self._copy_through(src, dst, aligned if self.direct else nbytes)
        if done < nbytes:  # the rest: ordinary reads and writes
            copy_range(self._fd, src + done, self._fd, dst + done, nbytes - done, written=WritebackWindow(self._fd).wrote)

    def _copy_through(self, src: int, dst: int, nbytes: int) -> int:
        """Copy the first ``nbytes`` (whole blocks with direct I/O) with reads into aligned buffers and
        the rows' own writer (direct: several writes in flight); returns the bytes copied."""
        direct_bytes = nbytes
        if direct_bytes <= 0:
            return 0
        out = self._out
        buffers: list[tuple[np.ndarray, int]] = []  # (buffer, fence of its write)
        if not self._copy_buffers:  # made once per writer, touched now: page faults stay out of the copies
            self._copy_buffers = [aligned_array(_COPY_CHUNK) for _ in range(_COPY_BUFFERS)]
            for buf in self._copy_buffers:
                buf[::4096] = 0
        free = list(self._copy_buffers)
        done = 0
        try:
            while done < direct_bytes:
                if not free:
                    buf, fence = buffers.pop(0)
                    out.wait_fence(fence)
                    free.append(buf)
                buf = free.pop()
                n = min(_COPY_CHUNK, direct_bytes - done)
                got = os.preadv(self._fd, [memoryview(buf)[:n]], src + done)  # from the page cache when kept there
                if got != n:
                    raise OSError(errno.EIO, f"{self.path}: unexpected end of file at byte {src + done + got} while copying")
                out.write("\0copy", dst + done, buf[:n])
                buffers.append((buf, out.fence()))
                done += n
        finally:
            out.drain()
        return done

    def close(self) -> None:
        """Wait for the writes in flight, release the I/O threads and descriptors; the files stay
        (see `abort`). Idempotent."""
        if self._out is not None:
            self._out.close()
        self._copy_buffers = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def abort(self) -> None:
        """Close and delete the partial file, then its sidecar (in that order: see `rollrec.recover`)."""
        self.close()
        paths = [self.path] if self.layout_path is None else [self.path, self.layout_path, self.layout_path + ".tmp"]
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)

    def _crc_of(self, offset: int, nbytes: int) -> int:
        crc, done = 0, 0
        while done < nbytes:
            chunk = os.pread(self._fd, min(_READ_CHUNK, nbytes - done), offset + done)
            if not chunk:
                raise OSError(errno.EIO, f"{self.path}: unexpected end of file at byte {offset + done}")
            crc = _crc32(chunk, crc)
            done += len(chunk)
        return crc

    # ---- the sidecar ------------------------------------------------------------------------
    def _uncommit(self, rows: int) -> None:
        """Lower the committed rows to ``rows`` before their space is reused (variable members keep theirs)."""
        crc = {
            name: self._committed_crc[name] if name in self.variable
            else self._crc_of(self._placements[name].data_offset, rows * m.row_bytes)
            for name, m in self.members.items()
        }
        with self._lock:
            self._write_layout(committed=(rows, crc, self._committed_variable))
            self._committed, self._committed_crc = rows, crc

    def _write_layout(
        self,
        *,
        placements: Mapping[str, Placement] | None = None,
        committed: tuple[int, dict[str, int], dict[str, int]] | None = None,
        collapse: tuple[int, list[tuple[int, int]]] | None = None,
    ) -> None:
        """Replace the sidecar with the current state, or with the given parts of the next one
        (``collapse``: the collapses about to run, see `_collapse_holes`).

        Callers hold ``self._lock`` once threads share the writer (see `commit_snapshot`).
        """
        if self.layout_path is None:
            return
        rows, crc, var = committed or (self._committed, self._committed_crc, self._committed_variable)
        text = sidecar.encode(
            data_path=os.path.basename(self.path), align=self.align, created=self._now, members=list(self.members.values()),
            placements=placements or self._placements, committed_rows=rows, committed_crc=crc, info_json=self._info_json,
            variable_rows=var, collapse=collapse,
        )
        replace_small_file(self.layout_path, text, sync=self.durable)

    def _sync(self) -> None:
        if self.durable:
            fdatasync(self._fd)

    @classmethod
    def reopen(cls, path: str, layout_path: str) -> tuple[NpzStreamWriter, dict]:
        """Reopen a partial file described by its sidecar, as far as its committed rows.

        Reads the committed rows once to check them against the CRCs in the sidecar. Raises
        `RolloutFormatError` for a sidecar it cannot use or rows that do not match.
        """
        doc = sidecar.read(layout_path)
        state = sidecar.decode(doc, layout_path)
        self = cls.__new__(cls)
        self.path, self.layout_path, self.durable = path, layout_path, True
        self._lock = threading.Lock()
        self.align, self._now = state.align, state.created
        self.members = {m.name: m for m in state.members}
        self._info_json = json.dumps(doc.get("info", {}))
        rows = self._committed = state.committed_rows
        self._committed_crc = state.committed_crc
        self.variable = frozenset(state.variable_rows)
        self._committed_variable = dict(state.variable_rows)
        counts = {name: state.variable_rows.get(name, rows) for name in self.members}
        self.file_size = 0
        self._fd = os.open(path, os.O_RDWR | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        self._out = BufferedWriter(self._fd)  # recovery writes headers and copies, never rows
        self._initial, self._copy_buffers, self._collapse = {}, [], None
        try:
            size = os.fstat(self._fd).st_size
            placements = state.placements_at(size)
            if placements is None:
                raise RolloutFormatError(
                    f"{path}: its size ({size} bytes) matches no step of the compaction its sidecar names "
                    f"(from {state.collapse_size} bytes); it changed after the writer stopped"
                )
            self._placements = placements
            for name, m in self.members.items():
                end = self._placements[name].data_offset + counts[name] * m.row_bytes
                if counts[name] and m.row_bytes and end > size:
                    raise RolloutFormatError(
                        f"{path}: shorter ({size} bytes) than its {counts[name]} committed rows ({name!r} ends at byte {end})"
                    )
            self.rows = counts
            self.crc = {}
            for name, m in self.members.items():
                crc = self._crc_of(self._placements[name].data_offset, counts[name] * m.row_bytes)
                if crc != self._committed_crc[name]:
                    raise RolloutFormatError(
                        f"{path}: member {name!r}: the {counts[name]} committed rows do not match the CRC-32 recorded when "
                        "they were written (the disk lost or changed data, e.g. in a power loss); refusing to "
                        "recover them as if they were intact"
                    )
                self.crc[name] = crc
            if state.collapse_size is not None:  # killed while removing holes: name where the members are now
                self._write_layout()
        except BaseException:
            self.close()
            raise
        return self, doc


def _sparse(fd: int) -> bool:
    """Whether the file at ``fd`` (new, empty) can hold a hole: extended by 64 MiB it takes no blocks."""
    try:
        os.ftruncate(fd, 64 << 20)
        blocks = getattr(os.fstat(fd), "st_blocks", None)
        return blocks is not None and blocks * 512 < (1 << 20)
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)


def _collapsible(fd: int) -> bool:
    """Whether the file at ``fd`` (new, empty) takes ``fallocate(COLLAPSE_RANGE)``: four blocks
    lose the second."""
    unit = block_size(fd)
    try:
        os.ftruncate(fd, 4 * unit)
        return collapse_range(fd, unit, unit) and os.fstat(fd).st_size == 3 * unit
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)


def _npy_payload(name: str, arr: np.ndarray) -> tuple[bytes, bytes]:
    """``(npy header, data)`` of a small member."""
    arr = np.asarray(arr, order="C")
    if arr.dtype.hasobject:
        raise ValueError(f"{name!r}: object arrays are never written")
    return npy_header(arr.dtype, arr.shape), arr.tobytes()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
