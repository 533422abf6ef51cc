"""Follow one recording in progress through its files, trusting only what its sidecar names.

A recorder writes ``run.npz.partial`` in place and names the rows it has committed, and where
every member lies, in the sidecar ``run.npz.partial.json`` (`rollrec._npz.sidecar`; the crash
protocol is `rollrec.io.partial`'s). A reader in another process (or thread) follows it here:

- **What it reads.** Only rows the sidecar names as committed, at the offsets it names: rows
  written but not yet committed are never shown. The reader opens every file read-only, takes no
  lock and writes nothing, so the writer never waits for it.
- **Why a read can be trusted.** The writer never writes a byte the sidecar references: a move
  (`grow`, or sliding members down when it finishes) copies, syncs, switches the sidecar, and
  only then punches the old place (it then reads as zeros). Where the file system removes the
  holes between members in place instead (``COLLAPSE_RANGE``), the sidecar names the ranges first
  and the data file's size tells which are gone (`RecordingFiles.read_sidecar`). Placements never return to an
  earlier place, and the committed count only goes down when finishing, just before the rows
  past it are given back. So rows ``[0, R)`` of a member read at placement P are the recorded
  rows if a sidecar read *after* the read still names P with at least R committed rows: it
  named them the whole time (`RecordingFiles.confirm`). Otherwise the read is repeated at the
  placement that sidecar names.
- **A sidecar caught mid-replace.** It is replaced by an atomic rename (`replace_small_file`),
  so a read sees the old or the new one; an empty sidecar is a recording that has claimed its
  names and not yet laid its file out (`LiveStatus.WAITING`).
- **Finishing.** The finished file is renamed into place before the sidecar is removed, so a
  missing sidecar means the final file is there (`LiveStatus.FINISHED`: it is opened and read
  instead, through the same object), unless the recording was deleted (`LiveStatus.GONE`). The
  final file is taken as this recording's when it is the same inode as the data file, or was
  renamed into place (ctime) after the recording began.
- **CRCs, when asked** (`check_crc=True`): rows are exposed only once their CRC-32, continued
  from the rows checked before, matches the CRC the sidecar recorded for them
  (`RecordingFiles.verify`).
- **Is the writer alive?** Asked in one place (`RecordingFiles.writer_alive`). A recording whose
  sidecar names its owner holds the lease of `rollrec.io.lease` while it records: it is alive
  exactly while a process holds that lease as ``"recording"`` (queried with ``F_OFD_GETLK``, so
  the reader takes no lock and never makes the writer wait; across hosts where the file system
  shares locks, e.g. NFS v4). A recording being recovered, or whose lease nobody holds, stopped
  (`LiveStatus.STOPPED`: ``rollrec recover`` finishes it). A sidecar that names no owner (an
  older rollrec's, or a stream written outside `PartialRecording`) falls back to what the files
  show: a sidecar that changed within `ACTIVE_S` belongs to a writer that commits; otherwise one
  on this host that holds the data file open for writing (``/proc/<pid>/fd``) is alive.
"""

from __future__ import annotations

import enum
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollrec._npz import sidecar
from rollrec._npz.archive import NpzArchive
from rollrec._npz.layout import MemberSpec, Placement
from rollrec.format.errors import RolloutFormatError
from rollrec.io.lease import Holder, Owner
from rollrec.io.partial import PartialRecording
from rollrec.io.reader import Rollout, open_file

try:  # the writer's CRC-32 (same values as zlib's), ~5x faster
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - platforms without isal wheels
    _crc32 = zlib.crc32

#: Seconds after the sidecar last changed during which its writer counts as alive whatever else
#: is known (it commits at least every flush interval, 1 s by default, while it records).
ACTIVE_S = 3.0
#: Seconds between two looks for the writer's process (``/proc``), when the sidecar is quiet.
PROCESS_CHECK_S = 1.0
_READ_CHUNK = 16 << 20
_COLLAPSE_WAIT_S = 0.002  # between two looks at a sidecar whose compaction just ended
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class LiveStatus(enum.Enum):
    """Where a followed recording stands (`RecordingFiles.poll`)."""

    #: The sidecar is claimed (or absent) and no file laid out yet, or no step committed yet.
    WAITING = "waiting"
    #: A writer is committing steps (or holds the data file open for writing).
    RECORDING = "recording"
    #: No writer: the recording was killed or failed; ``rollrec recover`` finishes its committed steps.
    STOPPED = "stopped"
    #: The finished file is in place; it is read from now on.
    FINISHED = "finished"
    #: The files were removed without a finished file (an aborted recording), or another
    #: recording of the same path replaced them.
    GONE = "gone"


