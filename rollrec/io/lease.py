"""The lease: which process owns the files of a recording right now.

A process that records a rollout (or writes one in one go, or recovers one) holds an exclusive
advisory lock on ``<path>.partial.lock`` from before it creates the first partial file until it
has removed the last one. Everyone else asks before touching those files
(`rollrec.io.partial.PartialRecording`): a held lease means the files are someone's, so a second
recorder, ``overwrite=``, ``rollrec recover`` and another recovery refuse, and readers say "being
recorded (pid N on host H)".

Why a lock file beside the data, not a lock on the data file: the lease must exist before any
partial file is created (two recorders must never both claim the names) and last until the sidecar
is gone, while the data file is renamed to the final name or replaced by its deflated copy; the
lock file is the one name that lives exactly that long. It is removed by its holder, while still
locked; a process that locked a file that was unlinked meanwhile sees the path changed and
starts over, so the lock is always on the file the path names.

Why OFD locks (``fcntl(F_OFD_SETLK)``, Linux 3.15+), or ``flock`` elsewhere: both belong to the
open file description, so the recorder's other descriptors of the same files (its direct-I/O
one, a reader in the same process) never drop the lease, as any ``close`` drops POSIX record
locks; the kernel releases them when the process dies (SIGKILL, OOM), so a stale lease is simply
an unlocked file. An OFD lock can be *queried* (``F_OFD_GETLK``) without being taken: a reader
asking whether a recording is live takes no lock at all and can never make the writer wait.
With ``flock`` the query is a shared lock released at once; the holder takes its lock only once,
at the start, and retries for `ACQUIRE_RETRY_S` before it concludes the lease is held. A child
process forked by the holder closes its inherited copy at once (`os.register_at_fork`), so a
forked worker never keeps a dead recorder's lease alive.

File systems. Local ones (ext4, XFS, btrfs, tmpfs) and NFS with locking (v4, or v3 with lockd)
share these locks between every process that sees the file, across hosts on NFS. Where no lock
can be taken (NFS mounted ``nolock``, sshfs and other FUSE file systems without lock support:
``ENOLCK``, ``EOPNOTSUPP``, ``ENOSYS``), the lease falls back to the owner the sidecar names
(`Owner`: pid, host, start time, with ``"lease": false``): on the owner's host a recording is
live while that process runs (a reused pid is told apart by its start time); from another host
nothing can tell, so it counts as live and ``rollrec recover --force`` is needed. Where locks
are taken but not shared between hosts (Lustre mounted ``localflock``, NFS ``local_lock=all``), a
recording on another host looks stopped from here: recover it from its own host.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import struct
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, the owner fallback only
    fcntl = None  # type: ignore[assignment]

#: Seconds a `flock` holder retries while a reader's momentary shared lock is in the way.
ACQUIRE_RETRY_S = 0.2
_OFD = fcntl is not None and hasattr(fcntl, "F_OFD_SETLK")
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: errnos that mean "this file system takes no locks" rather than "someone holds it".
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
_HELD = {errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK}


@dataclass(frozen=True)
class Owner:
    """The process that began a recording: ``pid`` on ``host``, at ``started`` (Unix time)."""

    pid: int
    host: str
    started: float

    @classmethod
    def this_process(cls) -> Owner:
        return cls(os.getpid(), this_host(), time.time())

    def describe(self) -> str:
        """``pid N on host H``, as messages say it."""
        return f"pid {self.pid} on host {self.host}"

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "started": self.started}

    @classmethod
    def from_json(cls, doc: Any) -> Owner | None:
        """The owner a sidecar or lock file names; None when it names none (or nothing valid)."""
        if not isinstance(doc, dict):
            return None
        try:
            pid, host, started = doc["pid"], doc["host"], doc["started"]
            if isinstance(pid, bool) or not isinstance(pid, int) or not isinstance(host, str):
                return None
            return cls(pid, host, float(started))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: ``role`` is ``"recording"`` (a recorder or a one-shot write) or
    ``"recovery"``; ``owner`` is None while the holder has not yet written its name."""

    role: str
    owner: Owner | None


class LocksUnsupported(OSError):
    """The file system takes no advisory locks (see the module docstring)."""


def this_host() -> str:
    return socket.gethostname()


