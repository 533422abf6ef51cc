"""Convert files of the original recorder to the v1 model.

The original wrote ``np.savez_compressed`` files with: the env axis squeezed away when N == 1
(``rew [T]``, ``base_pos [T, 3]``, ``link_pos [T, L, 3]``; ``obs`` and ``act`` kept it),
quaternions with **w last** (xyzw), ``link_names`` as an object array, and ``info``: an object
array of dicts whose ``reward_terms`` are means over envs. Converting restores the env axis,
reorders quaternions to wxyz, broadcasts the terms to every env and records
``reward_terms_are_env_means`` in meta. Reading these files needs pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.meta import make_meta
from rollrec.format.v1 import check_fields

#: The original tool's viewer played at this rate; its files carry no dt.
LEGACY_DT = 1.0 / 30.0


def looks_legacy(members) -> bool:
    """True for an npz in the original recorder's layout (object arrays, ``info``, no ``meta``)."""
    return "obs" in members and ("info" in members or any(d.hasobject for d in members.dtypes.values()))


def _xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(q[..., [3, 0, 1, 2]])


def convert_legacy(path: str, source: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read the original recorder's file at ``path`` (unpickles it: the caller opted in) and return
    v1 fields and meta. ``source``: an open binary file of ``path`` to read instead of the path.

    A damaged or unexpected file raises `RolloutFormatError`; unpickling can raise anything, so
    every exception from reading it is reported that way.
    """
    try:
        with np.load(source if source is not None else path, allow_pickle=True) as npz:
            raw = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 (pickle, zip and npy errors of a damaged file)
        raise RolloutFormatError(f"{path}: cannot read this file of the original recorder ({type(exc).__name__}: {exc})") from None
    try:
        return _convert(raw, path)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        if isinstance(exc, RolloutFormatError):
            raise
        what = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise RolloutFormatError(f"{path}: not a valid file of the original recorder ({what})") from None


def _convert(raw: dict[str, np.ndarray], path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if "obs" not in raw or raw["obs"].ndim != 3:
        raise RolloutFormatError(f"{path}: legacy file without 'obs' [T, N, D]")
    T, N = raw["obs"].shape[:2]

    def with_env_axis(key: str, rank: int) -> np.ndarray:
        a = np.asarray(raw[key])
        if a.ndim == rank - 1 and N == 1:
            a = a[:, None]
        if a.ndim != rank:
            raise RolloutFormatError(f"{path}: legacy {key!r} has shape {a.shape}, expected rank {rank}")
        return a

    fields: dict[str, np.ndarray] = {
        "obs": raw["obs"],
        "act": with_env_axis("act", 3),
        "rew": with_env_axis("rew", 2),
        "done": with_env_axis("done", 2).astype(bool),
        "truncated": (with_env_axis("truncated", 2) if "truncated" in raw else np.zeros((T, N))).astype(bool),
        "base_pos": with_env_axis("base_pos", 3),
        "base_quat": _xyzw_to_wxyz(with_env_axis("base_quat", 3)),
    }
    if "link_pos" in raw:
        fields["link_pos"] = with_env_axis("link_pos", 4)
        fields["link_quat"] = _xyzw_to_wxyz(with_env_axis("link_quat", 4))
        L = fields["link_pos"].shape[2]
        names = raw.get("link_names")
        fields["link_names"] = (
            np.array([str(n) for n in names], dtype=str) if names is not None else np.array([f"link_{i}" for i in range(L)])
        )
    names, terms = _terms_from_info(raw.get("info"), T, path)
    fields["rew_terms"] = np.broadcast_to(terms[:, None, :], (T, N, len(names))).astype(np.float32)
    fields["rew_term_names"] = np.array(names, dtype=str) if names else np.zeros((0,), dtype="<U1")
    check_fields({k: v.shape for k, v in fields.items()}, {k: v.dtype for k, v in fields.items()}, path)
    meta = make_meta(
        num_steps=T, num_envs=N, dt=LEGACY_DT, env_name="legacy", legacy=True, reward_terms_are_env_means=True,
        source_quat_order="xyzw", extras=[],
    )
    return fields, meta


def _terms_from_info(info: np.ndarray | None, T: int, path: str) -> tuple[list[str], np.ndarray]:
    if info is None:
        return [], np.zeros((T, 0), np.float32)
    names: list[str] = []
    for entry in info:
        terms = entry.get("reward_terms", {}) if isinstance(entry, Mapping) else {}
        for name in terms:
            if name not in names:
                names.append(str(name))
    out = np.zeros((T, len(names)), np.float32)
    for t, entry in enumerate(info):
        terms = entry.get("reward_terms", {}) if isinstance(entry, Mapping) else {}
        for k, name in enumerate(names):
            out[t, k] = float(terms.get(name, 0.0))
    return names, out
