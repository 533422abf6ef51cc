"""`save_rollout`: write a complete rollout held in memory as one format-v1 file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rollrec._npz.stream import MemberSpec
from rollrec.format import start_state
from rollrec.format.meta import check_obs_layout, make_meta, user_meta
from rollrec.format.v1 import OPTIONAL_RANKS, REQUIRED_RANKS, STATIC_KEYS, check_fields
from rollrec.io.partial import PartialRecording, static_members
from rollrec.model.robot import RobotModel


def save_rollout(
    path: str | os.PathLike,
    fields: Mapping[str, Any],
    *,
    dt: float,
    env_name: str = "unknown",
    meta: Mapping[str, Any] | None = None,
    compress: bool = False,
    model: RobotModel | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete rollout held in memory as a format-v1 file at ``path``.

    ``fields`` maps member names to arrays (numpy or anything `np.asarray` takes): the required
    per-step members ``[T, N, ...]``, ``rew_term_names``, optional link poses and names, and any
    extras. ``meta`` entries are added to the generated ``meta`` (with ``meta["start_state"]``, the
    digest of every env's first ``obs``: `rollrec.format.start_state`). ``model``: the robot's
    geometry, stored with the file (its links are matched to ``link_names`` by name). Returns the
    path. An existing file at ``path`` is replaced; an interrupted recording of ``path`` waiting
    for `rollrec.recover` is an error unless ``overwrite`` (which discards it); one being recorded
    by another process now is always an error (`RecordingBusyError`).
    Raises `RolloutFormatError` if the fields do not follow the format.
    """
    path = os.fspath(path)
    recording = PartialRecording(path)
    recording.check_not_interrupted(overwrite=overwrite)
    arrays = {k: np.asarray(v) for k, v in fields.items() if k != "meta"}
    for key in ("rew_term_names", "link_names"):
        if key in arrays:
            arrays[key] = np.asarray(arrays[key], dtype=str).reshape(-1)
    shapes = {k: a.shape for k, a in arrays.items()}
    dtypes = {k: a.dtype for k, a in arrays.items()}
    shapes.setdefault("meta", ())
    T, N = check_fields(shapes, dtypes, path)
    extras = sorted(k for k in arrays if k not in STATIC_KEYS and k not in REQUIRED_RANKS and k not in OPTIONAL_RANKS)
    full_meta = make_meta(num_steps=T, num_envs=N, dt=dt, env_name=env_name, extras=extras)
    if T > 0 and "obs" in arrays and arrays["obs"].dtype.kind in "biuf":  # what `rollrec compare` pairs runs by
        full_meta["start_state"] = start_state.encode(start_state.env_digests([arrays["obs"][0]]))
    full_meta.update(user_meta(meta or {}, derived=full_meta, where=f"{path}: meta"))
    if "obs_layout" in full_meta:
        check_obs_layout(full_meta["obs_layout"], int(np.prod(arrays["obs"].shape[2:])), f"{path}: meta")
    step_keys = [k for k in arrays if k not in STATIC_KEYS]
    writer = recording.begin_one_shot([MemberSpec(k, arrays[k].dtype.str, arrays[k].shape[1:], T) for k in step_keys],
                                      overwrite=overwrite)
    try:
        for k in step_keys:
            writer.append(k, arrays[k])
        small = static_members(full_meta, arrays["rew_term_names"], arrays.get("link_names"), model)
        return recording.finish(small, T, compress)
    except BaseException:
        recording.abort()
        raise


__all__ = ["save_rollout"]
