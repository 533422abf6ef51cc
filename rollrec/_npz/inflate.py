"""Inflate a deflated zip member with bounded output: never more than its header's shape needs.

A deflate stream can expand about 1032:1, so a few MB of file can claim GBs. `inflate` asks
zlib for at most one byte more than allowed at a time (``max_length``), reads the compressed
input in 1 MiB pieces with `os.pread`, and refuses a stream that would go past the limit, ends
early, or fails its CRC-32. Before inflating a whole member it checks the size against the
memory this process may still allocate (`available_memory`).
"""

from __future__ import annotations

import os
import zlib

from rollrec.format.errors import RolloutFormatError
from rollrec._npz.zipdir import Entry

try:  # same values as zlib's, ~5x faster
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover
    crc32 = zlib.crc32

_INPUT_CHUNK = 1 << 20


def inflate(fd: int, path: str, name: str, entry: Entry, stream: int, limit: int, *, whole: bool) -> bytearray:
    """The first ``limit`` inflated bytes of the deflated zip member ``name`` (``entry``, its data
    at ``stream`` in ``fd``). With ``whole``: all of it, which must be exactly ``limit`` bytes
    (what its header's shape needs), end the stream, match the entry's CRC-32 and fit in free
    memory. Without: fewer if the member is shorter (the caller checks the header).
    `RolloutFormatError` (naming ``path`` and ``name``) for anything else."""
    if whole:
        check_memory(path, name, limit)
    try:
        out = bytearray(limit)
    except MemoryError:
        raise RolloutFormatError(f"{path}: member {name!r} needs {limit} bytes of memory to inflate") from None
    view = memoryview(out)
    d = zlib.decompressobj(-15)
    pos, offset, left = 0, stream, entry.compress_size
    past = RolloutFormatError(f"{path}: member {name!r} inflates past the {limit} bytes its header's shape needs")
    try:
        # Whole members read their input to the end, so a stream longer than its shape is caught.
        while left and (whole or pos < limit):
            chunk = os.pread(fd, min(left, _INPUT_CHUNK), offset)
            if not chunk:
                raise RolloutFormatError(f"{path}: member {name!r} is cut short")
            offset, left = offset + len(chunk), left - len(chunk)
            while chunk:
                data = d.decompress(chunk, limit - pos + 1)  # at most one byte more than allowed
                if not data:
                    break
                if pos + len(data) > limit:
                    if whole:
                        raise past
                    data = data[: limit - pos]
                view[pos : pos + len(data)] = data
                pos += len(data)
                chunk = d.unconsumed_tail
                if pos >= limit and not whole:
                    break
        if whole and d.unconsumed_tail:
            raise past
    except zlib.error as exc:
        raise RolloutFormatError(f"{path}: member {name!r} holds damaged compressed data ({exc})") from None
    if not whole:
        return out[:pos]  # the header's checks decide whether a short prefix is enough
    if pos < limit or not d.eof:
        raise RolloutFormatError(f"{path}: member {name!r}'s compressed data ends early")
    if crc32(out) != entry.crc:
        raise RolloutFormatError(f"{path}: member {name!r} fails its CRC-32 check: the file is damaged")
    return out


def available_memory() -> int:
    """Bytes this process may still allocate: the kernel's MemAvailable, capped by RLIMIT_AS/DATA."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 1 << 62
    try:
        import resource

        for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            soft = resource.getrlimit(limit)[0]
            if soft != resource.RLIM_INFINITY:
                avail = min(avail, soft)
    except (ImportError, ValueError, OSError):
        pass
    return avail


def check_memory(path: str, name: str, nbytes: int) -> None:
    """`RolloutFormatError` when ``nbytes`` is more than `available_memory`."""
    avail = available_memory()
    if nbytes > avail:
        raise RolloutFormatError(
            f"{path}: member {name!r} inflates to {nbytes / 1e9:.2f} GB, more than the {avail / 1e9:.2f} GB of "
            "memory free; store the rollout uncompressed (compress=False) so rollrec can memory-map it"
        )
