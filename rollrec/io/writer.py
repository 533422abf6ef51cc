"""Write format-v1 rollouts: whole arrays at once (`save_rollout`), or finish and recover streams.

Every file appears under its final name atomically: data goes to ``<path>.partial`` (with a
``<path>.partial.json`` sidecar describing its layout) and is renamed when complete.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.io.errors import RolloutFormatError
from rollrec.io.format import (
    OPTIONAL_RANKS,
    REQUIRED_RANKS,
    STATIC_KEYS,
    check_fields,
    check_obs_layout,
    encode_meta,
    make_meta,
    user_meta,
)
from rollrec.io.model import load_sidecar, model_members, read_model, remove_sidecar, sidecar_path
from rollrec.io.npz_stream import MemberSpec, NpzStreamWriter
from rollrec.model.robot import RobotModel

PARTIAL_SUFFIX = ".partial"
LAYOUT_SUFFIX = ".partial.json"


def partial_paths(path: str | os.PathLike) -> tuple[str, str]:
    """``(data, sidecar)`` paths used while ``path`` is being written."""
    p = os.fspath(path)
    return p + PARTIAL_SUFFIX, p + LAYOUT_SUFFIX


def static_members(meta: Mapping[str, Any], rew_term_names, link_names=None, model: RobotModel | None = None
                   ) -> dict[str, np.ndarray]:
    """The non-per-step members: ``meta`` JSON, the name arrays (unicode, never object) and the
    robot model's members when there is one (`rollrec.io.model`)."""
    small = {"rew_term_names": np.asarray(list(rew_term_names), dtype=str).reshape(-1)}
    if link_names is not None:
        small["link_names"] = np.asarray(list(link_names), dtype=str).reshape(-1)
    if model is not None:
        members, model_meta = model_members(model, None if link_names is None else list(link_names))
        small.update(members)
        meta = {**meta, **model_meta}
    small["meta"] = encode_meta(meta)
    return small


def finish(writer: NpzStreamWriter, small: Mapping[str, np.ndarray], num_rows: int, path: str, compress: bool) -> Path:
    """Finalise ``writer`` with ``num_rows`` rows and move it to ``path`` (compressing if asked)."""
    writer.finalize(small, num_rows)
    if compress:
        tmp = path + ".deflate" + PARTIAL_SUFFIX
        compress_npz(writer.path, tmp)
        os.unlink(writer.path)
        os.replace(tmp, path)
    else:
        os.replace(writer.path, path)
    return Path(path)


def compress_npz(src: str, dst: str) -> None:
    """Rewrite the stored npz ``src`` as a deflated one at ``dst`` (a second pass over the data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zout:
        for info in zin.infolist():
            with zin.open(info) as fin, zout.open(info.filename, "w", force_zip64=info.file_size > 1 << 31) as fout:
                while chunk := fin.read(16 << 20):
                    fout.write(chunk)


def save_rollout(
    path: str | os.PathLike,
    fields: Mapping[str, Any],
    *,
    dt: float,
    env_name: str = "unknown",
    meta: Mapping[str, Any] | None = None,
    compress: bool = False,
    model: RobotModel | None = None,
) -> Path:
    """Write a complete rollout held in memory as a format-v1 file at ``path``.

    ``fields`` maps member names to arrays (numpy or anything `np.asarray` takes): the required
    per-step members ``[T, N, ...]``, ``rew_term_names``, optional link poses and names, and any
    extras. ``meta`` entries are added to the generated ``meta``. ``model``: the robot's
    geometry, stored with the file (its links are matched to ``link_names`` by name). Returns the path.
    Raises `RolloutFormatError` if the fields do not follow the format.
    """
    path = os.fspath(path)
    arrays = {k: np.asarray(v) for k, v in fields.items() if k != "meta"}
    if "rew_term_names" in arrays:
        arrays["rew_term_names"] = np.asarray(arrays["rew_term_names"], dtype=str).reshape(-1)
    if "link_names" in arrays:
        arrays["link_names"] = np.asarray(arrays["link_names"], dtype=str).reshape(-1)
    shapes = {k: a.shape for k, a in arrays.items()}
    dtypes = {k: a.dtype for k, a in arrays.items()}
    shapes.setdefault("meta", ())
    T, N = check_fields(shapes, dtypes, path)
    extras = sorted(k for k in arrays if k not in STATIC_KEYS and k not in REQUIRED_RANKS and k not in OPTIONAL_RANKS)
    full_meta = make_meta(num_steps=T, num_envs=N, dt=dt, env_name=env_name, extras=extras)
    full_meta.update(user_meta(meta or {}, derived=full_meta, where=f"{path}: meta"))
    if "obs_layout" in full_meta:
        check_obs_layout(full_meta["obs_layout"], int(np.prod(arrays["obs"].shape[2:])), f"{path}: meta")
    step_keys = [k for k in arrays if k not in STATIC_KEYS]
    members = [MemberSpec(k, arrays[k].dtype.str, arrays[k].shape[1:], T) for k in step_keys]
    data_path, _ = partial_paths(path)
    writer = NpzStreamWriter(data_path, members)
    try:
        for k in step_keys:
            writer.append(k, arrays[k])
        small = static_members(full_meta, arrays["rew_term_names"], arrays.get("link_names"), model)
        return finish(writer, small, T, path, compress)
    except BaseException:
        writer.abort()
        raise


def recover(path: str | os.PathLike) -> Path:
    """Turn the partial file of an interrupted recording into a valid rollout at ``path``.

    ``path`` is the final name (``run.npz``) or the partial one (``run.npz.partial``). The rows
    the recorder had committed to disk are kept; ``meta["recovered"]`` is set. Returns the path.
    A directory recorded by several ranks is recovered shard by shard and its manifest updated
    (`rollrec.io.shard_files.recover_directory`).
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        from rollrec.io.shard_files import recover_directory

        return recover_directory(p)
    for suffix in (LAYOUT_SUFFIX, PARTIAL_SUFFIX):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    data_path, layout_path = partial_paths(p)
    if not os.path.exists(layout_path) or not os.path.exists(data_path):
        raise FileNotFoundError(f"{p}: no interrupted recording to recover (no {os.path.basename(layout_path)})")
    writer, doc = NpzStreamWriter.reopen(data_path, layout_path)
    info = doc.get("info", {})
    if "meta" not in info:
        raise RolloutFormatError(f"{layout_path}: the recording never flushed a segment; nothing to recover")
    rows = int(doc["committed_rows"])
    meta = dict(info["meta"], num_steps=rows, recovered=True)
    link_names = info.get("link_names")
    model = None
    kept = load_sidecar(p)
    if kept is not None:
        model = read_model(kept[0], {**meta, **kept[1]}, link_names, sidecar_path(p))
    small = static_members(meta, info.get("rew_term_names", []), link_names, model)
    result = finish(writer, small, rows, p, bool(info.get("compress", False)))
    remove_sidecar(p)
    return result
