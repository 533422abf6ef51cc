"""What a rollout holds, as plain data: the library half of ``rollrec info`` (which only formats it).

`summarize` returns a JSON-ready dict: size and storage, fields (shape, dtype, bytes), cameras
(codec, frames, bytes against raw: `camera_summary`), the robot model, what a v2 file kept (`volume_summary`), episode figures and reward statistics, ``meta``
and, for a sharded rollout, its shards; ``rollrec info --json`` prints exactly that.

Shapes, dtypes and sizes come from the zip and npy headers. Episode and reward statistics read
``rew`` and ``done`` (and ``truncated``, ``rew_terms`` for their counts and means) in blocks of
env columns (`_BLOCK_ELEMENTS` values), so a multi-GB file is summarised in bounded memory;
episodes are found by the segmentation kernel (`rollrec.io.segments`), or read from a v2 file's
episode index (`index_episode_stats`: exact returns in the original step numbering).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from rollrec._npz.files import allocated_bytes
from rollrec.format.images import index_member, is_image_member, packets_member
from rollrec.format.manifest import MANIFEST_NAME
from rollrec.format.model import MODEL_KEYS
from rollrec.io.episode_index import END_NAMES
from rollrec.io.opening import load
from rollrec.io.segments import UNFINISHED, running_sum, segment
from rollrec.io.sharded.rollout import MissingEnvsWarning

#: Elements per block when reducing a ``[T, N, ...]`` member (bounds memory to ~100 MB of float64).
_BLOCK_ELEMENTS = 1 << 23


class Progress(Protocol):
    """What `summarize` reports verification to: ``update(nbytes)`` as bytes are checked."""

    def update(self, n: int) -> Any: ...


def summarize(path: str | os.PathLike, *, allow_pickle: bool = False, verify: bool = False,
              progress: Callable[[int], AbstractContextManager[Progress]] | None = None) -> dict[str, Any]:
    """A JSON-serialisable summary of the rollout at ``path`` (see the module docstring).

    ``verify``: check every member's CRC-32 first (``"verified": true`` in the summary, and
    ``"verified_members"``: how many were checked; None without ``verify``);
    ``progress(total_bytes)``: a context manager whose value is told the bytes checked while
    verifying (e.g. a ``tqdm`` bar). Raises what `rollrec.load` raises for a missing or invalid
    file, and `RolloutFormatError` for a member that fails its CRC check.
    """
    path = os.fspath(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingEnvsWarning)  # the summary lists missing shards itself
        opened = load(path, allow_pickle=allow_pickle)
    with opened as r:
        shards = getattr(r, "shards", None)  # a sharded rollout (torch.distributed): a directory of files
        file_bytes = os.path.getsize(path) if shards is None else _sharded_bytes(r)
        verified_members = _verify(r, file_bytes, progress) if verify else None
        members = r.member_info() if shards is None else _sharded_members(r)
        extents = getattr(r, "extents", None)  # (env range, steps) holding data, when some may be missing
        fields = _fields(r, members)
        model_bytes = sum(fields.pop(k)["bytes"] for k in list(fields) if k in MODEL_KEYS)  # summarised as one
        cameras = camera_summary(r, [members] if shards is None else [s.rollout.member_info() for s in shards if s.present])
        robot = getattr(r, "model", None)
        summary = {
            "path": path,
            "file_bytes": file_bytes,
            "format_version": r.meta.get("format_version"),
            "env_name": r.env_name,
            "T": r.T,
            "N": r.N,
            "dt": r.dt,
            "duration_s": r.T * r.dt,
            "legacy": r.is_legacy,
            "recovered": bool(r.meta.get("recovered", False)),
            "verified": verify,
            "verified_members": verified_members,
            "storage": _storage(r, path, members, fields, model_bytes + sum(c["bytes"] for c in cameras.values()), file_bytes),
            "fields": fields,
            "cameras": cameras,
            "model": None if robot is None else {"summary": repr(robot), "bytes": model_bytes, **robot.info},
            "volume": volume_summary(r),
            "episodes": index_episode_stats(r) if r.layout.has_index
            else episode_stats(r["rew"], r["done"], r["truncated"], extents=extents),
            "reward": reward_stats(r["rew"], r["rew_terms"], r.reward_term_names, r.terms_are_env_means, extents=extents)
            if "rew_terms" in r and r.kind("rew") == r.kind("rew_terms") == "all" else kept_stats(r),
            "meta": r.meta,
        }
        if shards is not None:
            summary["shards"] = _shard_summary(r)
        return summary


def _verify(r, total: int, progress: Callable[[int], AbstractContextManager[Progress]] | None) -> int:
    if progress is None:
        return r.verify()
    with progress(total) as bar:
        return r.verify(bar.update)


def _fields(r, members: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{member: {shape, dtype, bytes, stored_bytes[, kept]}}`` in the file's order."""
    fields = {}
    for key in r.keys():  # noqa: SIM118 (Rollout has no __iter__)
        if is_image_member(key):  # summarised per camera (`camera_summary`)
            continue
        if key in members and not r.is_legacy:
            shape, dtype, stored = members[key]["shape"], members[key]["dtype"], members[key]["stored_bytes"]
        else:  # converted in memory from a legacy file: no member of that name and layout
            shape, dtype, stored = list(r[key].shape), r[key].dtype.str, None
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        fields[key] = {"shape": list(shape), "dtype": _dtype_name(dtype), "bytes": nbytes, "stored_bytes": stored}
        if key in r.step_keys and r.kind(key) != "all":  # format v2: kept for some envs or episodes only
            fields[key]["kept"] = r.kind(key)
    return fields


