"""``rollrec info FILE [--json] [--verify] [--allow-pickle]``: what a rollout file holds.

Shapes, dtypes and sizes come from the zip and npy headers. Episode and reward statistics read
``rew`` and ``done`` (and ``truncated``, ``rew_terms`` for their counts and means) in blocks, so a
multi-GB file is summarised in bounded memory. ``--verify`` also checks every member's CRC-32
(reading the whole file once) and fails, naming the member, when one differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import numpy as np

from rollrec.cli.info_volume import format_volume, index_episode_stats, kept_stats, volume_summary
from rollrec.io.files import allocated_bytes
from rollrec.io.model import MODEL_KEYS

#: Elements per block when reducing a ``[T, N, ...]`` member (bounds memory to ~100 MB of float64).
_BLOCK_ELEMENTS = 1 << 23


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand to the ``rollrec`` command."""
    p = sub.add_parser("info", help="summarise a rollout file (fields, episodes, rewards)",
                       description="Print a rollout's size, fields, episode returns and reward statistics.")
    p.add_argument("file", help="rollout .npz file, or the directory of one recorded by several ranks")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--verify", action="store_true",
                   help="also check every member's CRC-32 (reads the whole file); exit 1 if one differs")
    p.add_argument("--allow-pickle", action="store_true",
                   help="open files of the original recorder (they hold pickled objects: trusted files only)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    summary = summarize(args.file, allow_pickle=args.allow_pickle, verify=args.verify, progress=not args.json)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


# ---- the summary ----------------------------------------------------------------------------
def summarize(path: str | os.PathLike, *, allow_pickle: bool = False, verify: bool = False,
              progress: bool = False) -> dict[str, Any]:
    """A JSON-serialisable summary of the rollout at ``path`` (see the module docstring).

    ``verify``: check every member's CRC-32 first (``"verified": true`` in the summary);
    ``progress``: show a progress bar on stderr while verifying.
    Raises what `rollrec.load` raises for a missing or invalid file, and `RolloutFormatError`
    for a member that fails its CRC check.
    """
    from rollrec.io.reader import load
    from rollrec.io.sharded import MissingEnvsWarning

    path = os.fspath(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingEnvsWarning)  # the summary lists missing shards itself
        opened = load(path, allow_pickle=allow_pickle)
    with opened as r:
        shards = getattr(r, "shards", None)  # a sharded rollout (torch.distributed): a directory of files
        file_bytes = os.path.getsize(path) if shards is None else _sharded_bytes(r)
        if verify:
            _verify(r, file_bytes, progress)
        members = r.member_info() if shards is None else _sharded_members(r)
        extents = getattr(r, "extents", None)  # (env range, steps) holding data, when some may be missing
        fields = {}
        for key in r.keys():  # noqa: SIM118 (Rollout has no __iter__)
            if key in members and not r.is_legacy:
                shape, dtype, stored = members[key]["shape"], members[key]["dtype"], members[key]["stored_bytes"]
            else:  # converted in memory from a legacy file: no member of that name and layout
                shape, dtype, stored = list(r[key].shape), r[key].dtype.str, None
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            fields[key] = {"shape": list(shape), "dtype": _dtype_name(dtype), "bytes": nbytes, "stored_bytes": stored}
            if key in r.step_keys and r.kind(key) != "all":  # format v2: kept for some envs or episodes only
                fields[key]["kept"] = r.kind(key)
        model_bytes = sum(fields.pop(k)["bytes"] for k in list(fields) if k in MODEL_KEYS)  # summarised as one
        robot = getattr(r, "model", None)
        model = None if robot is None else {"summary": repr(robot), "bytes": model_bytes, **robot.info}
        kinds = {m["compression"] for m in members.values()}
        compression = next(iter(kinds)) if len(kinds) == 1 else "mixed"
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
            "storage": {
                "compression": compression,
                "memory_mapped": compression == "stored" and not r.is_legacy,
                "data_bytes": sum(f["bytes"] for f in fields.values()) + model_bytes,
                "file_bytes": file_bytes,
                # Less than file_bytes where the recorder left holes (unused capacity given back).
                "disk_bytes": allocated_bytes(path) if shards is None else sum(
                    allocated_bytes(str(s.path)) or 0 for s in shards if s.present),
            },
            "fields": fields,
            "model": model,
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


def _verify(r, total: int, progress: bool) -> None:
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc="verifying CRC-32", disable=not progress or total < 1 << 28,
              file=sys.stderr, leave=False) as bar:
        r.verify(bar.update)


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
    from rollrec.io.manifest import MANIFEST_NAME

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
             "file_bytes": os.path.getsize(s.path) if s.present else None}
            for s in r.shards
        ],
    }


