"""The robot model's members in a rollout file: writing them, reading them back, and keeping them
through a crash.

A `rollrec.model.RobotModel` is stored as one plain numeric member per array, named ``model_`` +
the array's name (``model_geom_type``, ``model_mesh_vert``, ...: `MODEL_KEYS`), no pickle. Its
``geom_link`` indexes the file's ``link_names``; ``meta["model"]`` holds its ``info`` (at least
``source``) and ``meta["link_parents"]`` its body tree. A file has either all of these members
or none (`Rollout.model` is then None).

While a recording runs, the model waits in ``<path>.partial.model.npz`` (a plain npz beside the
partial data) so `rollrec.recover` can put it in the recovered file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.model import MODEL_KEYS, PREFIX
from rollrec.model.robot import ARRAYS, ModelError, RobotModel

SIDECAR_SUFFIX = ".partial.model.npz"


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
    has the wrong dtype kind, or the arrays contradict each other.
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
        arrays[key[len(PREFIX):]] = arr
    parents = meta.get("link_parents")
    info = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    try:
        model = RobotModel(link_names=list(link_names or []), link_parents=parents, info=dict(info), **arrays)
        return model.check()
    except (ModelError, TypeError, ValueError) as exc:
        raise RolloutFormatError(f"{where}: the robot model is inconsistent: {exc}") from None


# ---- while recording ---------------------------------------------------------------------------
def sidecar_path(path: str | os.PathLike) -> str:
    """Where the model of the recording of ``path`` waits: ``run.npz.partial.model.npz``."""
    return os.fspath(path) + SIDECAR_SUFFIX


def save_sidecar(path: str | os.PathLike, members: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write the model's members (and its meta entries, as JSON) beside the partial file of ``path``."""
    from rollrec.format.meta import encode_meta

    target = sidecar_path(path)
    tmp = target + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **members, model_meta=encode_meta(dict(meta)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


def load_sidecar(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The members and meta entries `save_sidecar` wrote for ``path``, or None when there are none
    (or they are unreadable: a model is not worth failing a recovery for)."""
    import json

    target = sidecar_path(path)
    if not os.path.exists(target):
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            members = {k: z[k] for k in z.files if k in MODEL_KEYS}
            meta = json.loads(str(z["model_meta"][()]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    return members, meta


def remove_sidecar(path: str | os.PathLike) -> None:
    try:
        os.unlink(sidecar_path(path))
    except FileNotFoundError:
        pass