class RecordingFinished(Exception):
    """Raised inside a read that found the sidecar gone: the caller reads the final file instead."""


@dataclass(frozen=True)
class Committed:
    """One sidecar's word: where each member is and how many of its rows are committed."""

    rows: int  # committed rows of every member but the variable ones
    members: dict[str, MemberSpec]
    placements: dict[str, Placement]
    crc: dict[str, int]
    variable_rows: dict[str, int]
    info: dict[str, Any]
    created: float
    changed: float  # the sidecar's mtime (seconds)

    def rows_of(self, name: str) -> int:
        return self.variable_rows.get(name, self.rows)


@dataclass
class _Crc:
    rows: int = 0
    value: int = 0


@dataclass
class _Verified:
    """What `RecordingFiles.verify` has checked: the CRC-32 of each member's first rows."""

    members: dict[str, _Crc] = field(default_factory=dict)


class RecordingFiles:
    """The files of the recording of ``path`` (its final name, the ``.partial`` or the sidecar),
    followed read-only (see the module docstring). Thread-safe.

    `poll` reads the sidecar again and says where the recording stands; `committed` is the last
    sidecar read (None before one was); `confirm` is what a read asks after reading rows; `final`
    is the finished file once `poll` (or a read) found it. `close` releases the descriptors.
    """

    def __init__(self, path: str | os.PathLike, *, check_crc: bool = False):
        self.partial = PartialRecording.of(path)
        self.path = Path(self.partial.path)
        self.check_crc = check_crc
        self.committed: Committed | None = None
        self.final: Rollout | None = None
        self.final_archive: NpzArchive | None = None  # the finished file's members, for reads begun before it was
        self.status = LiveStatus.WAITING
        self.note = ""  # why the status is what it is, for people
        self._lock = threading.RLock()
        self._fd = -1
        self._fd_id: tuple[int, int] | None = None
        self._created: float | None = None
        self._verified = _Verified()
        self._verified_rows = 0  # rows (of every non-variable member) whose CRC matched
        self._last_process_check = -float("inf")
        self._writer_seen = False
        self.holder: Holder | None = None  # who held the lease at the last `poll` (issue 22's lease)
        self._closed = False

    # ---- the sidecar --------------------------------------------------------------------------
    def read_sidecar(self, retries: int = 100) -> Committed | None:
        """The sidecar's word now; None while it is absent or empty (not laid out yet).

        While the writer removes the holes between members (the sidecar names the ranges, see
        `rollrec._npz.sidecar`), the data file's size says where the members are: a member read
        at the place one size gives is confirmed by a later read giving the same place (a range
        removed before it in between moves it, and then its place differs). Raises
        `RolloutFormatError` for a sidecar that is not a rollrec one.
        """
        try:
            st = os.stat(self.partial.sidecar_path)
            if st.st_size == 0:
                return None
            doc = sidecar.read(self.partial.sidecar_path)
        except FileNotFoundError:
            return None
        state = sidecar.decode(doc, self.partial.sidecar_path)
        placements = state.placements
        if state.collapse_size is not None:  # the writer is removing the holes between members
            placements = state.placements_at(self._data_size())
            if placements is None:  # all removed and the file changed since: the next sidecar is on its way
                if retries == 0:
                    raise RolloutFormatError(f"{self.path}: the data file's size matches no step of the compaction "
                                             "its sidecar names")
                time.sleep(_COLLAPSE_WAIT_S)
                return self.read_sidecar(retries - 1)
        info = doc.get("info", {})
        return Committed(
            rows=state.committed_rows, members={m.name: m for m in state.members}, placements=placements,
            crc=state.committed_crc, variable_rows=state.variable_rows, info=info if isinstance(info, dict) else {},
            created=state.created, changed=st.st_mtime,
        )

    def _data_size(self) -> int:
        if self._fd >= 0:
            return os.fstat(self._fd).st_size
        try:
            return os.stat(self.partial.data_path).st_size
        except FileNotFoundError:
            return -1

    # ---- polling ------------------------------------------------------------------------------
    def poll(self) -> LiveStatus:
        """Read the sidecar again; update `committed`, `status`, `note` (and `final`); returns `status`."""
        with self._lock:
            if self._closed:
                raise ValueError(f"{self.path}: closed")
            if self.status in (LiveStatus.FINISHED, LiveStatus.GONE):
                return self.status
            try:
                now = self.read_sidecar()
            except RolloutFormatError:
                if self.committed is None:
                    raise
                return self.status  # a sidecar of another rollrec replaced it: keep what we know
            if now is None:
                return self._sidecar_missing()
            if self._created is not None and now.created != self._created:
                self._set(LiveStatus.GONE, "another recording of this path replaced the one followed; open it again")
                return self.status
            if self._fd < 0 and not self._open_data(now):
                return self.status
            if self.check_crc:
                now = self._verified_part(now)
            self.committed = now
            self._created = now.created
            if self.writer_alive(now):
                self._set(LiveStatus.RECORDING if now.rows > 0 else LiveStatus.WAITING, "")
            else:
                self._set(LiveStatus.STOPPED, self._stopped_note(now))
            return self.status

    def _set(self, status: LiveStatus, note: str) -> None:
        self.status, self.note = status, note

    def _open_data(self, now: Committed) -> bool:
        try:
            fd = os.open(self.partial.data_path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:  # being created, or removed before its sidecar (an abort)
            return False
        st = os.fstat(fd)
        self._fd, self._fd_id = fd, (st.st_dev, st.st_ino)
        self._created = now.created
        return True

    def _sidecar_missing(self) -> LiveStatus:
        """No sidecar: finished (the final file is this recording's), not started, or removed."""
        if self._final_is_ours():
            self._open_final()
            return self.status
        if self.committed is None:
            if os.path.exists(self.path) and self._created is None:
                self._open_final()  # nothing was followed: a finished file is just that
                return self.status
            self._set(LiveStatus.WAITING, "")
            return self.status
        self._set(LiveStatus.GONE, f"the recording's files were removed before it finished ({self.committed.rows} "
                  "committed steps are lost)")
        return self.status

    def _final_is_ours(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if self._fd_id is not None and (st.st_dev, st.st_ino) == self._fd_id:
            return True  # the data file itself, renamed (a file finished without compression)
        # renamed into place after the recording began (ctime: the coarse clock may lag time.time() by a tick)
        return self._created is not None and st.st_ctime >= self._created - 0.05

    def _open_final(self) -> None:
        try:
            self.final = open_file(self.path)
        except (OSError, RolloutFormatError) as exc:
            self._set(LiveStatus.GONE, f"the finished file cannot be read: {exc}")
            return
        self.final_archive = NpzArchive(os.fspath(self.path))
        if self.committed is not None and self.committed.rows > self.final.T:
            note = f"the finished file holds {self.final.T} steps, fewer than the {self.committed.rows} committed"
            self.final.close()
            self.final = None
            self.final_archive.close()
            self.final_archive = None
            self._set(LiveStatus.GONE, note)
            return
        self._set(LiveStatus.FINISHED, "")

    # ---- reads --------------------------------------------------------------------------------
    def fileno(self) -> int:
        """The data file's read-only descriptor (owned here)."""
        if self._fd < 0:
            raise ValueError(f"{self.partial.data_path}: not open")
        return self._fd

    def placement(self, name: str) -> Placement:
        """Where member ``name`` lies according to the last sidecar read."""
        with self._lock:
            return self.committed.placements[name]

    def confirm(self, name: str, used: Placement, rows: int) -> Placement | None:
        """After reading rows ``[0, rows)`` of ``name`` at ``used``: None when a sidecar read now
        still names them there (the read holds the recorded rows), else the member's current
        placement to read again at. Raises `RecordingFinished` when the sidecar is gone and the
        final file is this recording's, `RolloutFormatError` when the rows are no longer
        committed or the recording was removed."""
        with self._lock:
            now = self.read_sidecar()
            if now is None:
                if self._final_is_ours():
                    if self.final is None:
                        self._open_final()
                    if self.final is not None:
                        raise RecordingFinished()
                raise RolloutFormatError(f"{self.path}: the recording was removed while it was read")
            if now.created != self._created:
                raise RolloutFormatError(f"{self.path}: another recording replaced the one being read; open it again")
            if now.rows_of(name) < rows:
                raise RolloutFormatError(f"{self.path}: member {name!r}: rows {now.rows_of(name)}..{rows} are no longer "
                                         "committed (the recording is finishing with fewer steps)")
            current = now.placements[name]
            if self.committed is not None:  # keep the newest placements for the next reads
                self.committed = Committed(self.committed.rows, self.committed.members, now.placements,
                                           self.committed.crc, self.committed.variable_rows, self.committed.info,
                                           self.committed.created, self.committed.changed)
            return None if current == used else current

    # ---- CRCs ---------------------------------------------------------------------------------
    def verify(self) -> int:
        """Check the CRC-32 of the rows the sidecar names now, continuing from those checked
        before; returns the rows checked. `RolloutFormatError` naming the member that differs."""
        with self._lock:
            now = self.read_sidecar()
            if now is None or self._fd < 0:
                return self._verified_rows
            return self._verified_part(now).rows

    def _verified_part(self, now: Committed) -> Committed:
        """``now`` with only the rows whose CRC matched (all of them, or an error)."""
        for _ in range(8):
            try:
                for name, m in now.members.items():
                    self._check_member(name, m, now)
            except _Moved as moved:
                now = moved.now
                continue
            self._verified_rows = now.rows
            return now
        raise RolloutFormatError(f"{self.path}: the recording kept moving its rows while they were checked; try again")

    def _check_member(self, name: str, m: MemberSpec, now: Committed) -> None:
        state = self._verified.members.setdefault(name, _Crc())
        rows = now.rows_of(name)
        if rows < state.rows:
            raise RolloutFormatError(f"{self.path}: member {name!r} holds fewer committed rows than before")
        p = now.placements[name]
        crc, done, start = state.value, state.rows * m.row_bytes, state.rows * m.row_bytes
        end = rows * m.row_bytes
        while done < end:
            chunk = os.pread(self._fd, min(_READ_CHUNK, end - done), p.data_offset + done)
            if not chunk:
                raise RolloutFormatError(f"{self.partial.data_path}: shorter than its committed rows of {name!r}")
            crc = _crc32(chunk, crc)
            done += len(chunk)
        after = self.read_sidecar()
        if after is None or after.placements[name] != p:
            if after is None:
                raise RecordingFinished()
            raise _Moved(after)
        if crc != now.crc[name]:
            raise RolloutFormatError(
                f"{self.partial.data_path}: member {name!r}: the {rows} committed rows do not match the CRC-32 the "
                f"recorder wrote for them (bytes {start}..{end} of the member were checked last)")
        state.rows, state.value = rows, crc

    # ---- the writer ---------------------------------------------------------------------------
    def writer_alive(self, now: Committed) -> bool:
        """Whether a process records the followed recording now: the one question of liveness
        (see the module docstring). Takes no lock and writes nothing; called by `poll`."""
        if now.info.get("owner") is not None:  # its recorder took the lease (rollrec.io.lease)
            self.holder = self.partial.holder()
            return self.holder is not None and self.holder.role == "recording"
        self.holder = None
        if time.time() - now.changed < ACTIVE_S:
            return True
        t = time.monotonic()
        if t - self._last_process_check >= PROCESS_CHECK_S:
            self._last_process_check = t
            self._writer_seen = bool(writer_pids(self.partial.data_path))
        return self._writer_seen

    def _stopped_note(self, now: Committed) -> str:
        name = os.path.basename(self.partial.data_path)
        if self.holder is not None:  # a recovery holds the lease
            return (f"the recording stopped after {now.rows} committed steps and is "
                    f"{PartialRecording.describe_holder(self.holder)}")
        owner = Owner.from_json(now.info.get("owner"))
        who = f"its recorder ({owner.describe()}) no longer holds its lease" if owner is not None else \
            f"no process is writing {name} and its sidecar has not changed for {time.time() - now.changed:.0f} s"
        return (f"{who}: the recording was killed or failed after {now.rows} committed steps; "
                f"run `rollrec recover {self.path}` to finish them")

    def close(self) -> None:
        """Release the data file and the final file. Idempotent."""
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self.final is not None:
                self.final.close()
                self.final_archive.close()


class _Moved(Exception):
    def __init__(self, now: Committed):
        self.now = now


def writer_pids(path: str | os.PathLike) -> list[int] | None:
    """The ids of the processes on this host that hold ``path`` open for writing (Linux
    ``/proc``); None where that cannot be known. Processes of other users are not seen."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    if not os.path.isdir("/proc/self/fd"):
        return None
    want = (st.st_dev, st.st_ino)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fds = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fds)
        except OSError:
            continue
        for fd in names:
            try:
                s = os.stat(f"{fds}/{fd}")
            except OSError:
                continue
            if (s.st_dev, s.st_ino) == want and _open_for_writing(pid, fd):
                found.append(int(pid))
                break
    return found


def _open_for_writing(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE != os.O_RDONLY
    except OSError:
        return False
    return False


__all__ = ["ACTIVE_S", "Committed", "LiveStatus", "RecordingFiles", "RecordingFinished", "writer_pids"]
