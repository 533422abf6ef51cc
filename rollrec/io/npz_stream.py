"""Write a stored (uncompressed) ``.npz`` in place, member by member, rows appended in order.

The file is laid out up front from each member's dtype, row shape and row capacity::

    offset 0   [zip local header | pad ][ npy header ][ rows 0 .. capacity-1 of member 0 ]
               [zip local header | pad ][ npy header ][ rows 0 .. capacity-1 of member 1 ]
               ...
    finalise   [small members: meta, names ...][central directory][zip64 end records][end record]

Rows are written straight to their final offset (``os.pwrite``), so each byte reaches the disk
once; the CRC-32 of each member is carried along as rows arrive. `finalize` writes the real
shapes into the npy headers, the sizes and CRCs into the zip headers, appends the small members
and the central directory. If fewer rows than the capacity arrived, members are moved down to
close the gaps (the only case where data is copied twice).

Each member's npy data starts on a 64-byte boundary so readers can memory-map it. Zip64 records
are written where a size or offset needs them. The writer is not thread-safe: one thread (the
engine's writer thread) owns it.

A JSON sidecar (`layout_path`) describes the layout and the rows known to be on disk; if the
process dies, `recover` turns the partial file into a valid one holding those rows.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

try:  # ISA-L's CRC-32 runs ~5x faster than zlib's; same polynomial, same values.
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - platforms without isal wheels
    _crc32 = zlib.crc32

ALIGN = 64
_NPY_HEADER_BYTES = 192  # reserved npy header length (magic included), a multiple of ALIGN
_ZIP64_LIMIT = 0xFFFF_FFFF  # sizes/offsets from here on need zip64 records
_ZIP32_MAX = 0xFFFF_FFFF  # the 32-bit field value meaning "see the zip64 extra field"
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_EOCD64_LOC = struct.Struct("<IIQI")
_PAD_EXTRA_ID = 0xD935  # alignment padding extra field (as Android's zipalign uses)
_COPY_CHUNK = 64 << 20


@dataclass
class MemberSpec:
    """One ``.npy`` member: ``name`` (no ``.npy``), dtype string, shape of one row, rows reserved."""

    name: str
    dtype: str
    row_shape: tuple[int, ...]
    capacity: int

    @property
    def row_bytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.row_shape, dtype=np.int64)))


@dataclass
class _Placement:
    header_offset: int  # zip local header
    data_offset: int  # first row
    zip64: bool


def npy_header(dtype: np.dtype | str, shape: Sequence[int], length: int | None = None) -> bytes:
    """An npy v1/v2 header for a C-ordered array, padded to ``length`` bytes (or to ALIGN)."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    body = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(int(s) for s in shape))
    raw = body.encode("latin1")
    for version, prefix_len, fmt in ((1, 10, "<H"), (2, 12, "<I")):
        need = prefix_len + len(raw) + 1
        total = length if length is not None else -(-need // ALIGN) * ALIGN
        if need <= total and (version == 2 or total - prefix_len < 0x10000):
            pad = total - need
            return (
                b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, total - prefix_len)
                + raw + b" " * pad + b"\n"
            )
    raise ValueError(f"npy header for shape {tuple(shape)} does not fit in {length} bytes")


def _dos_time(now: float) -> tuple[int, int]:
    t = time.localtime(now)
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = (max(t.tm_year, 1980) - 1980) << 9 | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


def _local_header(name: bytes, crc: int, size: int, zip64: bool, pad_to: int, now: float) -> bytes:
    """Local file header whose total length (with extras) is ``pad_to``."""
    extra = b""
    if zip64:
        extra += struct.pack("<HHQQ", 1, 16, size, size)
    pad = pad_to - _LOCAL.size - len(name) - len(extra)
    if pad:
        if pad < 4:
            raise AssertionError("local header padding must be 0 or at least 4 bytes")
        extra += struct.pack("<HH", _PAD_EXTRA_ID, pad - 4) + b"\0" * (pad - 4)
    tm, dt = _dos_time(now)
    size32 = _ZIP32_MAX if zip64 else size
    return _LOCAL.pack(
        0x04034B50, 45 if zip64 else 20, 0, 0, tm, dt, crc, size32, size32, len(name), len(extra)
    ) + name + extra


