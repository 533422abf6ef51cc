"""Read the central directory of a zip archive from an open descriptor, trusting nothing in it.

A rollout is read from untrusted files, so this parser checks every size and offset against the
file before using it and raises `RolloutFormatError` (naming the file) for anything it cannot
read; it never raises another exception for a malformed archive. It reads only what it needs:
the end of the file (end record, zip64 locator and record) and the directory, with `os.pread`.

Refused: archives spanning disks, more than `MAX_ENTRIES` entries, a directory larger than
`MAX_DIRECTORY_BYTES`, entries outside the file, names that are not valid UTF-8 when flagged so.
What an entry's flags and method mean for reading it is left to the caller.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from rollrec.format.errors import RolloutFormatError

MAX_ENTRIES = 1 << 20
MAX_DIRECTORY_BYTES = 256 << 20
_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory record
_EOCD64_LOC = struct.Struct("<IIQI")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD_SIG, _EOCD64_LOC_SIG, _EOCD64_SIG, _CENTRAL_SIG = 0x06054B50, 0x07064B50, 0x06064B50, 0x02014B50
_MAX_COMMENT = 0xFFFF
_TAIL_GUESS = 4096
FLAG_ENCRYPTED = 0x1
FLAG_UTF8 = 0x800


@dataclass(frozen=True)
class Entry:
    """One central directory entry: where the member's local header is and what it holds."""

    name: str
    method: int  # 0 stored, 8 deflated, ...
    flags: int
    version_needed: int  # e.g. 45 for zip 4.5
    crc: int
    compress_size: int
    file_size: int
    header_offset: int


def pread_exact(fd: int, size: int, offset: int, where: str, what: str) -> bytes:
    """``size`` bytes at ``offset``, or `RolloutFormatError` saying ``what`` is cut short."""
    if offset < 0 or size < 0:
        raise RolloutFormatError(f"{where}: {what} is at an impossible offset ({offset})")
    data = os.pread(fd, size, offset) if size else b""
    while len(data) < size:  # pread may return less than asked only at the end of the file
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            raise RolloutFormatError(f"{where}: {what} is cut short (the file ends at byte {offset + len(data)})")
        data += more
    return data


def read_directory(fd: int, file_size: int, where: str) -> tuple[list[Entry], int]:
    """The entries of the zip archive open as ``fd`` (``file_size`` bytes), and where its directory starts."""
    # The end record is usually the last 22 bytes (no comment): one small read, then the longest
    # a comment allows if that misses.
    for tail_len in (min(file_size, _TAIL_GUESS), min(file_size, _EOCD.size + _MAX_COMMENT)):
        tail = pread_exact(fd, tail_len, file_size - tail_len, where, "the end of the archive")
        pos = _find_end_record(tail)
        if pos is not None or tail_len == file_size:
            break
    if pos is None:
        raise RolloutFormatError(f"{where}: not a zip archive, so not an .npz rollout")
    eocd_at = file_size - tail_len + pos
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
    if disk != 0 or cd_disk != 0:
        raise RolloutFormatError(f"{where}: a zip archive spanning several disks; rollrec reads single files")
    if eocd_at >= _EOCD64_LOC.size:
        loc = pread_exact(fd, _EOCD64_LOC.size, eocd_at - _EOCD64_LOC.size, where, "the zip64 locator")
        sig, _, eocd64_at, _ = _EOCD64_LOC.unpack(loc)
        if sig == _EOCD64_LOC_SIG:
            if eocd64_at > eocd_at - _EOCD64_LOC.size - _EOCD64.size:
                raise RolloutFormatError(f"{where}: damaged zip64 locator (record at {eocd64_at})")
            rec = pread_exact(fd, _EOCD64.size, eocd64_at, where, "the zip64 end record")
            sig64, _, _, _, disk, cd_disk, _, entries, cd_size, cd_offset = _EOCD64.unpack(rec)
            if sig64 != _EOCD64_SIG:
                raise RolloutFormatError(f"{where}: damaged zip64 end record")
            if disk != 0 or cd_disk != 0:
                raise RolloutFormatError(f"{where}: a zip archive spanning several disks; rollrec reads single files")
            eocd_at = eocd64_at
    if entries > MAX_ENTRIES:
        raise RolloutFormatError(f"{where}: the zip directory lists {entries} members; rollrec reads at most {MAX_ENTRIES}")
    if cd_size > MAX_DIRECTORY_BYTES:
        raise RolloutFormatError(f"{where}: the zip directory is {cd_size} bytes; rollrec reads at most {MAX_DIRECTORY_BYTES}")
    if cd_offset + cd_size > eocd_at or entries * _CENTRAL.size > cd_size:
        raise RolloutFormatError(
            f"{where}: damaged zip directory ({entries} entries in {cd_size} bytes at {cd_offset}, end record at {eocd_at})"
        )
    data = pread_exact(fd, cd_size, cd_offset, where, "the zip directory")
    out, p = [], 0
    for i in range(entries):
        entry, p = _parse_entry(data, p, where, i)
        if entry.header_offset + 30 > cd_offset:
            raise RolloutFormatError(f"{where}: member {entry.name!r} starts past the zip directory")
        out.append(entry)
    return out, cd_offset


