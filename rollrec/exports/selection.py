"""Which episodes an export writes, and which of their rows: from the rollout's episode index.

Every exported episode is one (env, episode) of `ReadableRollout.index` (the file's index in
format v2, derived from ``done`` in v1; plain, v2 and sharded rollouts alike), in env order, then
by start. ``episodes`` keeps all of them or those that ended a given way; ``min_return`` those
whose return (the index's exact sum of ``rew``) is at least R.

Rows. An episode's kept rows are ``first_row .. last_row`` (with ``every=k``: row t is recorded
step ``t * k``). When every member an exporter reads is kept for every env and step, all of them
are exported; when one is not (format v2: kept for some envs, or in captured windows), only the
rows that hold every field: its last ``rows`` kept rows, which for a detail env are all of them.
Episodes with no such rows are left out, and counted (`Selection.skipped`). A camera stream
(format v3) holds frames at rows of its own (`rollrec.io.images.CameraFrames.steps`: every row for
a camera kept for every env or a detail env, captured windows otherwise): `keep_rows_held` keeps
the same rule for it, each episode's last rows that hold a frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rollrec.io.protocol import ReadableRollout

#: ``--episodes`` choices.
EPISODE_KINDS = ("all", "terminated", "truncated", "unfinished", "captured")
END_NAMES = ("unfinished", "terminated", "truncated")


@dataclass(frozen=True)
class Episode:
    """One exported episode: env ``env``'s rows ``row_start .. row_stop`` (exclusive) of the rollout.

    ``start``/``stop`` are its recorded steps (the index's), ``end`` how it ended
    (``"terminated"``, ``"truncated"``, ``"unfinished"``), ``ret`` its exact return,
    ``captured`` whether the file holds every field of it, ``index`` its row in the episode index.
    """

    index: int
    env: int
    start: int
    stop: int
    row_start: int
    row_stop: int
    end: str
    ret: float
    captured: bool

    @property
    def length(self) -> int:
        return self.row_stop - self.row_start


@dataclass(frozen=True)
class Selection:
    """The episodes to export, in order, and how many matched but hold no rows of every field."""

    episodes: list[Episode]
    skipped: int

    @property
    def rows(self) -> int:
        return sum(e.length for e in self.episodes)

    @property
    def envs(self) -> list[int]:
        return sorted({e.env for e in self.episodes})

    def note(self) -> str | None:
        """One line for the user about left-out episodes, or None."""
        if not self.skipped:
            return None
        return (f"left out {self.skipped} episode(s) whose rows do not hold every exported field "
                "(kept for some envs or in captured windows only)")


def check_envs(r: ReadableRollout, envs: Sequence[int] | None) -> list[int]:
    """``envs`` as sorted unique ids in ``0..N-1`` (negative counts from the end); all envs when None.
    IndexError naming the env and the range for one out of range."""
    if envs is None:
        return list(range(r.N))
    out = set()
    for e in envs:
        e = int(e)
        if not -r.N <= e < r.N:
            raise IndexError(f"env {e} out of range: {r.path.name} has {r.N} envs (0..{max(r.N - 1, 0)})")
        out.add(e % r.N)
    return sorted(out)


def select_episodes(r: ReadableRollout, *, envs: Sequence[int] | None = None, episodes: str = "all",
                    min_return: float | None = None, keys: Sequence[str] = ()) -> Selection:
    """The episodes of ``r`` to export (see the module docstring); ``keys`` are the per-step members
    the exporter reads (they decide which rows hold every field)."""
    if episodes not in EPISODE_KINDS:
        raise ValueError(f"episodes must be one of {', '.join(EPISODE_KINDS)}; got {episodes!r}")
    chosen = np.zeros(r.N, bool)
    chosen[check_envs(r, envs)] = True
    index = r.index
    keep = chosen[index.env]
    if episodes in END_NAMES:
        keep &= index.end == END_NAMES.index(episodes)
    elif episodes == "captured":
        keep &= index.captured.astype(bool)
    if min_return is not None:
        keep &= index.returns >= float(min_return)
    first, last = index.first_row, index.last_row
    everywhere = all(r.kind(k) == "all" for k in keys)
    row_start = first if everywhere else last - index.rows + 1
    has_rows = last >= row_start
    skipped = int((keep & (last >= first) & ~has_rows).sum())
    picked = np.flatnonzero(keep & has_rows)
    picked = picked[np.lexsort((index.start[picked], index.env[picked]))]
    out = [Episode(index=int(i), env=int(index.env[i]), start=int(index.start[i]), stop=int(index.stop[i]),
                   row_start=int(row_start[i]), row_stop=int(last[i]) + 1, end=END_NAMES[int(index.end[i])],
                   ret=float(index.returns[i]), captured=bool(index.captured[i]))
           for i in picked]
    return Selection(out, skipped)


def keep_rows_held(selection: Selection, held: Callable[[int], np.ndarray]) -> Selection:
    """``selection`` with each episode cut to its last rows held by one more field: ``held(env)``
    are the sorted rows that hold it for ``env``. An episode whose last row it does not hold is
    left out and counted in ``skipped``; one it holds in part keeps its longest held tail."""
    out, skipped, rows_of = [], selection.skipped, {}
    for ep in selection.episodes:
        if ep.env not in rows_of:
            rows_of[ep.env] = np.asarray(held(ep.env), np.int64)
        rows = rows_of[ep.env]
        lo, hi = np.searchsorted(rows, [ep.row_start, ep.row_stop])
        inside = rows[lo:hi]
        if not inside.size or inside[-1] != ep.row_stop - 1:
            skipped += 1
            continue
        offsets = inside - np.arange(inside.size)  # constant along a run of consecutive rows
        breaks = np.flatnonzero(offsets != offsets[-1])
        start = int(inside[breaks[-1] + 1]) if breaks.size else int(inside[0])
        out.append(replace(ep, row_start=start))
    return Selection(out, skipped)


__all__ = ["EPISODE_KINDS", "Episode", "Selection", "check_envs", "keep_rows_held", "select_episodes"]
