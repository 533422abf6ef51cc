"""File-system steps the writer's crash safety is built from, each doing one thing.

- `create_exclusive`: a new file that did not exist, never through a symlink someone planted
  (``O_CREAT | O_EXCL | O_NOFOLLOW``).
- `replace_small_file`: the one way rollrec replaces a small file (the stream's sidecar, a sharded
  rollout's manifest, the model kept beside a recording): write it under a temporary name
  created exclusively, sync it, rename it over the old one, sync the directory: readers see the
  old or the new content, never a mix, also after a power loss; the temporary file never
  outlives a failure.
- `punch_hole`: give a byte range's disk blocks back (Linux ``fallocate(PUNCH_HOLE)``); the range
  then reads as zeros and the file keeps its size. Elsewhere it does nothing and says so.
- `copy_range`: copy bytes between files in the kernel (``copy_file_range``; reflinks on XFS and
  btrfs), falling back to reads and writes.
- `clone_range`: share a range's blocks at another offset (``FICLONERANGE``: XFS, btrfs); False
  where the file system cannot, and nothing is changed then.
- `memory_backed`: whether a file lives in memory (tmpfs), where reserving space costs a write.
- `collapse_range`: remove a byte range from a file, the bytes after it moving down by its length
  (Linux ``fallocate(COLLAPSE_RANGE)``: ext4, XFS; a change of extents, no byte is copied); False
  where the file system cannot, and nothing is changed then.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import sys
from typing import Any
from collections.abc import Callable

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_COLLAPSE_RANGE = 0x08
_COPY_CHUNK = 64 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def create_exclusive(path: str, *, replace_stale: bool = False) -> int:
    """Open a new file at ``path`` for reading and writing; returns its descriptor.

    Fails with FileExistsError if anything (a file, a symlink, even a dangling one) is already at
    ``path``, unless ``replace_stale``: then that entry is unlinked first (unlinking a symlink
    removes the link, never its target) and the create is still exclusive, so a link planted in
    between makes it fail rather than be followed.
    """
    if replace_stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)


def fsync_dir(path: str) -> None:
    """Make the directory entries of the folder holding ``path`` durable (creates, renames, unlinks)."""
    if sys.platform == "win32":  # pragma: no cover - no directory descriptors
        return
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fdatasync(fd: int) -> None:
    """Wait until the data written through ``fd`` (and the size and extents that reach it) is on disk."""
    getattr(os, "fdatasync", os.fsync)(fd)


def replace_small_file(path: str | os.PathLike, data: bytes, *, sync: bool = True,
                       tmp: str | os.PathLike | None = None) -> None:
    """Atomically make ``data`` the content of ``path`` (see the module docstring).

    The temporary file is ``tmp`` (default ``path + ".tmp"``), created exclusively and never
    through a symlink (a stale file or link of that name, left by a killed process, is removed
    first); it is removed again if anything fails. ``sync=False`` skips the two fsyncs: still
    atomic for a killed process, not after a power loss.
    """
    path = os.fspath(path)
    tmp = path + ".tmp" if tmp is None else os.fspath(tmp)
    fd = create_exclusive(tmp, replace_stale=True)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync:
        fsync_dir(path)


def linux_libc_function(name: str, *argtypes: Any) -> Any:
    """The C library's ``name`` (returning int, errno kept) on Linux; None elsewhere or where missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # pragma: no cover - unusual libc
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