def camera_summary(r, member_infos: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``{camera: {codec, lossless, shape, dtype, kept, frames, bytes, raw_bytes, ratio, keyframe_interval,
    params}}``: ``bytes`` are the stored packets and index (over every file of a sharded rollout),
    ``raw_bytes`` what the frames would take as arrays, ``ratio`` the one over the other."""
    out = {}
    for camera, spec in r.cameras.items():
        frames = sum(info[index_member(camera)]["shape"][0] for info in member_infos if index_member(camera) in info)
        stored = sum(info[name]["stored_bytes"] for info in member_infos
                     for name in (packets_member(camera), index_member(camera)) if name in info)
        raw = frames * spec.frame_bytes
        out[camera] = {
            "codec": spec.codec, "lossless": spec.lossless, "shape": list(spec.shape), "dtype": _dtype_name(spec.dtype),
            "kept": r.kind("images/" + camera), "frames": int(frames), "bytes": int(stored), "raw_bytes": int(raw),
            "ratio": raw / stored if stored else None, "keyframe_interval": spec.keyframe_interval,
            "params": dict(spec.params),
        }
    return out


def _storage(r, path: str, members: dict[str, dict[str, Any]], fields: dict[str, dict[str, Any]], model_bytes: int,
             file_bytes: int) -> dict[str, Any]:
    kinds = {m["compression"] for m in members.values()}
    compression = next(iter(kinds)) if len(kinds) == 1 else "mixed"
    shards = getattr(r, "shards", None)
    return {
        "compression": compression,
        "memory_mapped": compression == "stored" and not r.is_legacy,
        "data_bytes": sum(f["bytes"] for f in fields.values()) + model_bytes,
        "file_bytes": file_bytes,
        # Less than file_bytes where the recorder left holes (unused capacity given back).
        "disk_bytes": allocated_bytes(path) if shards is None else sum(
            allocated_bytes(str(s.path)) or 0 for s in shards if s.present),
    }


def _sharded_members(r) -> dict[str, dict[str, Any]]:
    """`Rollout.member_info` of a sharded rollout: shapes over all envs, stored bytes summed over the shards."""
    out: dict[str, dict[str, Any]] = {}
    for shard in r.shards:
        if not shard.present:
            continue
        for name, m in shard.rollout.member_info().items():
            if name not in out:
                shape = list(r[name].shape) if name in r and name != "meta" else m["shape"]
                out[name] = dict(m, shape=shape, stored_bytes=0)
            out[name]["stored_bytes"] += m["stored_bytes"]
            if m["compression"] != out[name]["compression"]:
                out[name]["compression"] = "mixed"
    return out


def _sharded_bytes(r) -> int:
    return os.path.getsize(r.path / MANIFEST_NAME) + sum(os.path.getsize(s.path) for s in r.shards if s.present)


def _shard_summary(r) -> dict[str, Any]:
    sharded = r.meta["sharded"]
    return {
        "world_size": sharded["world_size"],
        "manifest_state": sharded["manifest_state"],
        "missing_envs": sharded["missing_envs"],
        "shards": [
            {"rank": s.entry.rank, "file": s.entry.file, "envs": [s.entry.env_offset, s.entry.env_stop],
             "steps": s.num_steps if s.present else None, "present": s.present,
             "status": s.entry.status, "note": s.note or s.entry.note, "host": s.entry.host,
             "live": s.live is not None,
             "file_bytes": os.path.getsize(s.path) if s.present else None}
            for s in r.shards
        ],
    }


def _dtype_name(dtype) -> str:
    dtype = np.dtype(dtype)
    return f"unicode[{dtype.itemsize // 4}]" if dtype.kind == "U" else dtype.name


def _env_blocks(T: int, N: int, per_row: int = 1, extents=None) -> Iterator[tuple[int, int, int]]:
    """``(a, b, steps)``: column ranges over the env axis holding about `_BLOCK_ELEMENTS` elements
    each, and the steps to read in them; ``extents`` ``[(a, b, steps)]`` limits them to the data present."""
    for lo, hi, steps in extents if extents is not None else [(0, N, T)]:
        step = max(1, _BLOCK_ELEMENTS // max(1, steps * per_row))
        yield from ((a, min(hi, a + step), steps) for a in range(lo, hi, step))


# ---- statistics -----------------------------------------------------------------------------
def episode_stats(rew: np.ndarray, done: np.ndarray, truncated: np.ndarray | None = None, *, extents=None) -> dict[str, Any]:
    """Counts and returns of the finished episodes of ``rew``/``done`` ``[T, N]``.

    An episode finishes at a step whose ``done`` is set; its return is the sum of ``rew`` since
    the previous finish of that env (or the start). Unfinished tails are not counted.
    ``extents`` (``[(env_start, env_stop, steps)]``) limits the counts to those envs and steps
    (a sharded rollout with missing data). Returns ``{done, truncated, finished_envs,
    mean_return, min_return, max_return}`` (returns are None when no episode finished).
    """
    T, N = done.shape
    returns = []
    done_count = 0
    for a, b, steps in _env_blocks(T, N, extents=extents):
        d = np.asarray(done[:steps, a:b], dtype=bool)
        if not d.any():
            continue
        done_count += int(d.sum())
        seg = segment(d)
        ret = seg.sums(running_sum(np.array(rew[:steps, a:b], dtype=np.float64)))
        returns.append(ret[seg.end != UNFINISHED])
    finished_envs = 0
    for a, b, steps in _env_blocks(T, N, extents=extents):
        finished_envs += int(np.asarray(done[:steps, a:b], dtype=bool).any(axis=0).sum())
    ret = np.concatenate(returns) if returns else np.zeros(0)
    stats: dict[str, Any] = {
        "done": done_count,
        "truncated": int(sum(np.asarray(truncated[:steps, a:b]).sum() for a, b, steps in _env_blocks(T, N, extents=extents)))
        if truncated is not None else None,
        "finished_envs": finished_envs,
        "mean_return": None,
        "min_return": None,
        "max_return": None,
    }
    if ret.size:
        stats.update(mean_return=float(ret.mean()), min_return=float(ret.min()), max_return=float(ret.max()))
    return stats


def reward_stats(rew: np.ndarray, rew_terms: np.ndarray, names: list[str], env_means: bool = False, *,
                 extents=None) -> dict[str, Any]:
    """Mean/min/max of ``rew`` ``[T, N]`` and the mean of each of the K ``rew_terms`` ``[T, N, K]``
    (over the ``extents`` only, when given: see `episode_stats`)."""
    T, N = rew.shape
    K = rew_terms.shape[2]
    total, lo, hi = 0.0, np.inf, -np.inf
    term_sums = np.zeros(K)
    count = 0
    for a, b, steps in _env_blocks(T, N, per_row=max(1, K), extents=extents):
        r = np.asarray(rew[:steps, a:b], dtype=np.float64)
        count += r.size
        if r.size:
            total += float(r.sum())
            lo, hi = min(lo, float(r.min())), max(hi, float(r.max()))
        term_sums += np.asarray(rew_terms[:steps, a:b], dtype=np.float64).sum(axis=(0, 1))
    return {
        "mean": total / count if count else None,
        "min": lo if count else None,
        "max": hi if count else None,
        "term_means": {name: float(s / count) if count else None for name, s in zip(names, term_sums)},
        "terms_are_env_means": env_means,
    }


# ---- format v2 ------------------------------------------------------------------------------
def volume_summary(r: Any) -> dict[str, Any] | None:
    """What ``r`` keeps, or None for a file that keeps everything (every v1 file)."""
    layout = r.layout
    options = r.meta.get("volume")
    if options is None and not layout.has_index:
        return None
    out: dict[str, Any] = {"every": layout.every, "recorded_steps": layout.recorded_steps,
                           "dtypes": (options or {}).get("dtypes") or {}, "fields": (options or {}).get("fields")}
    light = [k for k in r.step_keys if r.kind(k) == "all"]
    if layout.env_ids:
        ids = next(iter(layout.env_ids.values()))
        out["detail"] = {"envs": len(ids), "members": sorted(layout.env_ids), "all_envs": light}
    if layout.window_members:
        captured = int(((r.index.row >= 0) & (r.index.rows > 0)).sum())
        out["windows"] = {"window": layout.window, "capture": r.meta["windows"].get("capture"),
                          "members": list(layout.window_members), "all_envs": light, "rows": layout.R,
                          "captured": captured, "episodes": len(r.index)}
    return out


def index_episode_stats(r: Any) -> dict[str, Any]:
    """`episode_stats` from the episode index (finished episodes only)."""
    index = r.index
    finished = index.end != 0
    ret = index.returns[finished]
    stats: dict[str, Any] = {
        "done": int(finished.sum()),
        "truncated": int((index.end == END_NAMES.index("truncated")).sum()),
        "finished_envs": int(np.unique(index.env[finished]).size),
        "mean_return": None, "min_return": None, "max_return": None,
    }
    if ret.size:
        stats.update(mean_return=float(ret.mean()), min_return=float(ret.min()), max_return=float(ret.max()))
    return stats


def kept_stats(r: Any) -> dict[str, Any]:
    """`reward_stats` over the values the file holds (stored members read whole)."""
    rew = np.asarray(r.stored("rew"), dtype=np.float64)
    terms = np.asarray(r.stored("rew_terms"), dtype=np.float64) if "rew_terms" in r else None
    names = r.reward_term_names
    count = rew.size
    return {
        "mean": float(rew.mean()) if count else None,
        "min": float(rew.min()) if count else None,
        "max": float(rew.max()) if count else None,
        "term_means": {n: float(terms[..., i].mean()) if count else None for i, n in enumerate(names)} if terms is not None else {},
        "terms_are_env_means": False,
    }


__all__ = ["camera_summary", "episode_stats", "index_episode_stats", "kept_stats", "reward_stats", "summarize", "volume_summary"]
