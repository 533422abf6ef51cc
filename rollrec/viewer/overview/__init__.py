"""The overview tab of the replay: every episode of every env as one table, and the compare tab.

Plain Python, no viser (tested without a browser): `episodes` computes the `Overview` (vectorised,
in blocks of env columns; `overview_from_index` for a format-v2 file), `table` sorts, filters
and pages it, `compare` checks two rollouts share a timeline and diffs their per-env returns.
The viser side: `gui` (the two tabs) and `table_gui` (a table of buttons).

May import: `rollrec.io`, `rollrec.stats` (the verdict of compare mode) and below, and
`rollrec.viewer.plots` (for the tabs' plots); the rest of `rollrec.viewer` imports it, not the
other way round.
"""

from rollrec.viewer.overview.compare import (
    EnvDifferences,
    IncomparableError,
    check_comparable,
    difference_columns,
    env_differences,
)
from rollrec.viewer.overview.episodes import (
    BLOCK_ELEMENTS,
    ENDED_BY,
    TERMINATION,
    TIME_OUT,
    UNFINISHED,
    Overview,
    compute_env_totals,
    compute_overview,
    histogram,
    overview_from_index,
)
from rollrec.viewer.overview.table import Column, TableModel, env_mask, episode_columns, parse_filter

__all__ = [
    "BLOCK_ELEMENTS",
    "ENDED_BY",
    "TERMINATION",
    "TIME_OUT",
    "UNFINISHED",
    "Column",
    "EnvDifferences",
    "IncomparableError",
    "Overview",
    "TableModel",
    "check_comparable",
    "compute_env_totals",
    "compute_overview",
    "difference_columns",
    "env_differences",
    "env_mask",
    "episode_columns",
    "histogram",
    "overview_from_index",
    "parse_filter",
]
