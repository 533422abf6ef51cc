"""Rollout format v2: a v1 file whose volume was controlled when it was recorded.

`Recorder` options (``envs=``, ``every=``, ``capture=``, and ``fields=`` or ``dtypes=`` when
they leave v1) write files that keep some fields for some envs only, one step in k, or the last
steps of chosen episodes only. Everything in `rollrec.format.v1` holds, with these changes;
``meta["format_version"]`` is 2. A recorder writes v1 whenever the file satisfies v1 (e.g.
``dtypes={"obs": float16}`` alone), the way numpy's ``.npy`` writer picks the oldest header
version that holds an array: such files stay readable by every rollrec. Readers of v2 read v1.

Members
-------
Each per-step member has one of three layouts; ``meta`` says which:

==================  ==============================  ===========================================
layout              shape                           named in
==================  ==============================  ===========================================
every env           ``[T, N, ...]``                 (default)
some envs           ``[T, len(ids), ...]``          ``meta["env_ids"][member]`` = ids: column j
                                                    holds env ``ids[j]`` (sorted, unique, 0..N-1)
episode windows     ``[R, ...]`` (no env axis)      ``meta["windows"]["members"]``: rows of
                                                    captured episodes, one episode after another
==================  ==============================  ===========================================

``rew``, ``done``, ``truncated``, ``base_pos`` and ``base_quat`` are required (in any layout);
``obs``, ``act`` and ``rew_terms`` may be absent (``fields=``); ``rew_terms`` may be any float
(``rew_term_names`` is empty without it). All window members hold the same R rows.

The episode index: ``episodes`` int64 ``[E, 7]`` and ``episode_return`` float64 ``[E]``, present
whenever ``every``, ``env_ids`` or ``windows`` is. One row per episode of every env (detail or
not), in the order they ended (by stop, then env), then the episodes still running when the
recording ended (by env). Columns (``meta["episode_columns"]``):

- ``env``; ``start``, ``stop``: recorded steps (row t of a member is recorded step ``t * k``),
  stop exclusive. An episode under way when the recording began starts at 0 (its return then
  covers the recorded steps only);
- ``end``: 0 still running when the recording ended, 1 terminated, 2 truncated (time limit);
- ``captured``: 1 when its rows hold every field (a detail env, a captured episode, or every
  episode of a file without ``env_ids``/``windows``);
- ``row``: the first of its rows in the window members, or -1;
- ``rows``: how many of its last kept rows hold every field. Its kept rows are
  ``ceil(start / k) .. (stop - 1) // k``; with ``windows`` they are ``min(W, kept)`` for a
  captured episode (0 otherwise) and lie at ``row .. row + rows - 1`` of the window members.

``episode_return`` is the sum of every recorded step's reward, in float64, before any dtype
cast or folding (exact, also with ``every``).

``meta``
--------
- ``every`` (int k >= 1, default 1): each row stands for k recorded steps, the first of them;
  ``dt`` is k times the recording's step. Rows hold that step's values, but ``rew`` and
  ``rew_terms`` are summed over the k steps and ``done`` and ``truncated`` are OR-ed over them
  (a row's ``done`` is set if an episode ended during its k steps). ``recorded_steps``: how many
  steps were recorded (at most ``T * k``; absent in a recovered file).
- ``env_ids``: ``{member: [env ids]}`` (see the table).
- ``windows``: ``{"members": [...], "window": W, "capture": how episodes were chosen}``.
- ``episode_columns``: the column names above, with the index.
- ``volume``: the options as given (for people; readers use the entries above).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.images import StreamSpec, cameras, check_stream_members, is_image_member
from rollrec.format.v1 import (
    INDEX_KEYS,
    OPTIONAL_RANKS,
    REQUIRED_RANKS,
    STATIC_KEYS,
    check_member_rows,
    check_named_members,
)

COLUMNS = ("env", "start", "stop", "end", "captured", "row", "rows")
#: Most recorded steps a file may describe (``T * every``): every step and row index then fits
#: int64 with room for the sums the checks make.
MAX_STEPS = 2**62
#: Members a v2 file must hold (in any layout).
REQUIRED_V2 = ("rew", "done", "truncated", "base_pos", "base_quat")


class Layout:
    """How the members of a v2 file (or a v1 one: every member ``[T, N, ...]``) are laid out.

    Cameras (format v3, `rollrec.format.images`): ``cameras`` maps each to its `StreamSpec`; its
    logical member ``images/<cam>`` may be named in ``env_ids`` and ``windows`` like any member,
    and its frames are stored in its packets and index members.
    """

    def __init__(self, meta: Mapping[str, Any], where: str):
        self.version = int(meta["format_version"])
        self.T, self.N = int(meta["num_steps"]), int(meta["num_envs"])
        self.every = meta.get("every", 1)
        if type(self.every) is not int or not 1 <= self.every <= MAX_STEPS // max(self.T, 1):
            raise RolloutFormatError(f"{where}: meta 'every' must be an integer >= 1 with {self.T} rows of it at most "
                                     f"2**62 steps, got {self.every!r:.40}")
        recorded = meta.get("recorded_steps", self.T * self.every)
        if type(recorded) is not int or (not (self.T - 1) * self.every < recorded <= self.T * self.every and self.T):
            raise RolloutFormatError(f"{where}: meta 'recorded_steps' {recorded!r:.40} does not fit {self.T} rows of {self.every}")
        self.recorded_steps = recorded
        self.env_ids: dict[str, np.ndarray] = {
            name: _env_ids(ids, name, self.N, where)
            for name, ids in _mapping(meta.get("env_ids", {}), "env_ids", where).items()
        }
        windows = meta.get("windows")
        self.window_members: tuple[str, ...] = ()
        self.window = None
        if windows is not None:
            self.window_members, self.window = _windows(windows, where)
        if set(self.window_members) & set(self.env_ids):
            raise RolloutFormatError(f"{where}: a member cannot be in both 'env_ids' and 'windows'")
        self.has_index = self.every > 1 or bool(self.env_ids) or windows is not None
        columns = meta.get("episode_columns", [])
        if self.has_index and (not isinstance(columns, list) or columns != list(COLUMNS)):
            raise RolloutFormatError(f"{where}: meta 'episode_columns' must be {list(COLUMNS)}")
        if self.version == 1 and self.has_index:
            raise RolloutFormatError(f"{where}: 'every', 'env_ids' and 'windows' need format version 2")
        self.cameras: dict[str, StreamSpec] = cameras(meta, where)
        self._logical = {"images/" + c for c in self.cameras}
        self.R = 0

    def kind(self, name: str) -> str:
        """``"all"``, ``"detail"`` or ``"window"``: the layout of per-step member ``name``."""
        return "window" if name in self.window_members else "detail" if name in self.env_ids else "all"

    def check(self, shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, np.dtype], where: str) -> None:
        """`RolloutFormatError` unless the members follow this layout and the v2 rules (see the module docstring)."""
        for name in (*self.env_ids, *self.window_members):
            if name not in shapes and name not in self._logical:
                raise RolloutFormatError(f"{where}: meta names member {name!r}, which the file does not hold")
        for key in REQUIRED_V2:
            if key not in shapes:
                raise RolloutFormatError(f"{where}: missing required key {key!r}")
        check_stream_members(self.cameras, shapes, dtypes, where)
        rows = {shapes[m][0] for m in self.window_members if m not in self._logical and len(shapes[m])}
        if len(rows) > 1:
            raise RolloutFormatError(f"{where}: the window members hold different numbers of rows")
        self.R = rows.pop() if rows else 0
        for key, shape in shapes.items():
            if key not in STATIC_KEYS and key not in INDEX_KEYS and not is_image_member(key):
                self._check_member(key, shape, dtypes[key], where)
        check_named_members(shapes, dtypes, shapes["rew_terms"][-1] if "rew_terms" in shapes else 0, where)
        if self.has_index:
            _check_index(shapes, dtypes, where)

    def _check_member(self, key: str, shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
        """A per-step member's leading axes (its layout's), rank and rows."""
        kind = self.kind(key)
        lead = (self.R,) if kind == "window" else (self.T, len(self.env_ids[key]) if kind == "detail" else self.N)
        rank = REQUIRED_RANKS.get(key, OPTIONAL_RANKS.get(key))
        if rank is not None and len(shape) != rank - (kind == "window"):
            raise RolloutFormatError(f"{where}: {key!r} must have rank {rank - (kind == 'window')}, got shape {shape}")
        if tuple(shape[: len(lead)]) != lead:
            what = "[R, ...] (window rows)" if kind == "window" else f"[{lead[0]}, {lead[1]}, ...]"
            raise RolloutFormatError(f"{where}: {key!r} must be {what}, got shape {shape}")
        check_member_rows(key, shape, dtype, where)


def _env_ids(ids: Any, name: str, N: int, where: str) -> np.ndarray:
    """``meta["env_ids"][name]`` as sorted unique int64 ids in ``0..N-1``, or `RolloutFormatError`."""
    arr = np.asarray(ids)
    if not isinstance(ids, list) or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise RolloutFormatError(f"{where}: meta 'env_ids'[{name!r}] must be a list of env ids")
    if arr.size and (arr.min() < 0 or arr.max() >= N):  # on the ids as given: a cast could wrap them
        raise RolloutFormatError(f"{where}: meta 'env_ids'[{name!r}] must be sorted unique ids in 0..{N - 1}")
    arr = arr.astype(np.int64)
    if arr.size and (np.diff(arr) <= 0).any():
        raise RolloutFormatError(f"{where}: meta 'env_ids'[{name!r}] must be sorted unique ids in 0..{N - 1}")
    return arr


def _windows(windows: Any, where: str) -> tuple[tuple[str, ...], int]:
    """``(members, window)`` of ``meta["windows"]``, or `RolloutFormatError`."""
    w = _mapping(windows, "windows", where)
    members, size = w.get("members"), w.get("window")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise RolloutFormatError(f"{where}: meta 'windows' must list its 'members'")
    if type(size) is not int or not 1 <= size <= MAX_STEPS:
        raise RolloutFormatError(f"{where}: meta 'windows' 'window' must be an integer in 1..2**62")
    return tuple(members), size


def _check_index(shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, np.dtype], where: str) -> None:
    """The episode index members: ``episodes`` int64 ``[E, 7]``, ``episode_return`` float64 ``[E]``."""
    if "episodes" not in shapes or "episode_return" not in shapes:
        raise RolloutFormatError(f"{where}: missing the episode index ('episodes', 'episode_return')")
    E = shapes["episodes"][0] if shapes["episodes"] else -1
    if shapes["episodes"] != (E, len(COLUMNS)) or dtypes["episodes"] != np.int64:
        raise RolloutFormatError(f"{where}: 'episodes' must be int64 [E, {len(COLUMNS)}], got "
                                 f"{dtypes['episodes']} {shapes['episodes']}")
    if shapes["episode_return"] != (E,) or dtypes["episode_return"] != np.float64:
        raise RolloutFormatError(f"{where}: 'episode_return' must be float64 [{E}], got "
                                 f"{dtypes['episode_return']} {shapes['episode_return']}")


def _mapping(value: Any, name: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise RolloutFormatError(f"{where}: meta {name!r} must be an object")
    return value


__all__ = ["COLUMNS", "MAX_STEPS", "REQUIRED_V2", "Layout"]