_fallocate = linux_libc_function("fallocate", ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Free the blocks of ``[offset, offset + length)`` (it then reads as zeros); the size stays.

    Returns False where the platform or file system cannot (nothing is changed then): the bytes
    stay allocated, which costs space but never correctness, since only unreferenced ranges are
    punched.
    """
    if length <= 0 or _fallocate is None:
        return False
    if _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, f"fallocate(PUNCH_HOLE) of {length} bytes at {offset}: {os.strerror(err)}")


def collapse_range(fd: int, offset: int, length: int) -> bool:
    """Remove ``[offset, offset + length)`` from the file: what follows moves down by ``length``
    and the file shrinks by as much. Both must be multiples of the file system's block size and
    the range must end before the end of the file. Only the extents change. It is one system call:
    a killed process leaves it done or not done, never half (after a power loss that is up to the
    file system's journal: see "Recordings of unknown length" in `rollrec._npz.stream`).

    Returns False where the platform or file system cannot (tmpfs, btrfs, NFS, ...): nothing is
    changed then. Raises OSError for other failures.
    """
    if length <= 0 or _fallocate is None:
        return False
    if _fallocate(fd, _FALLOC_FL_COLLAPSE_RANGE, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS):
        return False
    raise OSError(err, f"fallocate(COLLAPSE_RANGE) of {length} bytes at {offset}: {os.strerror(err)}")


_MEMORY_FS = {0x01021994, 0x858458F6}  # tmpfs, ramfs (statfs f_type)


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 256)]  # f_type leads on every Linux ABI


_fstatfs = linux_libc_function("fstatfs", ctypes.c_int, ctypes.POINTER(_StatFs))


def memory_backed(fd: int) -> bool:
    """Whether the file at ``fd`` lives in memory (tmpfs, ramfs: ``/dev/shm``, often ``/tmp``),
    where reserving space (``fallocate``) zeroes the memory: it costs as much as writing it."""
    if _fstatfs is None:
        return False
    buf = _StatFs()
    return _fstatfs(fd, ctypes.byref(buf)) == 0 and buf.f_type in _MEMORY_FS


def block_size(fd: int) -> int:
    """The unit ranges given to `collapse_range` must be multiples of (the file system's block size)."""
    try:
        return max(int(os.fstatvfs(fd).f_bsize), 1)
    except (AttributeError, OSError):  # pragma: no cover - no statvfs
        return 4096


def allocated_bytes(path: str | os.PathLike) -> int | None:
    """Bytes of disk the file at ``path`` occupies (less than its size where it has holes)."""
    st = os.stat(path)
    blocks = getattr(st, "st_blocks", None)
    return None if blocks is None else blocks * 512


_FICLONERANGE = 0x4020940D


def clone_range(fd: int, src: int, dst: int, nbytes: int) -> bool:
    """Make ``[dst, dst + nbytes)`` of the file share the blocks of ``[src, src + nbytes)`` (whole,
    aligned blocks; ranges that do not overlap). False where the platform or file system cannot."""
    if not sys.platform.startswith("linux") or nbytes <= 0:
        return False
    import fcntl
    import struct

    try:
        fcntl.ioctl(fd, _FICLONERANGE, struct.pack("qQQQ", fd, src, nbytes, dst))
    except OSError:
        return False
    return True


def copy_range(
    src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, nbytes: int,
    *, written: Callable[[int, int], None] | None = None,
) -> None:
    """Copy ``nbytes`` from ``src_fd`` at ``src_offset`` to ``dst_fd`` at ``dst_offset``.

    The two ranges must not overlap (the writer only ever copies into unreferenced space).
    ``written(offset, length)`` is told each destination range copied (e.g. a
    `rollrec._npz.writeback.WritebackWindow`, so a large copy leaves few dirty pages behind).
    """
    done = 0
    use_kernel = hasattr(os, "copy_file_range")
    while done < nbytes:
        size = min(_COPY_CHUNK, nbytes - done)
        n = 0
        if use_kernel:
            try:
                n = os.copy_file_range(src_fd, dst_fd, size, src_offset + done, dst_offset + done)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF):
                    raise
                use_kernel = False
                continue
        else:
            chunk = os.pread(src_fd, size, src_offset + done)
            view = memoryview(chunk)
            while view:
                view = view[os.pwrite(dst_fd, view, dst_offset + done + len(chunk) - len(view)):]
            n = len(chunk)
        if n == 0:
            raise OSError(errno.EIO, f"unexpected end of file at byte {src_offset + done} while copying")
        if written is not None:
            written(dst_offset + done, n)
        done += n
