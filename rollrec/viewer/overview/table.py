"""A sortable, filterable, paged table over numpy columns, as plain Python.

`TableModel` holds the columns (one ``[R]`` array each), the sort column and direction, a
row filter (a boolean mask) and the page; `page_rows` gives the rows on screen, `cells` their
text. Sorting is one stable ``argsort`` of the filtered rows, redone only when the sort or the
filter changes, so paging through 100k rows costs nothing. `parse_filter` turns what the user
types ("0-99 <0 energy") into a mask over an `Overview`. The GUI (`table_gui`) draws it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rollrec.viewer.overview.episodes import ENDED_BY, Overview


@dataclass(frozen=True)
class Column:
    """One column: ``name`` (the header), ``values`` ``[R]`` (what it sorts by) and
    ``text(row) -> str`` (what a cell shows)."""

    name: str
    values: np.ndarray
    text: Callable[[int], str]


class TableModel:
    """Rows ``0..R-1`` of ``columns`` (all of length R), ``page_size`` at a time."""

    def __init__(self, columns: Sequence[Column], *, page_size: int = 12, sort_by: str | None = None,
                 descending: bool = False):
        if not columns:
            raise ValueError("a table needs at least one column")
        self.columns = {c.name: c for c in columns}
        lengths = {len(c.values) for c in columns}
        if len(lengths) != 1:
            raise ValueError(f"columns differ in length: {sorted(lengths)}")
        self.num_rows = lengths.pop()
        self.page_size = max(1, int(page_size))
        self.sort_by = sort_by or columns[0].name
        if self.sort_by not in self.columns:
            raise ValueError(f"unknown column {self.sort_by!r}")
        self.descending = descending
        self.page = 0
        self._mask: np.ndarray | None = None
        self._order: np.ndarray | None = None

    # ---- sorting and filtering -------------------------------------------------------------
    def sort(self, name: str) -> None:
        """Sort by column ``name``; the same column again flips the direction. Back to page 1."""
        if name not in self.columns:
            raise ValueError(f"unknown column {name!r}; columns: {', '.join(self.columns)}")
        if name == self.sort_by:
            self.descending = not self.descending
        else:
            self.sort_by, self.descending = name, False
        self._order, self.page = None, 0

    def set_filter(self, mask: np.ndarray | None) -> None:
        """Show only the rows where ``mask`` ``[R]`` is True (None: all rows). Back to page 1."""
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (self.num_rows,):
                raise ValueError(f"filter mask must have shape ({self.num_rows},), got {mask.shape}")
        self._mask, self._order, self.page = mask, None, 0

    @property
    def filter_mask(self) -> np.ndarray | None:
        """The row filter (`set_filter`), None when every row shows."""
        return self._mask

    def order(self) -> np.ndarray:
        """``[R']`` the rows that pass the filter, in display order (ties by row index)."""
        if self._order is None:
            rows = np.arange(self.num_rows) if self._mask is None else np.flatnonzero(self._mask)
            keys = self.columns[self.sort_by].values[rows].astype(np.float64)
            self._order = rows[np.argsort(-keys if self.descending else keys, kind="stable")]
        return self._order

    def __len__(self) -> int:
        """Rows that pass the filter."""
        return len(self.order())

    # ---- paging ----------------------------------------------------------------------------
    @property
    def num_pages(self) -> int:
        return max(1, -(-len(self) // self.page_size))

    def turn(self, delta: int) -> int:
        """Go ``delta`` pages forward (negative: back), clamped; returns the page (0-based)."""
        self.page = min(max(self.page + int(delta), 0), self.num_pages - 1)
        return self.page

    def page_rows(self) -> np.ndarray:
        """The rows on the current page, in display order."""
        lo = self.page * self.page_size
        return self.order()[lo : lo + self.page_size]

    def cells(self, row: int) -> list[str]:
        """The text of each cell of ``row``, column order."""
        return [c.text(int(row)) for c in self.columns.values()]

    def page_status(self) -> str:
        """E.g. ``rows 13-24 of 1,402 · page 2 / 117``."""
        n = len(self)
        if n == 0:
            return "no rows match"
        lo = self.page * self.page_size
        return f"rows {lo + 1:,}-{min(lo + self.page_size, n):,} of {n:,} · page {self.page + 1} / {self.num_pages}"


# ---- the episode table ------------------------------------------------------------------------
def signed(x: float, digits: int = 2) -> str:
    """``x`` with its sign, e.g. ``+1.50``, ``-0.25``."""
    return f"{x:+.{digits}f}"


def _short(name: str, width: int = 11) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def episode_columns(ov: Overview) -> list[Column]:
    """The columns of the overview's episode table: Env, Ep, Return, Steps, End, Worst term (and
    Detail, for a file that keeps every field for some envs or episodes only)."""
    names = ov.term_names

    def worst_text(i: int) -> str:
        w = int(ov.worst_term[i])
        return "none" if w < 0 else f"{_short(names[w])} {signed(ov.worst_value[i], 1)}"

    # Sort keys: the worst term sorts by its (negative) sum, so "most negative first" is ascending.
    columns = [
        Column("Env", ov.env, lambda i: str(int(ov.env[i]))),
        Column("Ep", ov.episode, lambda i: str(int(ov.episode[i]) + 1)),
        Column("Return", ov.ret, lambda i: signed(float(ov.ret[i]))),
        Column("Steps", ov.length, lambda i: str(int(ov.stop[i] - ov.start[i]))),
        Column("End", ov.ended, lambda i: END_LABELS[int(ov.ended[i])]),
        Column("Worst term", ov.worst_value, worst_text),
    ]
    if ov.detail is not None:  # a file that keeps every field for some envs or episodes only
        columns.append(Column("Detail", ov.detail, lambda i: "every field" if ov.detail[i] else "light"))
    return columns


_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_BOUND = re.compile(r"^(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")
FILTER_HELP = ("env numbers or ranges (12, 0-99), return bounds (<0, >=50), how it ended (terminated, "
               "time-out, unfinished), a reward term (energy)")
#: How the table (End column) and the "Ended by" list name each end (`Overview.ended`'s codes 0, 1, 2).
END_LABELS: tuple[str, ...] = ("unfinished", "terminated", "time-out")
#: Words for an end, in the filter and for ``ended=``: the table's, `ENDED_BY`'s, ``timeout``.
END_WORDS: dict[str, int] = {**{w: i for i, w in enumerate(ENDED_BY)}, **{w: i for i, w in enumerate(END_LABELS)},
                             "timeout": 2}


def parse_filter(text: str, ov: Overview, ended: str = "any") -> np.ndarray:
    """``[E]`` bool mask of the episodes matching ``text`` and ``ended``.

    ``text`` holds space- or comma-separated tokens: env numbers and ranges (``12``,
    ``0-99``; any of them matches), return bounds (``<0``, ``>=50``; all must hold), ends
    (`END_WORDS`: ``terminated``, ``time-out``, ``unfinished``; any of them matches) and other
    words (all must be part of the name of the episode's worst term). ``ended`` is "any" or one of
    `END_WORDS`. Raises ValueError naming a token it cannot read (or a reversed range).
    """
    mask = np.ones(len(ov), dtype=bool)
    if ended != "any":
        if ended not in END_WORDS:
            raise ValueError(f"unknown end {ended!r}; choose any, {', '.join(END_LABELS)}")
        mask &= ov.ended == END_WORDS[ended]
    envs = np.zeros(len(ov), dtype=bool)
    any_env = False
    ends = np.zeros(len(ov), dtype=bool)
    any_end = False
    names = np.array([n.lower() for n in ov.term_names] + [""])  # index -1: no negative term
    for token in filter(None, re.split(r"[\s,]+", text.strip())):
        token = token.lower()
        if m := _RANGE.match(token):
            a, b = _env_range(token, m)
            envs |= (ov.env >= a) & (ov.env <= b)
            any_env = True
        elif token in END_WORDS:
            ends |= ov.ended == END_WORDS[token]
            any_end = True
        elif m := _BOUND.match(token):
            op, x = m.group(1), float(m.group(2))
            mask &= {"<": ov.ret < x, "<=": ov.ret <= x, ">": ov.ret > x, ">=": ov.ret >= x}[op]
        elif re.fullmatch(r"[a-z_][\w.\-]*", token):
            hits = np.array([token in n for n in names])
            if not hits[:-1].any():
                raise ValueError(f"no reward term matches {token!r}; terms: {', '.join(ov.term_names)}")
            mask &= hits[ov.worst_term.astype(np.int64)]
        else:
            raise ValueError(f"cannot read {token!r} in the filter; use {FILTER_HELP}")
    if any_end:
        mask &= ends
    return mask & envs if any_env else mask


def _env_range(token: str, m: re.Match) -> tuple[int, int]:
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) is not None else a
    if b < a:
        raise ValueError(f"env range {token} is reversed; write {b}-{a}")
    return a, b


def env_mask(text: str, num_envs: int) -> np.ndarray:
    """``[N]`` bool mask of the envs named in ``text`` (numbers and ranges like ``0-99``,
    space- or comma-separated); all envs when ``text`` is blank. Raises ValueError otherwise."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens:
        return np.ones(num_envs, dtype=bool)
    mask = np.zeros(num_envs, dtype=bool)
    for token in tokens:
        m = _RANGE.match(token)
        if not m:
            raise ValueError(f"cannot read {token!r}: give env numbers or ranges, e.g. 12 or 0-99")
        a, b = _env_range(token, m)
        mask[a : b + 1] = True
    return mask