def _find_end_record(tail: bytes) -> int | None:
    """Offset in ``tail`` of the last end record whose comment runs exactly to the end."""
    end = len(tail)
    while True:
        pos = tail.rfind(b"PK\x05\x06", 0, end)
        if pos < 0:
            return None
        if pos + _EOCD.size <= len(tail) and pos + _EOCD.size + _EOCD.unpack_from(tail, pos)[-1] == len(tail):
            return pos
        end = pos + 3  # look further back (rfind's end is exclusive of the match's last byte)
        if end <= 3:
            return None


def _parse_entry(data: bytes, p: int, where: str, index: int) -> tuple[Entry, int]:
    if p + _CENTRAL.size > len(data):
        raise RolloutFormatError(f"{where}: zip directory entry {index} is cut short")
    (sig, _, version_needed, flags, method, _, _, crc, csize, usize,
     name_len, extra_len, comment_len, disk, _, _, offset) = _CENTRAL.unpack_from(data, p)
    if sig != _CENTRAL_SIG:
        raise RolloutFormatError(f"{where}: damaged zip directory (entry {index} has no signature)")
    start = p + _CENTRAL.size
    end = start + name_len + extra_len + comment_len
    if end > len(data):
        raise RolloutFormatError(f"{where}: zip directory entry {index} is cut short")
    raw_name = data[start : start + name_len]
    try:
        name = raw_name.decode("utf-8") if flags & FLAG_UTF8 else raw_name.decode("cp437")
    except UnicodeDecodeError:
        raise RolloutFormatError(f"{where}: zip directory entry {index} has a name that is not valid UTF-8") from None
    extra = data[start + name_len : start + name_len + extra_len]
    usize, csize, offset, disk = _zip64_values(extra, usize, csize, offset, disk, where, name)
    if disk != 0:
        raise RolloutFormatError(f"{where}: member {name!r} is on another disk; rollrec reads single files")
    return Entry(name, method, flags, version_needed, crc, csize, usize, offset), end


def _zip64_values(extra: bytes, usize: int, csize: int, offset: int, disk: int, where: str, name: str):
    """Replace the saturated 32-bit fields with the zip64 extra field's 64-bit values."""
    want = [usize == 0xFFFFFFFF, csize == 0xFFFFFFFF, offset == 0xFFFFFFFF, disk == 0xFFFF]
    if not any(want):
        return usize, csize, offset, disk
    p = 0
    while p + 4 <= len(extra):
        field_id, size = struct.unpack_from("<HH", extra, p)
        body = extra[p + 4 : p + 4 + size]
        if len(body) < size:
            break
        if field_id == 0x0001:
            values = [usize, csize, offset, disk]
            q = 0
            for i, needed in enumerate(want):
                if not needed:
                    continue
                width = 4 if i == 3 else 8
                if q + width > len(body):
                    raise RolloutFormatError(f"{where}: member {name!r} has a damaged zip64 field")
                values[i] = int.from_bytes(body[q : q + width], "little")
                q += width
            return tuple(values)
        p += 4 + size
    raise RolloutFormatError(f"{where}: member {name!r} needs a zip64 field and has none")
