"""A stored ``.npz`` opened once: one descriptor, its ``.npy`` members, and reads that cannot crash.

`NpzArchive(path)` opens ``path`` (regular files only: a FIFO or device is refused, never
waited on), reads the zip directory (`rollrec._npz.zipdir`) and each ``.npy`` member's header,
and checks every member's extent against the file: a stored member's data must lie inside it,
a deflated member may inflate to exactly what its header's shape needs. Nothing else is read.

Everything after that comes from the same descriptor, so a file renamed over the path while it
is open never mixes members of two files:

- ``f[name]``: a stored member is a read-only `np.memmap` view of **one** map of the whole file
  (one extra descriptor, whatever the number of members), a `MemberMap`: indexing it reads the
  selection with pread (`select`), not through the map; a deflated member is inflated on first
  access (capped by its shape, CRC-checked, refused when larger than free memory).
- `select` / `read_env` / `read_all`: stored bytes read with `os.pread` into numpy buffers. A map of a file
  truncated by another process kills the reader with SIGBUS when a lost page is touched; pread
  just returns short, and that becomes `RolloutFormatError`. `Rollout.env` and the episode
  helpers read this way.
- `verify`: the CRC-32 of every member against the zip directory.
- `changed`: whether the path now names another file, or this one changed size or was modified.

Every malformed file raises `RolloutFormatError` naming the file, the member and the problem.
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollrec.format.errors import LegacyPickleError, RolloutFormatError
from rollrec._npz.cell_reads import read_cells
from rollrec._npz.inflate import crc32, inflate
from rollrec._npz.member_map import MemberMap
from rollrec._npz.npy_header import MAGIC, PREFIX_BYTES, NpyHeader, npy_header_length, parse_npy_header
from rollrec._npz.selection import plan
from rollrec._npz.zipdir import FLAG_ENCRYPTED, FLAG_UTF8, Entry, pread_exact, read_directory

STORED, DEFLATED = 0, 8
_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 99: "AES"}
_MAX_ZIP_VERSION = 63  # the newest zip version (6.3) any reader knows
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than about 1032:1
_LOCAL = (0x04034B50, 30)  # local header signature and fixed size
_CHUNK = 16 << 20
_DENSE_STRIDE = 8 << 10  # per-step bytes of all envs below which a column is read in blocks
_BLOCK_BYTES = 1 << 20
_HEADER_GUESS = 256  # bytes read for an npy header first (rollrec writes 192, numpy 64 or 128)


@dataclass(frozen=True)
class Member:
    """One ``.npy`` member: its zip entry, its npy header, and where its bytes are."""

    name: str
    entry: Entry
    header: NpyHeader
    stream_offset: int  # first byte of the zip member's (stored or deflated) data

    @property
    def shape(self) -> tuple[int, ...]:
        return self.header.shape

    @property
    def dtype(self) -> np.dtype:
        return self.header.dtype

    @property
    def stored(self) -> bool:
        return self.entry.method == STORED

    @property
    def data_offset(self) -> int:
        """Offset of the array data in the file (stored members)."""
        return self.stream_offset + self.header.header_len


class NpzArchive(Mapping[str, np.ndarray]):
    """The ``.npy`` members of the zip at ``path``, keyed by name without ``.npy``; see the module docstring."""

    def __init__(self, path: str):
        self.path = path
        self._fd = _open_regular(path)
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._closed = False
        try:
            st = os.fstat(self._fd)
            self.size = st.st_size
            self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if self.size == 0:
                raise RolloutFormatError(f"{path}: empty file, not an .npz rollout")
            entries, cd_offset = read_directory(self._fd, self.size, path)
            self.members: dict[str, Member] = {}
            for entry in entries:
                if not entry.name.endswith(".npy"):
                    continue
                member = self._member(entry, cd_offset)
                if member.name in self.members:
                    raise RolloutFormatError(f"{path}: member {member.name!r} appears twice")
                self.members[member.name] = member
        except BaseException:
            os.close(self._fd)
            raise
        self.shapes = {name: m.shape for name, m in self.members.items()}
        self.dtypes = {name: m.dtype for name, m in self.members.items()}

    # ---- opening ----------------------------------------------------------------------------
    def _member(self, entry: Entry, cd_offset: int) -> Member:
        path, name = self.path, entry.name[:-4]
        if not name.isprintable():
            raise RolloutFormatError(f"{path}: member name {name!r} holds control characters")
        if entry.flags & FLAG_ENCRYPTED:
            raise RolloutFormatError(f"{path}: member {name!r} is encrypted; rollrec reads unencrypted files only")
        if entry.method not in (STORED, DEFLATED):
            method = _METHOD_NAMES.get(entry.method, f"method {entry.method}")
            raise RolloutFormatError(
                f"{path}: member {name!r} is compressed with {method}; rollrec reads stored or deflated members"
            )
        if entry.version_needed > _MAX_ZIP_VERSION:
            v = entry.version_needed
            raise RolloutFormatError(f"{path}: member {name!r} needs zip version {v // 10}.{v % 10}; rollrec reads up to 6.3")
        raw_name = entry.name.encode("utf-8" if entry.flags & FLAG_UTF8 else "cp437")
        local = pread_exact(self._fd, _LOCAL[1] + len(raw_name), entry.header_offset, path, f"member {name!r}'s zip header")
        if int.from_bytes(local[:4], "little") != _LOCAL[0]:
            raise RolloutFormatError(f"{path}: member {name!r} has a damaged zip header")
        if local[_LOCAL[1]:] != raw_name or int.from_bytes(local[26:28], "little") != len(raw_name):
            raise RolloutFormatError(f"{path}: member {name!r} has another name in its zip header: the file is damaged")
        stream = entry.header_offset + _LOCAL[1] + len(raw_name) + int.from_bytes(local[28:30], "little")
        if stream + entry.compress_size > cd_offset:
            raise RolloutFormatError(
                f"{path}: member {name!r} claims {entry.compress_size} bytes at {stream}, past the end of the members"
            )
        if entry.method == STORED and entry.compress_size != entry.file_size:
            raise RolloutFormatError(f"{path}: stored member {name!r} has two different sizes in its zip entry")
        prefix = self._prefix(name, entry, stream, _HEADER_GUESS)
        if len(prefix) >= 12 and prefix[:6] == MAGIC:  # a header longer than the guess: read all of it
            need = npy_header_length(prefix)
            if len(prefix) < need <= PREFIX_BYTES:
                prefix = self._prefix(name, entry, stream, need)
        header = parse_npy_header(bytes(prefix), path, name)
        if header.fortran and len(header.shape) > 1:
            raise RolloutFormatError(f"{path}: member {name!r} is Fortran-ordered; rollrec writes C order")
        if header.dtype.hasobject:  # pickled data, never read here (legacy files, or refused)
            return Member(name, entry, header, stream)
        if header.header_len + header.nbytes != entry.file_size:
            raise RolloutFormatError(
                f"{path}: member {name!r}: its header's shape {header.shape} of {header.dtype} needs "
                f"{header.header_len + header.nbytes} bytes but the zip entry holds {entry.file_size}"
            )
        if entry.method == DEFLATED and header.nbytes > _DEFLATE_MAX_RATIO * entry.compress_size + (1 << 16):
            raise RolloutFormatError(
                f"{path}: member {name!r} claims {header.nbytes} bytes, more than {entry.compress_size} bytes of "
                "deflate can hold"
            )
        return Member(name, entry, header, stream)

    def _prefix(self, name: str, entry: Entry, stream: int, size: int) -> bytes:
        """The first ``size`` bytes of the member (fewer if it is shorter)."""
        size = min(size, entry.file_size)
        if entry.method == STORED:
            return os.pread(self._fd, size, stream)
        return bytes(inflate(self._fd, self.path, name, entry, stream, size, whole=False))

    # ---- members as arrays ------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is not None:
            return arr
        m = self.members[name]  # KeyError for an unknown name, as a Mapping does
        if m.dtype.hasobject:
            raise LegacyPickleError(f"{self.path}: member {name!r} is an object array (needs pickle)")
        with self._lock:
            self._check_open()
            if m.header.nbytes == 0:
                try:
                    arr = np.zeros(m.shape, m.dtype)
                except (ValueError, MemoryError):
                    raise RolloutFormatError(f"{self.path}: member {name!r} has an impossible shape {m.shape}") from None
            elif m.stored:
                arr = self._view(m)
            else:
                data = self._inflate(m, m.entry.file_size, whole=True)
                arr = np.frombuffer(data, m.dtype, offset=m.header.header_len).reshape(m.shape)
            self._arrays[name] = arr
        return arr

    def _view(self, m: Member) -> MemberMap:
        """A read-only memmap of stored member ``m``: a view of the one map of the file, indexed with `select`."""
        if self._map is None:
            try:
                self._map = mmap.mmap(self._fd, self.size, access=mmap.ACCESS_READ)
            except (ValueError, OSError) as exc:
                raise RolloutFormatError(f"{self.path}: cannot map the file; it changed since it was opened ({exc})") from None
        count = int(np.prod(m.shape, dtype=np.int64))
        # frombuffer holds the map's buffer export, so the map cannot be closed under a live view.
        flat = np.frombuffer(self._map, m.dtype, count=count, offset=m.data_offset)
        view = flat.reshape(m.shape).view(MemberMap)
        view._mmap, view.filename, view.offset, view.mode = self._map, os.path.abspath(self.path), m.data_offset, "r"
        if view.ndim:
            view._select = _Selector(self, m.name, view)  # the member reads through its archive
        return view

    def select(self, name: str, key: Any) -> Any:
        """``self[name][key]``: for a stored member, read from the file with pread into a new array.

        Every numpy index works and gives numpy's result (`rollrec._npz.selection`). Two cases
        index the memory map instead: a basic index (ints, slices) whose result is larger than
        `lazy_bytes` (it stays a view, read as it is touched, so a selection larger than memory
        still works), and the archive closed (the map outlives the descriptor). Raises
        `RolloutFormatError` when the file was truncated since it was opened.
        """
        member = self[name]
        if not isinstance(member, MemberMap):
            return member[key]
        return self._select(self.members[name], member, key)

    def _select(self, m: Member, member: MemberMap, key: Any) -> Any:
        if self._closed:
            return member.mapped(key)
        p = plan(key, m.shape)
        if p is None:
            return member.mapped(key)  # numpy's own result or error
        nbytes = int(np.prod(p.block_shape(m.shape), dtype=np.int64)) * m.dtype.itemsize
        if p.basic and nbytes > lazy_bytes():
            return member.mapped(key)
        block = read_cells(self._fd, m.data_offset, m.shape, m.dtype, p.rows, p.cols, self._shrunk)
        out = block[p.local]
        if isinstance(out, np.ndarray) and out.base is not None and 2 * out.nbytes < block.nbytes:
            out = out.copy()  # keep only what was asked for alive
        return out

    def _inflate(self, m: Member, limit: int, *, whole: bool) -> bytearray:
        """The first ``limit`` inflated bytes of deflated member ``m``; with ``whole``, all of it,
        which must be exactly ``limit`` bytes and match the CRC of its zip entry."""
        return inflate(self._fd, self.path, m.name, m.entry, m.stream_offset, limit, whole=whole)

    # ---- reads that cannot SIGBUS -----------------------------------------------------------
    def read_env(self, name: str, env: int, out: np.ndarray, start: int = 0) -> None:
        """Fill ``out`` (C-contiguous ``[t, *row]``) with steps ``start..start+t`` of env ``env`` of member ``name``."""
        m = self.members[name]
        steps = out.shape[0]
        if steps == 0 or out.nbytes == 0:
            return
        if not m.stored:
            out[...] = self[name][start : start + steps, env]
            return
        N = m.shape[1]
        row = out.nbytes // steps
        stride = N * row
        base = m.data_offset + start * stride
        if stride <= _DENSE_STRIDE:  # small steps: read whole blocks of steps, keep the env's column
            out[...] = self.read_block(name, (start, start + steps), (env, env + 1)).reshape(out.shape)
            return
        dst = out.reshape(-1).view(np.uint8).reshape(steps, row)
        offset, fd, pread = base + env * row, self._fd, os.pread
        data = b"".join([pread(fd, row, offset + t * stride) for t in range(steps)])  # one read per step
        if len(data) != row * steps:
            raise self._shrunk()
        dst.reshape(-1)[:] = np.frombuffer(data, np.uint8)

    def read_block(self, name: str, steps: tuple[int, int], envs: tuple[int, int]) -> np.ndarray:
        """Steps ``t0..t1`` of envs ``a..b`` of member ``name`` (``[t1-t0, b-a, *row]``), read into a
        new array with pread (stored members): a file truncated since it was opened raises
        `RolloutFormatError` instead of SIGBUS."""
        m = self.members[name]
        (t0, t1), (a, b) = steps, envs
        out = np.empty((max(t1 - t0, 0), max(b - a, 0), *m.shape[2:]), m.dtype)
        if out.nbytes == 0:
            return out
        if not m.stored:
            out[...] = self[name][t0:t1, a:b]
            return out
        N = m.shape[1]
        row = out.nbytes // (out.shape[0] * out.shape[1])
        stride = N * row
        base = m.data_offset + t0 * stride
        if b - a == N:  # whole steps: one contiguous range, read straight into ``out``
            buf = memoryview(out.reshape(-1).view(np.uint8))
            for i in range(0, len(buf), _CHUNK):
                j = min(len(buf), i + _CHUNK)
                if os.preadv(self._fd, [buf[i:j]], base + i) != j - i:
                    raise self._shrunk()
            return out
        steps_n = out.shape[0]
        if stride <= _DENSE_STRIDE:  # small steps: read blocks of whole steps, keep the env range
            block = max(1, _BLOCK_BYTES // stride)
            buf = np.empty(min(block, steps_n) * stride, np.uint8)
            for t in range(0, steps_n, block):
                n = min(block, steps_n - t)
                if os.preadv(self._fd, [buf[: n * stride]], base + t * stride) != n * stride:
                    raise self._shrunk()
                out[t : t + n] = buf[: n * stride].view(m.dtype).reshape(n, N, *m.shape[2:])[:, a:b]
            return out
        width = (b - a) * row
        dst = out.reshape(steps_n, -1).view(np.uint8)
        for t in range(steps_n):
            if os.preadv(self._fd, [dst[t]], base + t * stride + a * row) != width:
                raise self._shrunk()
        return out

    def cached(self, name: str, env: int) -> bool:
        """Whether the first and last step of env ``env`` of member ``name`` are in the page cache
        (asked with ``RWF_NOWAIT``, which reads only cached data; False where unsupported)."""
        m = self.members[name]
        if not m.stored or m.header.nbytes == 0 or not hasattr(os, "RWF_NOWAIT"):
            return not m.stored
        T, N = m.shape[:2]
        row = m.header.nbytes // (T * N)
        buf = bytearray(max(row, 1))
        try:
            return all(
                os.preadv(self._fd, [buf], m.data_offset + (t * N + env) * row, os.RWF_NOWAIT) == len(buf)
                for t in {0, T - 1}
            )
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: the filesystem cannot tell
            return False

    def read_all(self, name: str) -> np.ndarray:
        """Member ``name`` read whole into memory (stored: with pread)."""
        m = self.members[name]
        if not m.stored or m.header.nbytes == 0:
            return np.array(self[name])
        out = np.empty(m.shape, m.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        for a in range(0, len(buf), _CHUNK):
            b = min(len(buf), a + _CHUNK)
            if os.preadv(self._fd, [buf[a:b]], m.data_offset + a) != b - a:
                raise self._shrunk()
        return out

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` (along the first axis) of member ``name``, read with pread (stored)."""
        m = self.members[name]
        n = max(0, min(stop, m.shape[0]) - start)
        out = np.empty((n, *m.shape[1:]), m.dtype)
        if out.nbytes == 0:
            return out
        if not m.stored:
            out[...] = self[name][start : start + n]
            return out
        offset = m.data_offset + start * (out.nbytes // n)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        for a in range(0, len(buf), _CHUNK):
            b = min(len(buf), a + _CHUNK)
            if os.preadv(self._fd, [buf[a:b]], offset + a) != b - a:
                raise self._shrunk()
        return out

    def _pread(self, size: int, offset: int) -> bytes:
        self._check_open()
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise self._shrunk()
        return data

    def _shrunk(self) -> RolloutFormatError:
        return RolloutFormatError(
            f"{self.path}: the file is shorter than when it was opened (truncated while open); open it again"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: the rollout is closed")

    # ---- integrity ----------------------------------------------------------------------------
    def verify(self, progress: Callable[[int], None] | None = None) -> int:
        """Check every member's CRC-32 against the zip directory; `RolloutFormatError` naming the first
        that differs. ``progress(nbytes)`` is called as bytes are checked (the file is read once).
        Returns the number of members checked."""
        self._check_open()
        for m in self.members.values():
            if not m.stored:
                self._inflate(m, m.entry.file_size, whole=True)  # checks the CRC
                if progress:
                    progress(m.entry.compress_size)
                continue
            crc, done = 0, 0
            while done < m.entry.file_size:
                chunk = self._pread(min(_CHUNK, m.entry.file_size - done), m.stream_offset + done)
                crc = crc32(chunk, crc)
                done += len(chunk)
                if progress:
                    progress(len(chunk))
            if crc != m.entry.crc:
                raise RolloutFormatError(
                    f"{self.path}: member {m.name!r} fails its CRC-32 check (directory {m.entry.crc:08x}, "
                    f"data {crc:08x}): the file is damaged"
                )
        return len(self.members)

    def changed(self) -> str | None:
        """Why the file differs from the one opened (replaced, removed, resized, modified), or None."""
        self._check_open()
        try:
            st = os.stat(self.path)
        except OSError:
            return "it was removed"
        dev, ino, size, mtime = self._identity
        if (st.st_dev, st.st_ino) != (dev, ino):
            return "another file was put in its place"
        now = os.fstat(self._fd)
        if now.st_size != size:
            return f"its size changed from {size} to {now.st_size} bytes"
        if now.st_mtime_ns != mtime:
            return "it was modified"
        return None

    # ---- mapping and lifetime -----------------------------------------------------------------
    def fileno(self) -> int:
        """The descriptor every read uses (owned by this object)."""
        self._check_open()
        return self._fd

    def __contains__(self, name: object) -> bool:
        return name in self.members

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def stored(self) -> bool:
        return all(m.stored for m in self.members.values())

    def close(self) -> None:
        """Close the descriptor; the map goes when the last view of it does. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._arrays.clear()
            if self._map is not None:
                try:
                    self._map.close()
                except BufferError:  # views handed out still use it; it is unmapped with the last one
                    pass
                self._map = None
            os.close(self._fd)


class _Selector:
    """``key -> archive.select(name, key)``, holding the archive weakly (a member kept after its
    archive is dropped indexes its map)."""

    def __init__(self, archive: NpzArchive, name: str, member: MemberMap):
        self._archive = weakref.ref(archive)
        self._name = name
        self._member = weakref.ref(member)

    def __call__(self, key: Any) -> Any:
        archive, member = self._archive(), self._member()
        if archive is None:
            return member.mapped(key)
        return archive._select(archive.members[self._name], member, key)


def lazy_bytes() -> int:
    """Largest result of a basic index that `NpzArchive.select` reads into memory: an eighth of
    the machine's memory (a larger one stays a view of the map)."""
    global _LAZY_BYTES
    if _LAZY_BYTES is None:
        try:
            _LAZY_BYTES = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8
        except (AttributeError, ValueError, OSError):
            _LAZY_BYTES = 1 << 30
    return _LAZY_BYTES


_LAZY_BYTES: int | None = None


def _open_regular(path: str) -> int:
    """A read-only descriptor of ``path``; `RolloutFormatError` unless it is a regular file.

    Opened non-blocking so a FIFO (or a device) is refused at once instead of waiting for a writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            raise
        raise RolloutFormatError(f"{path}: cannot be opened as a file ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file"
        raise RolloutFormatError(f"{path}: is {kind}, not a rollout file (rollrec opens regular files only)")
    os.set_blocking(fd, True)
    return fd