def _local_header_len(name: bytes, zip64: bool, start: int) -> int:
    """Length of a local header starting at ``start`` whose npy data after it lands on ALIGN."""
    base = _LOCAL.size + len(name) + (20 if zip64 else 0)
    end = start + base + _NPY_HEADER_BYTES
    pad = (-end) % ALIGN
    if 0 < pad < 4:
        pad += ALIGN
    return base + pad


def _layout(members: Sequence[MemberSpec], capacity: Mapping[str, int] | None = None) -> dict[str, _Placement]:
    """Placements of ``members`` one after another from offset 0, each with room for its rows."""
    placements: dict[str, _Placement] = {}
    offset = 0
    for m in members:
        rows = m.capacity if capacity is None else capacity[m.name]
        name = (m.name + ".npy").encode()
        zip64 = rows * m.row_bytes + _NPY_HEADER_BYTES >= _ZIP64_LIMIT or offset >= _ZIP64_LIMIT
        data_offset = offset + _local_header_len(name, zip64, offset) + _NPY_HEADER_BYTES
        placements[m.name] = _Placement(offset, data_offset, zip64)
        offset = data_offset + rows * m.row_bytes
    return placements


class NpzStreamWriter:
    """Append rows to the members of a stored ``.npz`` at ``path``; see the module docstring.

    ``members`` are laid out in order. ``append(name, rows)`` takes a C-contiguous array of
    shape ``[n, *row_shape]`` and the member's dtype. `finalize` completes the file; `abort`
    removes it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        members: Sequence[MemberSpec],
        *,
        layout_path: str | None = None,
        recovery_info: Mapping | None = None,
    ):
        self.path = os.fspath(path)
        self.recovery_info = dict(recovery_info or {})
        self.members = {m.name: m for m in members}
        if len(self.members) != len(members):
            raise ValueError("member names must be unique")
        self.layout_path = layout_path
        self._now = time.time()
        self._placements = _layout(members)
        self.rows = {m.name: 0 for m in members}
        self.crc = {m.name: 0 for m in members}
        self._committed = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._allocate()
        self._write_layout()

    def _allocate(self) -> None:
        """Reserve the disk blocks of every member's capacity up front.

        Writing into allocated blocks runs about 1.5x faster than extending the file on every
        write, and a full disk fails here, before any step is recorded. Filesystems without
        fallocate are fine: the file then grows as it is written.
        """
        last = list(self.members.values())[-1]
        end = self._placements[last.name].data_offset + last.capacity * last.row_bytes
        try:
            os.posix_fallocate(self._fd, 0, max(end, 1))
        except (AttributeError, OSError) as exc:
            if getattr(exc, "errno", None) == errno.ENOSPC:
                raise OSError(errno.ENOSPC, f"{self.path}: no space left for {end / 1e9:.2f} GB of rollout") from None

    @property
    def capacity(self) -> int:
        """Rows every member has room for."""
        return min(m.capacity for m in self.members.values())

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` rows per member, moving members towards the end of the file.

        Members move last first, so none overwrites another's rows; the sidecar is rewritten
        after each move so a crash mid-way stays recoverable.
        """
        if capacity <= self.capacity:
            return
        new = _layout(list(self.members.values()), {name: capacity for name in self.members})
        last = list(self.members.values())[-1]
        try:
            os.posix_fallocate(self._fd, 0, new[last.name].data_offset + capacity * last.row_bytes)
        except (AttributeError, OSError):
            pass  # the moves below extend the file as they go
        for name in reversed(list(self.members)):
            m = self.members[name]
            self._move(self._placements[name].data_offset, new[name].data_offset, self.rows[name] * m.row_bytes)
            self._placements[name] = new[name]
            m.capacity = capacity
            self._write_layout(self._committed)

    # ---- rows -------------------------------------------------------------------------------
    def append(self, name: str, rows: np.ndarray) -> None:
        """Write ``rows`` (``[n, *row_shape]``) after the rows already written.

        Past the reserved capacity the file grows (`grow`, doubling), which moves data once.
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
            self.grow(max(2 * m.capacity, self.rows[name] + n))
        if rows.nbytes == 0:  # e.g. zero reward terms: nothing to write, rows still count
            self.rows[name] += n
            return
        view = memoryview(np.ascontiguousarray(rows)).cast("B")
        offset = self._placements[name].data_offset + self.rows[name] * m.row_bytes
        written = 0
        while written < len(view):
            written += os.pwrite(self._fd, view[written:], offset + written)
        self.crc[name] = _crc32(view, self.crc[name])
        self.rows[name] += n

    def commit(self, rows: int) -> None:
        """Record in the sidecar that the first ``rows`` rows of every member are on disk."""
        self._committed = rows
        if self.layout_path is not None:
            self._write_layout(committed_rows=rows)

    # ---- finishing --------------------------------------------------------------------------
    def finalize(self, small: Mapping[str, np.ndarray], num_rows: int | None = None) -> None:
        """Complete the archive with ``num_rows`` rows per member and the ``small`` arrays after."""
        if num_rows is None:
            num_rows = min(self.rows.values(), default=0)
        for name, n in self.rows.items():
            if n < num_rows:
                raise ValueError(f"{name!r} has {n} rows, fewer than the {num_rows} being finalised")
        entries = []  # (name bytes, crc, size, header_offset, zip64)
        final = _layout(list(self.members.values()), {name: num_rows for name in self.members})
        offset = 0  # end of the last member written
        for name, m in self.members.items():
            new = final[name]
            name_b = (name + ".npy").encode()
            header_len = new.data_offset - new.header_offset - _NPY_HEADER_BYTES
            nbytes = num_rows * m.row_bytes
            self._move(self._placements[name].data_offset, new.data_offset, nbytes)
            crc = self.crc[name] if num_rows == self.rows[name] else self._crc_of(new.data_offset, nbytes)
            npy = npy_header(m.dtype, (num_rows, *m.row_shape), _NPY_HEADER_BYTES)
            crc = _crc_prefix(npy, crc, nbytes)
            size = len(npy) + nbytes
            local = _local_header(name_b, crc, size, new.zip64, header_len, self._now)
            os.pwrite(self._fd, local + npy, new.header_offset)
            entries.append((name_b, crc, size, new.header_offset, new.zip64))
            offset = new.data_offset + nbytes
        for name, arr in small.items():
            name_b = (name + ".npy").encode()
            arr = np.asarray(arr, order="C")
            if arr.dtype.hasobject:
                raise ValueError(f"{name!r}: object arrays are never written")
            npy = npy_header(arr.dtype, arr.shape)
            payload = npy + arr.tobytes()
            crc = zlib.crc32(payload)
            zip64 = offset >= _ZIP64_LIMIT
            base = _LOCAL.size + len(name_b) + (20 if zip64 else 0)
            pad = (-(offset + base + len(npy))) % ALIGN  # data on ALIGN, like the per-step members
            header_len = base + (pad + ALIGN if 0 < pad < 4 else pad)
            local = _local_header(name_b, crc, len(payload), zip64, header_len, self._now)
            os.pwrite(self._fd, local + payload, offset)
            entries.append((name_b, crc, len(payload), offset, zip64))
            offset += header_len + len(payload)
        tail = self._central_directory(entries, offset)
        os.pwrite(self._fd, tail, offset)
        os.ftruncate(self._fd, offset + len(tail))
        os.close(self._fd)
        self._fd = -1
        if self.layout_path is not None and os.path.exists(self.layout_path):
            os.unlink(self.layout_path)

    def abort(self) -> None:
        """Close and delete the partial file and its sidecar."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for p in (self.path, self.layout_path):
            if p is not None and os.path.exists(p):
                os.unlink(p)

    def _move(self, src: int, dst: int, nbytes: int) -> None:
        """Move ``nbytes`` from ``src`` to ``dst`` in the file; the ranges may overlap."""
        if dst == src or nbytes == 0:
            return
        starts = range(0, nbytes, _COPY_CHUNK)
        for start in starts if dst < src else reversed(starts):  # never overwrite unread bytes
            size = min(_COPY_CHUNK, nbytes - start)
            chunk = os.pread(self._fd, size, src + start)
            if len(chunk) != size:
                raise OSError(f"{self.path}: unexpected end of file at byte {src + start + len(chunk)}")
            os.pwrite(self._fd, chunk, dst + start)

    def _crc_of(self, offset: int, nbytes: int) -> int:
        crc, done = 0, 0
        while done < nbytes:
            chunk = os.pread(self._fd, min(_COPY_CHUNK, nbytes - done), offset + done)
            if not chunk:
                raise OSError(f"{self.path}: unexpected end of file at byte {offset + done}")
            crc = _crc32(chunk, crc)
            done += len(chunk)
        return crc

    def _central_directory(self, entries: list, cd_offset: int) -> bytes:
        tm, dt = _dos_time(self._now)
        cd = bytearray()
        for name_b, crc, size, header_offset, _ in entries:
            extra = b""
            size32, off32 = size, header_offset
            fields = []
            if size >= _ZIP64_LIMIT:
                size32 = _ZIP32_MAX
                fields += [size, size]
            if header_offset >= _ZIP64_LIMIT:
                off32 = _ZIP32_MAX
                fields.append(header_offset)
            if fields:
                extra = struct.pack("<HH", 1, 8 * len(fields)) + struct.pack(f"<{len(fields)}Q", *fields)
            cd += _CENTRAL.pack(
                0x02014B50, 45, 45 if extra else 20, 0, 0, tm, dt, crc, size32, size32,
                len(name_b), len(extra), 0, 0, 0, 0o644 << 16, off32,
            ) + name_b + extra
        n = len(entries)
        cd_size = len(cd)
        needs64 = cd_offset >= _ZIP64_LIMIT or n >= 0xFFFF or cd_size >= _ZIP64_LIMIT
        if needs64:
            eocd64_offset = cd_offset + cd_size
            cd += _EOCD64.pack(0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
            cd += _EOCD64_LOC.pack(0x07064B50, 0, eocd64_offset, 1)
        cd += _EOCD.pack(
            0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
            _ZIP32_MAX if cd_size >= _ZIP64_LIMIT else cd_size,
            _ZIP32_MAX if cd_offset >= _ZIP64_LIMIT else cd_offset, 0,
        )
        return bytes(cd)

    # ---- crash recovery ---------------------------------------------------------------------
    def _write_layout(self, committed_rows: int = 0) -> None:
        if self.layout_path is None:
            return
        doc = {
            "data_path": os.path.basename(self.path),
            "members": [asdict(m) for m in self.members.values()],
            "placements": {name: asdict(p) for name, p in self._placements.items()},
            "committed_rows": committed_rows,
            "created": self._now,
            "info": self.recovery_info,
        }
        tmp = self.layout_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.layout_path)

    @classmethod
    def reopen(cls, path: str, layout_path: str) -> tuple["NpzStreamWriter", dict]:
        """Reopen a partial file described by its sidecar, as far as its committed rows."""
        with open(layout_path) as f:
            doc = json.load(f)
        members = [MemberSpec(m["name"], m["dtype"], tuple(m["row_shape"]), m["capacity"]) for m in doc["members"]]
        self = cls.__new__(cls)
        self.path = path
        self.members = {m.name: m for m in members}
        self.layout_path = layout_path
        self.recovery_info = doc.get("info", {})
        self._now = doc["created"]
        self._placements = {name: _Placement(**p) for name, p in doc["placements"].items()}
        rows = int(doc["committed_rows"])
        self._committed = rows
        self._fd = os.open(path, os.O_RDWR)
        size = os.fstat(self._fd).st_size
        for m in members:
            if rows and m.row_bytes and self._placements[m.name].data_offset + rows * m.row_bytes > size:
                os.close(self._fd)
                raise OSError(f"{path}: shorter than its {rows} committed rows")
        self.rows = {m.name: rows for m in members}
        self.crc = {m.name: self._crc_of(self._placements[m.name].data_offset, rows * m.row_bytes) for m in members}
        return self, doc


def _crc_prefix(prefix: bytes, data_crc: int, data_len: int) -> int:
    """CRC-32 of ``prefix + data`` from the CRC-32 of ``data`` alone (zlib's crc32_combine)."""
    return crc32_combine(zlib.crc32(prefix), data_crc, data_len)


# crc32_combine, as in zlib: multiply by x^(8*len) in GF(2) using 32x32 bit matrices.
def _gf2_times(mat: list[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` given ``crc32(A)``, ``crc32(B)`` and ``len(B)``."""
    if len2 <= 0:
        return crc1
    op = [0xEDB88320] + [1 << n for n in range(31)]  # appending one zero bit
    for _ in range(3):
        op = _gf2_square(op)  # one zero byte
    while len2:  # append len2 zero bytes to A, by squaring: O(log len2) matrix products
        if len2 & 1:
            crc1 = _gf2_times(op, crc1)
        len2 >>= 1
        if len2:
            op = _gf2_square(op)
    return crc1 ^ crc2