def _sparse(storage: dict[str, Any]) -> bool:
    disk = storage.get("disk_bytes")
    return disk is not None and storage["file_bytes"] - disk > max(1 << 20, storage["file_bytes"] // 20)


def _dtype_name(dtype) -> str:
    dtype = np.dtype(dtype)
    return f"unicode[{dtype.itemsize // 4}]" if dtype.kind == "U" else dtype.name


def _env_blocks(T: int, N: int, per_row: int = 1, extents=None):
    """``(a, b, steps)``: column ranges over the env axis holding about `_BLOCK_ELEMENTS` elements
    each, and the steps to read in them; ``extents`` ``[(a, b, steps)]`` limits them to the data present."""
    for lo, hi, steps in extents if extents is not None else [(0, N, T)]:
        step = max(1, _BLOCK_ELEMENTS // max(1, steps * per_row))
        yield from ((a, min(hi, a + step), steps) for a in range(lo, hi, step))


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
        csum = np.cumsum(np.asarray(rew[:steps, a:b], dtype=np.float64), axis=0)
        env, step = np.nonzero(d.T)  # sorted by env, then by step
        ends = csum[step, env]
        starts = np.zeros_like(ends)
        same_env = env[1:] == env[:-1]
        starts[1:][same_env] = ends[:-1][same_env]
        returns.append(ends - starts)
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


# ---- text -----------------------------------------------------------------------------------
def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _format_shards(sh: dict[str, Any]) -> list[str]:
    lines = [f"  shards    {sh['world_size']} ranks, manifest {sh['manifest_state']}"
             + (f"; envs missing: {', '.join(f'{a}..{b - 1}' for a, b in sh['missing_envs'])}" if sh["missing_envs"] else "")]
    for x in sh["shards"]:
        envs = f"{x['envs'][0]}..{x['envs'][1] - 1}"
        what = f"{x['steps']} steps  {_size(x['file_bytes'])}" if x["present"] else f"MISSING: {x['note']}"
        status = f" ({x['status']})" if x["present"] and x["status"] == "recovered" else ""
        lines.append(f"    rank {x['rank']:<3} envs {envs:<12} {x['file']}  {what}{status}")
    return lines


def _printable(text: str) -> str:
    """``text`` with control characters escaped: names come from the file, and a terminal would
    act on escape sequences."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def format_summary(s: dict[str, Any]) -> str:
    """The summary as the text `rollrec info` prints."""
    st = s["storage"]
    how = "stored, memory-mapped" if st["memory_mapped"] else st["compression"]
    kind = "legacy file (converted)" if s["legacy"] else f"format v{s['format_version']}"
    if "shards" in s:
        kind += f", {s['shards']['world_size']} shards"
    lines = [
        f"{s['path']}: {kind}, {_size(s['file_bytes'])}" + (" (recovered)" if s["recovered"] else ""),
        f"  env       {_printable(s['env_name'])}",
        f"  steps     T={s['T']}  x  dt={s['dt']:g} s  =  {s['duration_s']:.2f} s",
        f"  envs      N={s['N']}",
        f"  storage   {how}: {_size(st['data_bytes'])} of arrays in {_size(st['file_bytes'])} of file"
        + (f" ({_size(st['disk_bytes'])} on disk: the rest are holes)" if _sparse(st) else ""),
    ]
    if "shards" in s:
        lines += _format_shards(s["shards"])
    if s.get("volume"):
        lines += format_volume(s["volume"], s["N"], s["dt"])
    lines.append("fields")
    width = max((len(k) for k in s["fields"]), default=0)
    dwidth = max((len(f["dtype"]) for f in s["fields"].values()), default=0)
    for name, f in s["fields"].items():
        shape = "[" + ", ".join(map(str, f["shape"])) + "]"
        deflated = st["compression"] != "stored" and f["stored_bytes"] is not None
        stored = f"  ({_size(f['stored_bytes'])} in file)" if deflated else ""
        kept = {"detail": "  (detail envs)", "window": "  (captured windows)"}.get(f.get("kept"), "")
        lines.append(f"  {name:<{width}}  {shape:<18} {f['dtype']:<{dwidth}} {_size(f['bytes']):>10}{stored}{kept}")
    if s.get("model"):
        m = s["model"]
        lines.append(f"model  {m['summary']}, {_size(m['bytes'])}")
    e = s["episodes"]
    missing = "shards" in s and (s["shards"]["missing_envs"] or any(x["steps"] != s["T"] for x in s["shards"]["shards"]))
    lines += ["episodes and rewards (over the data present)" if missing else "episodes"]
    lines += [
        f"  done      {e['done']}" + (f" ({e['truncated']} truncated)" if e["truncated"] is not None else "")
        + f" in {e['finished_envs']} of {s['N']} envs",
        f"  return    mean {_num(e['mean_return'])}  min {_num(e['min_return'])}  max {_num(e['max_return'])}"
        + ("  (finished episodes)" if e["done"] else "  (no episode finished)"),
    ]
    rw = s["reward"]
    lines += ["reward", f"  rew       mean {_num(rw['mean'])}  min {_num(rw['min'])}  max {_num(rw['max'])}"]
    if rw["term_means"]:
        note = " (means over envs, from the original recorder)" if rw["terms_are_env_means"] else ""
        lines.append(f"  terms     per-step mean{note}")
        names = {name: _printable(name) for name in rw["term_means"]}
        tw = max(len(n) for n in names.values())
        lines += [f"    {names[name]:<{tw}}  {_num(v)}" for name, v in rw["term_means"].items()]
    return "\n".join(lines)
