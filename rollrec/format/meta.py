"""``meta``: the JSON object every rollout file holds, made, encoded and decoded.

The entries ``meta`` must and may hold are specified with the members, in `rollrec.format.v1`
(and `rollrec.format.v2`). This module holds the codec both sides share:

- writers make ``meta`` with `make_meta` (the entries rollrec derives from the data) and add the
  caller's entries through `user_meta` (plain JSON, checked when given, never at close;
  `DERIVED_META` refused); `encode_meta` stores it as a 0-d unicode array;
- readers decode it with `decode_meta`, which refuses anything outside the spec with
  `RolloutFormatError`: not JSON, not an object, nested deeper than `MAX_META_DEPTH`, longer
  than `MAX_META_BYTES`, a version outside `READ_VERSIONS`, a ``dt`` that is not a finite number
  > 0, ``num_steps``/``num_envs`` that are not integers >= 0, a ``quat_order`` other than wxyz.

The format version (``meta["format_version"]``): `FORMAT_VERSION` is the newest written and
read; a writer writes version 1 whenever the file satisfies it (see `rollrec.format`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec._version import __version__
from rollrec.format.errors import RolloutFormatError
from rollrec.format.v1 import check_unicode_array

FORMAT_NAME = "rollrec"
#: The newest format version written and read (versions 1 to 3 are read; see `rollrec.format`).
FORMAT_VERSION = 3
#: The versions this rollrec reads.
READ_VERSIONS = (1, 2, 3)
#: The quaternion order of every pose in a file (scalar first).
QUAT_ORDER = "wxyz"
#: ``meta`` entries the writers derive from the data; a caller's ``meta`` may not set them.
DERIVED_META = ("format", "format_version", "num_steps", "num_envs", "dt", "quat_order", "extras",
                "every", "recorded_steps", "env_ids", "windows", "episode_columns", "volume", "images", "start_state")
MAX_META_DEPTH = 64
MAX_META_BYTES = 64 << 20


def rollrec_version() -> str:
    return __version__


def make_meta(
    *,
    num_steps: int,
    num_envs: int,
    dt: float,
    env_name: str = "unknown",
    version: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` dict of a v1 (or ``version``) file; ``extra`` entries must be JSON-serialisable.

    Raises ValueError when ``dt`` is not a finite number > 0 (the reader would refuse the file).
    """
    check_dt(dt)
    _check_unicode(str(env_name), "env_name")
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": int(version),
        "num_steps": int(num_steps),
        "num_envs": int(num_envs),
        "dt": float(dt),
        "env_name": str(env_name),
        "quat_order": QUAT_ORDER,
        "rollrec_version": rollrec_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    return meta