class Lease:
    """A lease this process holds: the locked descriptor of the lock file. `release` removes the
    file (while still locked) and unlocks it; idempotent. ``locked`` is False where the file system
    takes no locks (the lease is then the sidecar's owner only)."""

    def __init__(self, path: str, fd: int, locked: bool, role: str):
        self.path = path
        self._fd = fd
        self.locked = locked
        self.role = role
        _HELD_LEASES.add(self)

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        _HELD_LEASES.discard(self)
        try:
            if _same_file(fd, self.path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(fd)

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor (the parent's lease stays held)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


_HELD_LEASES: weakref.WeakSet[Lease] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lease in list(_HELD_LEASES):
        lease._forget_in_child()
    _HELD_LEASES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def held_here(path: str, role: str = "recording") -> bool:
    """Whether this process holds the lease at ``path`` for ``role`` now (the fallback where locks
    are not taken)."""
    return any(lease.held and lease.path == path and lease.role == role for lease in list(_HELD_LEASES))


def acquire(path: str, role: str, owner: Owner) -> Lease | Holder:
    """Take the lease at ``path`` for ``role``; returns the `Lease`, or the `Holder` that has it.

    Never waits on a holder (non-blocking; with ``flock``, a few retries of `ACQUIRE_RETRY_S` in
    all). A lock file that is a symlink, not a regular file, not ours or hard-linked elsewhere is
    refused with OSError, never followed or written.
    """
    deadline = time.monotonic() + ACQUIRE_RETRY_S
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
        try:
            _check_lock_file(fd, path)
            try:
                taken = _lock(fd)
            except LocksUnsupported:
                taken, locked = True, False
            else:
                locked = True
            if not taken:
                if not _OFD and time.monotonic() < deadline:  # perhaps a reader's momentary shared flock
                    os.close(fd)
                    time.sleep(0.005)
                    continue
                holder = _settled_holder(fd)
                os.close(fd)
                if holder is None:  # released meanwhile: try again
                    continue
                return holder
            if not _same_file(fd, path):  # unlinked by its last holder after we opened it: start over
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"role": role, **owner.to_json()}).encode(), 0)
            return Lease(path, fd, locked, role)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


def probe(path: str) -> Holder | None:
    """Who holds the lease at ``path`` now, or None when nobody does. Takes no lock a holder
    could wait on (see the module docstring). Raises `LocksUnsupported` where the file system
    cannot tell."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink where a lock file should be: nobody's lease
            return None
        raise
    try:
        return _settled_holder(fd)
    finally:
        os.close(fd)


def process_running(owner: Owner) -> bool | None:
    """Whether ``owner``'s process still runs: None when it ran on another host (nothing here can
    tell). A pid now used by a process started after ``owner.started`` is not the owner's."""
    if owner.host != this_host():
        return None
    if owner.pid == os.getpid():
        return True
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return None
    status = _process_status(owner.pid)
    if status is None:
        return True
    state, started = status
    return state not in ("Z", "X") and started <= owner.started + 1.0


# ---- the lock itself ----------------------------------------------------------------------------
def _lock(fd: int) -> bool:
    """Take the exclusive lock without waiting: True when taken, False when someone holds it."""
    if fcntl is None:
        raise LocksUnsupported(errno.ENOLCK, "no advisory locks on this platform")
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        if exc.errno in _UNSUPPORTED:
            raise LocksUnsupported(exc.errno, os.strerror(exc.errno)) from None
        raise
    return True


def _is_held(fd: int) -> bool:
    """Whether another open file description holds the lock (the query takes none, with OFD locks)."""
    if fcntl is None:
        raise LocksUnsupported(errno.ENOLCK, "no advisory locks on this platform")
    try:
        if _OFD:
            out = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
            return _FLOCK.unpack(out)[0] != fcntl.F_UNLCK
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _HELD:
            return True
        if exc.errno in _UNSUPPORTED:
            raise LocksUnsupported(exc.errno, os.strerror(exc.errno)) from None
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


#: Seconds a reader waits for a new holder to write its name over a dead one's (microseconds, normally).
SETTLE_S = 0.5


def _settled_holder(fd: int) -> Holder | None:
    """The holder of the lock on ``fd``'s file, None when unlocked. A holder writes its name just
    after taking the lock, over the name of the last one (a process killed since): a name whose
    process is gone, or none, is read again for up to `SETTLE_S` (then: an unnamed holder)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        if not _is_held(fd):
            return None
        holder = _read_holder(fd)
        if holder.owner is not None and process_running(holder.owner) is not False:
            return holder
        if time.monotonic() > deadline:
            return Holder(holder.role, None)
        time.sleep(0.002)


def _read_holder(fd: int) -> Holder:
    try:
        doc = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        doc = None
    role = doc.get("role") if isinstance(doc, dict) else None
    return Holder(role if role in ("recording", "recovery") else "recording", Owner.from_json(doc))


def _check_lock_file(fd: int, path: str) -> None:
    st = os.fstat(fd)
    getuid = getattr(os, "geteuid", None)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or (getuid is not None and st.st_uid != getuid()):
        raise OSError(errno.EPERM, f"{path}: not a lock file this user made (a planted file?); remove it and retry")


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.lstat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _process_status(pid: int) -> tuple[str, float] | None:
    """``(state letter, start time as Unix time)`` of ``pid`` from /proc (Linux); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime "))
        return fields[0].decode(), boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


__all__ = ["Holder", "Lease", "LocksUnsupported", "Owner", "acquire", "held_here", "probe", "process_running",
           "this_host"]
