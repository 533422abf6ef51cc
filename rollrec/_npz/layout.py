"""Where each member of a stored ``.npz`` goes: its zip local header, its rows, its capacity.

Members are laid out one after another, the one with the most bytes per row first (it starts the
file, so byte 0 is always a zip header, and it never has to move: see `rollrec._npz.stream`).
Each member's array data starts on a multiple of ``align``: 64 bytes by default, so readers can
memory-map it; a direct-I/O writer would ask for the page size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rollrec._npz import zip_records
from rollrec._npz.zip_records import NPY_HEADER_BYTES

ALIGN = 64


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