def check_dt(dt: Any) -> float:
    """``dt`` as a float; ValueError unless it is a finite number > 0."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)):
        raise ValueError(f"dt must be a number of seconds per step, got {type(dt).__name__} {dt!r}")
    if not (math.isfinite(float(dt)) and float(dt) > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    return float(dt)


def encode_meta(meta: Mapping[str, Any]) -> np.ndarray:
    """``meta`` as the 0-d unicode array stored in the file."""
    return np.array(json.dumps(meta, sort_keys=True))


# ---- meta given by callers: made plain JSON when given, never at close --------------------------
def to_json(value: Any, where: str = "meta", depth: int = 0) -> Any:
    """A copy of ``value`` made of plain JSON types, or ValueError naming the entry.

    numpy scalars become Python numbers, numpy arrays nested lists, paths strings, tuples lists.
    Refused: dict keys that are not strings, other objects (tensors: call ``.tolist()``),
    strings that are not valid unicode, nesting deeper than `MAX_META_DEPTH`.
    """
    if depth > MAX_META_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_META_DEPTH} levels")
    if value is None or isinstance(value, (bool, int)):
        return value if type(value) in (bool, int) or value is None else int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        _check_unicode(value, where)
        return str(value)
    if isinstance(value, np.generic):
        if value.dtype.kind in "biufU":
            return to_json(value.item(), where, depth)
        raise ValueError(f"{where}: numpy {value.dtype} is not a JSON value")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU":
            raise ValueError(f"{where}: numpy array of {value.dtype} is not a JSON value")
        return to_json(value.tolist(), where, depth)
    if isinstance(value, os.PathLike):
        return to_json(os.fspath(value), where, depth)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is a {type(key).__name__}; meta keys must be strings")
            _check_unicode(key, where)
            out[str(key)] = to_json(item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    hint = " (convert it with .tolist() or .item())" if type(value).__module__.startswith("torch") else ""
    raise ValueError(f"{where}: a {type(value).__module__}.{type(value).__name__} is not a JSON value{hint}")


def _check_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: string {text[:40]!r} is not valid unicode (lone surrogate)") from None


def user_meta(entries: Mapping[str, Any], *, derived: Mapping[str, Any] | None = None,
              where: str = "meta") -> dict[str, Any]:
    """Check and copy a caller's ``meta`` entries (see `to_json`) so the finished file reads back.

    Entries in `DERIVED_META` are refused: the writer sets them from the data. With ``derived``
    (the values the writer computed), an entry equal to its derived value is accepted, so a
    loaded rollout's ``meta`` can be saved again. ``link_parents`` must be a list of integers.
    """
    out = to_json(dict(entries), where)
    for key in DERIVED_META:
        if key not in out or (derived is not None and key in derived and out[key] == derived[key]):
            continue
        hint = {"dt": " (pass dt=...)", "num_envs": " (pass num_envs)"}.get(key, "")
        raise ValueError(f"{where}[{key!r}]: set by rollrec from the recording{hint}; it may not be given")
    _check_link_parents(out, where)
    if "obs_layout" in out:
        check_obs_layout(out["obs_layout"], None, where)
    if len(json.dumps(out)) > MAX_META_BYTES // 4:
        raise ValueError(f"{where}: more than {MAX_META_BYTES // 4 >> 20} M characters of JSON")
    return out


def check_obs_layout(layout: Any, obs_dim: int | None, where: str) -> None:
    """ValueError unless ``layout`` is a list of ``{"name": str, "start": int, "stop": int,
    "shape": [int, ...]}`` with ``0 <= start < stop <= obs_dim`` (when ``obs_dim`` is known) and
    ``prod(shape) == stop - start``: how a flat ``obs [T, N, D]`` splits into named parts."""
    if not isinstance(layout, list):
        raise ValueError(f"{where}['obs_layout'] must be a list of {{name, start, stop, shape}}, got {type(layout).__name__}")
    for i, entry in enumerate(layout):
        ok = (
            isinstance(entry, dict) and isinstance(entry.get("name"), str)
            and type(entry.get("start")) is int and type(entry.get("stop")) is int
            and isinstance(entry.get("shape"), list) and all(type(s) is int and s >= 0 for s in entry["shape"])
        )
        if not ok:
            raise ValueError(f"{where}['obs_layout'][{i}] must be {{name: str, start: int, stop: int, shape: [int]}}, "
                             f"got {entry!r:.80}")
        start, stop = entry["start"], entry["stop"]
        if not 0 <= start < stop or (obs_dim is not None and stop > obs_dim):
            raise ValueError(f"{where}['obs_layout'][{i}] ({entry['name']!r}): columns {start}..{stop} do not fit "
                             f"obs of {obs_dim if obs_dim is not None else 'its'} dimensions")
        if int(np.prod(entry["shape"], dtype=np.int64)) != stop - start:
            raise ValueError(f"{where}['obs_layout'][{i}] ({entry['name']!r}): shape {entry['shape']} does not hold "
                             f"{stop - start} values")


def _check_link_parents(meta: Mapping[str, Any], where: str) -> None:
    parents = meta.get("link_parents")
    if parents is None:
        return
    if not isinstance(parents, list) or not all(type(p) is int for p in parents):
        raise ValueError(f"{where}['link_parents'] must be a list of integers (-1 for a root), got {parents!r:.80}")


# ---- meta read from a file ----------------------------------------------------------------------
def decode_meta(value: np.ndarray, where: str) -> dict[str, Any]:
    """The ``meta`` dict of a file; `RolloutFormatError` (naming ``where``) unless it follows the spec."""
    if value.dtype.kind != "U" or value.ndim != 0:
        raise RolloutFormatError(f"{where}: 'meta' must be a 0-d unicode array, got {value.dtype} {value.shape}")
    if value.dtype.itemsize > MAX_META_BYTES:
        raise RolloutFormatError(f"{where}: 'meta' is {value.dtype.itemsize >> 20} MB; at most {MAX_META_BYTES >> 20} MB is read")
    check_unicode_array(value, "meta", where)
    try:
        meta = json.loads(str(value[()]))
    except json.JSONDecodeError as exc:
        raise RolloutFormatError(f"{where}: 'meta' is not valid JSON ({exc})") from None
    except RecursionError:
        raise RolloutFormatError(f"{where}: 'meta' is nested too deeply") from None
    if not isinstance(meta, dict):
        raise RolloutFormatError(f"{where}: 'meta' must be a JSON object")
    _check_meta_tree(meta, where)
    version = meta.get("format_version")
    if version not in READ_VERSIONS or type(version) is not int:
        raise RolloutFormatError(
            f"{where}: unknown format version {version!r}; this rollrec ({rollrec_version()}) "
            f"reads versions {', '.join(map(str, READ_VERSIONS))}. Upgrade rollrec to read it."
        )
    for key in ("num_steps", "num_envs"):
        if type(meta.get(key)) is not int or meta[key] < 0:
            raise RolloutFormatError(f"{where}: meta {key!r} must be an integer >= 0, got {meta.get(key)!r:.40}")
    if "dt" not in meta:
        raise RolloutFormatError(f"{where}: meta has no 'dt' (seconds per step)")
    try:
        check_dt(meta["dt"])
    except ValueError as exc:
        raise RolloutFormatError(f"{where}: meta 'dt': {exc}") from None
    if meta.get("quat_order", QUAT_ORDER) != QUAT_ORDER:
        raise RolloutFormatError(f"{where}: meta 'quat_order' is {meta['quat_order']!r:.40}; format v1 is {QUAT_ORDER!r}")
    try:
        _check_link_parents(meta, "meta")
    except ValueError as exc:
        raise RolloutFormatError(f"{where}: {exc}") from None
    return meta


def _check_meta_tree(meta: dict, where: str) -> None:
    """Depth at most `MAX_META_DEPTH` and every string valid unicode (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(meta, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_META_DEPTH:
            raise RolloutFormatError(f"{where}: 'meta' is nested deeper than {MAX_META_DEPTH} levels")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            for text in (key, item):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise RolloutFormatError(f"{where}: 'meta' holds a string that is not valid unicode") from None
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))


__all__ = [
    "DERIVED_META",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_META_BYTES",
    "MAX_META_DEPTH",
    "QUAT_ORDER",
    "READ_VERSIONS",
    "check_dt",
    "check_obs_layout",
    "decode_meta",
    "encode_meta",
    "make_meta",
    "rollrec_version",
    "to_json",
    "user_meta",
]
