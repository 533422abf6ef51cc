"""Write format-v1 rollouts: whole arrays at once (`save_rollout`), or finish and recover streams.

Every file appears under its final name atomically. While it is written, data goes to
``<path>.partial`` and a JSON sidecar ``<path>.partial.json`` says which of its bytes hold the
rows committed so far (see `rollrec._npz.stream`). Finishing runs in this order, each step
durable before the next, so a process killed anywhere leaves a state `recover` completes:

1. finalise ``.partial`` in place (members slid into large holes, headers, small members,
   central directory; every move copy-then-switch, see `rollrec._npz.stream`);
2. if asked to compress, write a deflated copy to ``<path>.partial.tmp`` (``.partial`` is only
   read);
3. rename the finished file to ``<path>`` (the commit point);
4. remove ``.partial`` (if the copy was renamed), then the sidecar.

`recover` reads the states this leaves: sidecar and ``.partial`` (redo from 1; a stale
``.partial.tmp`` is removed), sidecar without ``.partial`` (finished: remove the sidecar),
``.partial`` without sidecar (a one-shot write that never finished: nothing to recover).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rollrec._npz import faults
from rollrec.format.errors import RolloutFormatError
from rollrec._npz.compress import compress_npz
from rollrec._npz.files import fsync_dir
from rollrec.format.meta import check_obs_layout, encode_meta, make_meta, user_meta
from rollrec.format.v1 import OPTIONAL_RANKS, REQUIRED_RANKS, STATIC_KEYS, check_fields
from rollrec.io.model import load_sidecar, model_members, read_model, remove_sidecar, sidecar_path
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec.model.robot import RobotModel

PARTIAL_SUFFIX = ".partial"
LAYOUT_SUFFIX = ".partial.json"
REWRITE_SUFFIX = ".partial.tmp"


def partial_paths(path: str | os.PathLike) -> tuple[str, str]:
    """``(data, sidecar)`` paths used while ``path`` is being written."""
    p = os.fspath(path)
    return p + PARTIAL_SUFFIX, p + LAYOUT_SUFFIX


def check_no_interrupted_recording(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Raise FileExistsError if an interrupted recording of ``path`` waits to be recovered.

    With ``overwrite`` the caller chose to discard it; the writer then replaces its files.
    """
    data, sidecar = partial_paths(path)
    if not overwrite and os.path.lexists(sidecar):
        raise FileExistsError(
            f"{os.fspath(path)}: an interrupted recording of this file was never recovered "
            f"({os.path.basename(data)}); run `rollrec recover {os.fspath(path)}` to keep its steps, "
            "or pass overwrite=True to discard it"
        )


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
    """Finalise ``writer`` with ``num_rows`` rows and make it ``path`` (steps 1-4 above)."""
    final = os.fspath(path)
    writer.finalize(small, num_rows)
    source = writer.path
    if compress:
        tmp = final + REWRITE_SUFFIX
        try:
            compress_npz(writer.path, tmp, sync=writer.durable)
        except BaseException:
            _remove(tmp)
            raise
        source = tmp
    writer.close()
    try:
        os.replace(source, final)
    except BaseException:
        if source != writer.path:
            _remove(source)
        raise
    if writer.durable:
        fsync_dir(final)
    faults.point("finish.renamed")
    if source != writer.path:
        _remove(writer.path)
        faults.point("finish.partial_removed")
    if writer.layout_path is not None:
        _remove(writer.layout_path)
        if writer.durable:
            fsync_dir(final)
        faults.point("finish.sidecar_removed")
    return Path(final)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
    extras. ``meta`` entries are added to the generated ``meta``. ``model``: the robot's
    geometry, stored with the file (its links are matched to ``link_names`` by name). Returns the
    path. An existing file at ``path`` is replaced; an interrupted recording of ``path`` waiting
    for `recover` is an error unless ``overwrite``.
    Raises `RolloutFormatError` if the fields do not follow the format.
    """
    path = os.fspath(path)
    check_no_interrupted_recording(path, overwrite=overwrite)
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

    ``path`` is the final name (``run.npz``) or a partial one (``run.npz.partial``,
    ``run.npz.partial.json``). The rows the recorder had committed to disk are kept, after
    checking them against the CRC-32s the sidecar recorded; ``meta["recovered"]`` is set. A
    recording killed after its final rename is only tidied (its sidecar removed). Returns the
    path. Leaves no temporary file behind, also when it fails.

    Raises FileNotFoundError when there is nothing to recover, and `RolloutFormatError` when
    the sidecar is unusable or the committed rows do not match their CRCs.

    A directory recorded by several ranks is recovered shard by shard and its manifest updated
    (`rollrec.io.sharded.shards.recover_directory`).
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        from rollrec.io.sharded.shards import recover_directory

        return recover_directory(p)
    for suffix in (LAYOUT_SUFFIX, REWRITE_SUFFIX, PARTIAL_SUFFIX):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
            break
    data_path, layout_path = partial_paths(p)
    for stale in (p + REWRITE_SUFFIX, layout_path + ".tmp"):  # left by a process killed mid-write
        _remove(stale)
    name = os.path.basename(layout_path)
    if not os.path.lexists(layout_path):
        if os.path.lexists(data_path):
            raise RolloutFormatError(
                f"{data_path}: no sidecar ({name}) describes it: it was written in one go (save_rollout) or was being "
                "deleted when the process died, and holds nothing recoverable; delete it"
            )
        raise FileNotFoundError(f"{p}: no interrupted recording to recover (no {name})")
    if not os.path.lexists(data_path):
        _remove(layout_path)
        if os.path.exists(p):  # killed between the final rename and removing the sidecar
            return Path(p)
        raise FileNotFoundError(f"{p}: nothing to recover: the recording's data file {os.path.basename(data_path)} is gone")
    if os.path.getsize(layout_path) == 0:  # killed between claiming the names and writing the layout
        _remove(data_path)
        _remove(layout_path)
        raise FileNotFoundError(f"{p}: nothing to recover: the recording was killed before it wrote a step")
    writer, doc = NpzStreamWriter.reopen(data_path, layout_path)
    try:
        info = doc.get("info", {})
        if "meta" not in info:
            raise RolloutFormatError(f"{layout_path}: the sidecar holds no meta; nothing to recover")
        rows = writer.committed_rows
        meta = dict(info["meta"], num_steps=rows, recovered=True)
        link_names = info.get("link_names")
        model = None
        kept = load_sidecar(p)  # the robot model the recorder kept beside the partial file
        if kept is not None:
            model = read_model(kept[0], {**meta, **kept[1]}, link_names, sidecar_path(p))
        small = static_members(meta, info.get("rew_term_names", []), link_names, model)
        result = finish(writer, small, rows, p, bool(info.get("compress", False)))
        remove_sidecar(p)
        return result
    finally:
        writer.close()
