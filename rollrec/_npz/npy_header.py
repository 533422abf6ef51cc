"""Parse the header of an ``.npy`` member from bytes, trusting nothing in it.

An ``.npy`` starts with the magic ``\\x93NUMPY``, a version (1.0: 2-byte header length; 2.0 and
3.0: 4-byte length; 3.0 is UTF-8) and a Python dict literal with exactly ``descr`` (a dtype
string), ``fortran_order`` (bool) and ``shape`` (a tuple of ints). This parser caps the header
at `MAX_HEADER_BYTES`, evaluates only literals, refuses structured and sub-array dtypes and
shapes that are not tuples of non-negative ints, and raises `RolloutFormatError` for all of it.
"""

from __future__ import annotations

import ast
import functools
import struct
import warnings
from dataclasses import dataclass

import numpy as np

from rollrec.format.errors import RolloutFormatError

MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 1 << 16
#: Bytes to read to be sure of holding a whole header (magic, version, length, text).
PREFIX_BYTES = 12 + MAX_HEADER_BYTES
MAX_RANK = 32


@dataclass(frozen=True)
class NpyHeader:
    header_len: int  # bytes before the array data (magic included)
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


@functools.lru_cache(maxsize=4096)
def _header_fields(text: str) -> tuple | None:
    """``(shape, fortran_order, descr)`` of a header dict literal; ``()`` if it is another literal,
    None if it is no literal. Cached: members of one rollout often share a header."""
    try:
        with warnings.catch_warnings():  # odd escapes in a hostile header warn; -W error must not make that fatal
            warnings.simplefilter("ignore")
            d = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        return ()
    return d["shape"], d["fortran_order"], d["descr"]


def npy_header_length(buf: bytes) -> int:
    """Bytes the header starting ``buf`` (magic and length fields at least) says it takes."""
    if buf[6] == 1:
        return 10 + struct.unpack_from("<H", buf, 8)[0]
    return 12 + struct.unpack_from("<I", buf, 8)[0]


def parse_npy_header(buf: bytes, where: str, name: str) -> NpyHeader:
    """The header at the start of ``buf`` (which holds at least the whole header, or the whole member)."""
    def bad(why: str) -> RolloutFormatError:
        return RolloutFormatError(f"{where}: member {name!r} is not a valid .npy ({why})")

    if len(buf) < 10 or buf[:6] != MAGIC:
        raise bad("no .npy magic")
    major, minor = buf[6], buf[7]
    if (major, minor) == (1, 0):
        (hlen,), start = struct.unpack_from("<H", buf, 8), 10
    elif (major, minor) in ((2, 0), (3, 0)):
        if len(buf) < 12:
            raise bad("header cut short")
        (hlen,), start = struct.unpack_from("<I", buf, 8), 12
    else:
        raise bad(f"unknown .npy version {major}.{minor}")
    if hlen > MAX_HEADER_BYTES:
        raise bad(f"header of {hlen} bytes; at most {MAX_HEADER_BYTES} are read")
    if start + hlen > len(buf):
        raise bad("header cut short")
    try:
        text = buf[start : start + hlen].decode("utf-8" if major == 3 else "latin1")
    except UnicodeDecodeError:
        raise bad("header is not UTF-8") from None
    fields = _header_fields(text)
    if fields is None:
        raise bad("header is not a Python literal")
    if fields == ():
        raise bad("header must be a dict of descr, fortran_order and shape")
    shape, fortran, descr = fields
    if not isinstance(shape, tuple) or len(shape) > MAX_RANK or not all(type(s) is int and s >= 0 for s in shape):
        raise bad(f"shape {shape!r:.60} is not a tuple of at most {MAX_RANK} sizes >= 0")
    if type(fortran) is not bool:
        raise bad("fortran_order is not a bool")
    if not isinstance(descr, str):
        raise bad(f"descr {descr!r:.60} is not a plain dtype (structured dtypes are not part of the format)")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, OverflowError, SyntaxError, MemoryError):
        raise bad(f"unknown dtype {descr!r:.60}") from None
    if dtype.names is not None or dtype.subdtype is not None:
        raise bad(f"dtype {descr!r:.60} is structured or has a sub-array")
    if dtype.kind == "V":
        raise bad(f"dtype {descr!r:.60} is raw bytes")
    return NpyHeader(start + hlen, tuple(shape), dtype, fortran)
