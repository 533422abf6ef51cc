"""The bytes of a stored ``.npz``: npy headers, zip local headers, the central directory, CRCs.

Pure functions, no I/O: `rollrec._npz.stream` decides where each record goes.

- A member is ``[zip local header | padding extra][npy header][array data]``. The local header
  always has room for a zip64 extra field (20 bytes): when the member turns out small that room
  becomes part of the padding extra (id ``0xD935``, as Android's zipalign uses), so a member's
  data offset never depends on its final size.
- The npy header has a fixed length (`NPY_HEADER_BYTES`), so the array data starts at a
  multiple of the layout's alignment (64 bytes, or the page size for direct I/O).
- Zip64 records are written where a size, an offset or the member count needs them.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Sequence

import numpy as np

NPY_HEADER_BYTES = 192  # reserved npy header length (magic included), a multiple of 64
ZIP64_LIMIT = 0xFFFF_FFFF  # sizes/offsets from here on need zip64 records
_ZIP32_MAX = 0xFFFF_FFFF  # the 32-bit field value meaning "see the zip64 extra field"
LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_EOCD64_LOC = struct.Struct("<IIQI")
_ZIP64_EXTRA_BYTES = 20
_PAD_EXTRA_ID = 0xD935


def npy_header(dtype: np.dtype | str, shape: Sequence[int], length: int | None = None, align: int = 64) -> bytes:
    """An npy v1/v2 header for a C-ordered array, padded to ``length`` bytes (or to ``align``)."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    body = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(int(s) for s in shape)!r}, }}"
    raw = body.encode("latin1")
    for version, prefix_len, fmt in ((1, 10, "<H"), (2, 12, "<I")):
        need = prefix_len + len(raw) + 1
        total = length if length is not None else -(-need // align) * align
        if need <= total and (version == 2 or total - prefix_len < 0x10000):
            pad = total - need
            return (
                b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, total - prefix_len)
                + raw + b" " * pad + b"\n"
            )
    raise ValueError(f"npy header for shape {tuple(shape)} does not fit in {length} bytes")


def dos_time(now: float) -> tuple[int, int]:
    """``(time, date)`` in the zip format's MS-DOS encoding."""
    t = time.localtime(now)
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = (max(t.tm_year, 1980) - 1980) << 9 | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


def local_header_len(name: bytes, start: int, data_prefix: int, align: int) -> int:
    """Length of a local header at ``start`` such that ``data_prefix`` bytes later lands on ``align``.

    Room for the zip64 extra is always included (see the module docstring).
    """
    base = LOCAL.size + len(name) + _ZIP64_EXTRA_BYTES
    pad = (-(start + base + data_prefix)) % align
    if 0 < pad < 4:  # a padding extra field needs 4 bytes of its own
        pad += align
    return base + pad


def local_header(name: bytes, crc: int, size: int, length: int, now: float) -> bytes:
    """Local file header of a stored member of ``size`` bytes, exactly ``length`` bytes long."""
    zip64 = size >= ZIP64_LIMIT
    extra = struct.pack("<HHQQ", 1, 16, size, size) if zip64 else b""
    pad = length - LOCAL.size - len(name) - len(extra)
    if pad:
        if pad < 4:
            raise AssertionError("local header padding must be 0 or at least 4 bytes")
        extra += struct.pack("<HH", _PAD_EXTRA_ID, pad - 4) + b"\0" * (pad - 4)
    tm, dt = dos_time(now)
    size32 = _ZIP32_MAX if zip64 else size
    return LOCAL.pack(
        0x04034B50, 45 if zip64 else 20, 0, 0, tm, dt, crc, size32, size32, len(name), len(extra)
    ) + name + extra


def central_directory(entries: Sequence[tuple[bytes, int, int, int]], cd_offset: int, now: float) -> bytes:
    """Central directory and end records for ``entries`` ``(name, crc, size, header_offset)``."""
    tm, dt = dos_time(now)
    cd = bytearray()
    for name_b, crc, size, header_offset in entries:
        extra = b""
        size32, off32 = size, header_offset
        fields = []
        if size >= ZIP64_LIMIT:
            size32 = _ZIP32_MAX
            fields += [size, size]
        if header_offset >= ZIP64_LIMIT:
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
    if cd_offset >= ZIP64_LIMIT or n >= 0xFFFF or cd_size >= ZIP64_LIMIT:
        eocd64_offset = cd_offset + cd_size
        cd += _EOCD64.pack(0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
        cd += _EOCD64_LOC.pack(0x07064B50, 0, eocd64_offset, 1)
    cd += _EOCD.pack(
        0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
        _ZIP32_MAX if cd_size >= ZIP64_LIMIT else cd_size,
        _ZIP32_MAX if cd_offset >= ZIP64_LIMIT else cd_offset, 0,
    )
    return bytes(cd)


def crc_with_prefix(prefix: bytes, data_crc: int, data_len: int) -> int:
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


#: _ZEROS[k]: the operator appending 2**k zero bytes to a CRC, built as far as needed and kept.
_ZEROS: list[list[int]] = []


def _zeros_operator(k: int) -> list[int]:
    if not _ZEROS:
        op = [0xEDB88320] + [1 << n for n in range(31)]  # appending one zero bit
        for _ in range(3):
            op = _gf2_square(op)
        _ZEROS.append(op)  # one zero byte
    while len(_ZEROS) <= k:
        _ZEROS.append(_gf2_square(_ZEROS[-1]))
    return _ZEROS[k]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` given ``crc32(A)``, ``crc32(B)`` and ``len(B)``.

    Appends ``len2`` zero bytes to A's CRC one set bit of ``len2`` at a time (the operators
    for 2**k zero bytes are computed once per process), then adds B's.
    """
    k = 0
    while len2 > 0:
        if len2 & 1:
            crc1 = _gf2_times(_zeros_operator(k), crc1)
        len2 >>= 1
        k += 1
    return crc1 ^ crc2
