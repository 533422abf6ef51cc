"""Where each member of a stored ``.npz`` goes: its zip local header, its rows, its capacity.

Members are laid out one after another, the one with the most bytes per row first (it starts the
file, so byte 0 is always a zip header, and it never has to move: see `rollrec._npz.stream`).
Each member's array data starts on a multiple of ``align``: 64 bytes by default, so readers can
memory-map it; a direct-I/O writer would ask for the page size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rollrec._npz import zip_records
from rollrec._npz.zip_records import NPY_HEADER_BYTES

ALIGN = 64
MAX_HEADER_PAD = 60_000  # a local header's padding extra field holds at most 65,535 bytes


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
class Placement:
    """Where a member lives: its zip local header, its first row, and the rows reserved after it."""

    header_offset: int
    data_offset: int
    capacity: int


def file_order(members: Sequence[MemberSpec]) -> list[MemberSpec]:
    """``members`` in file order: the one with the most bytes per row first, the others as given."""
    if not members:
        return []
    first = max(range(len(members)), key=lambda i: members[i].row_bytes)
    return [members[first], *(m for i, m in enumerate(members) if i != first)]


def layout(
    members: Sequence[MemberSpec],
    capacity: Mapping[str, int] | None = None,
    *,
    start: int = 0,
    align: int = ALIGN,
    ordered: bool = False,
) -> dict[str, Placement]:
    """Placements of ``members`` one after another from ``start``, each with room for its rows.

    ``members`` go in `file_order` unless ``ordered`` (they are in file order already).
    """
    placements: dict[str, Placement] = {}
    offset = start
    for m in members if ordered else file_order(members):
        rows = m.capacity if capacity is None else capacity[m.name]
        placements[m.name] = placement_at(m, offset, rows, align)
        offset = placements[m.name].data_offset + rows * m.row_bytes
    return placements


def placement_at(m: MemberSpec, offset: int, rows: int, align: int) -> Placement:
    """``m`` with its local header at ``offset`` and room for ``rows`` rows."""
    name = (m.name + ".npy").encode()
    return Placement(offset, offset + zip_records.local_header_len(name, offset, NPY_HEADER_BYTES, align) + NPY_HEADER_BYTES, rows)


def align_up(offset: int, align: int) -> int:
    """The first multiple of ``align`` at or after ``offset``."""
    return -(-offset // align) * align


def _header_base(m: MemberSpec) -> int:
    """Bytes of ``m``'s local header without padding (room for the zip64 extra included)."""
    return zip_records.local_header_len((m.name + ".npy").encode(), 0, 0, 1)


def header_fits(m: MemberSpec, p: Placement, lowest: int) -> bool:
    """Whether ``p``'s local header starts at or after ``lowest`` and can be written to end where
    its npy header leads into ``p.data_offset`` (padding of 0 or 4 to `MAX_HEADER_PAD` bytes)."""
    pad = p.data_offset - NPY_HEADER_BYTES - p.header_offset - _header_base(m)
    return p.header_offset >= lowest and (pad == 0 or 4 <= pad <= MAX_HEADER_PAD)


def header_before(m: MemberSpec, data_offset: int, lowest: int) -> int:
    """The first offset at or after ``lowest`` where ``m``'s local header can start so that its npy
    header ends at ``data_offset`` (the padding extra field takes up the difference).

    ``lowest`` is where the previous member's rows end: with the data where a one-shot write puts
    it (`placement_at(m, lowest)`), the header is that one's too. ValueError if there is no room.
    """
    base = _header_base(m)
    pad = data_offset - NPY_HEADER_BYTES - lowest - base
    if pad < 0:
        raise ValueError(f"{m.name!r}: no room for a header between byte {lowest} and its data at {data_offset}")
    if pad == 0 or 4 <= pad <= MAX_HEADER_PAD:
        return lowest
    return data_offset - NPY_HEADER_BYTES - base - (0 if pad < 4 else MAX_HEADER_PAD)


def after_collapse(offset: int, ranges: Iterable[tuple[int, int]]) -> int:
    """Where byte ``offset`` lies once the ``(start, length)`` ranges are removed from the file
    (``fallocate(COLLAPSE_RANGE)``, each given in the offsets before any is removed, none
    overlapping); a byte inside a removed range maps to where the range was."""
    return offset - sum(min(length, max(0, offset - start)) for start, length in ranges)
