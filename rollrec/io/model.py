"""A `rollrec.model.RobotModel` as the members of a rollout file, and back.

The members are specified in `rollrec.format.model`: one plain numeric member per array, named
``model_`` + the array's name (`MODEL_KEYS`), no pickle. Its ``geom_link`` indexes the file's
``link_names``; ``meta["model"]`` holds its ``info`` (at least ``source``) and
``meta["link_parents"]`` its body tree. A file has either all of these members or none
(`Rollout.model` is then None). While a recording runs, the model waits beside the partial data
for recovery (`rollrec.io.partial.PartialRecording.keep_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.model import MODEL_KEYS, PREFIX
from rollrec.model.robot import ARRAYS, ModelError, RobotModel


def model_members(model: RobotModel, link_names: list[str] | None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(members, meta entries)`` that store ``model`` in a file whose links are ``link_names``.

    The model is bound to ``link_names`` by name first (`RobotModel.bind`: geoms of links the
    file does not record are dropped and counted). Raises `ModelError` for an inconsistent model.
    """
    model = model.bind(link_names or []).check()
    members = {PREFIX + name: arr for name, arr in model.arrays().items()}
    meta: dict[str, Any] = {"model": {"source": "unknown", **model.info}}
    if model.link_parents is not None:
        meta["link_parents"] = list(model.link_parents)
    return members, meta


def read_model(members: Mapping[str, np.ndarray], meta: Mapping[str, Any], link_names: list[str] | None,
               where: str) -> RobotModel | None:
    """The model stored in ``members`` (None when the file has none), checked.

    Raises `RolloutFormatError` naming the file when only some model members are there, a member
    has the wrong dtype kind or (stored in a wider integer type) values its type cannot hold, or
    the arrays contradict each other.
    """
    present = [k for k in MODEL_KEYS if k in members]
    if not present:
        return None
    missing = [k for k in MODEL_KEYS if k not in members]
    if missing:
        raise RolloutFormatError(f"{where}: the robot model is incomplete: member {missing[0]!r} is missing")
    arrays = {}
    for key in MODEL_KEYS:
        arr = np.asarray(members[key])
        dtype, _ = ARRAYS[key[len(PREFIX):]]
        if arr.dtype.kind not in ("iu" if np.dtype(dtype).kind in "iu" else "f"):
            raise RolloutFormatError(f"{where}: {key!r} must be {np.dtype(dtype).name}-like, got {arr.dtype}")
        if np.dtype(dtype).kind in "iu" and arr.size:  # stored wider: a cast would wrap, e.g. 256 + t reading as t
            lo, hi, fits = int(arr.min()), int(arr.max()), np.iinfo(dtype)
            if lo < fits.min or hi > fits.max:
                raise RolloutFormatError(f"{where}: {key!r} holds {lo if lo < fits.min else hi}, outside the range of "
                                         f"its type {np.dtype(dtype).name} ({fits.min}..{fits.max})")
        arrays[key[len(PREFIX):]] = arr
    parents = meta.get("link_parents")
    info = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    try:
        model = RobotModel(link_names=list(link_names or []), link_parents=parents, info=dict(info), **arrays)
        return model.check()
    except (ModelError, TypeError, ValueError) as exc:
        raise RolloutFormatError(f"{where}: the robot model is inconsistent: {exc}") from None


__all__ = ["model_members", "read_model"]
