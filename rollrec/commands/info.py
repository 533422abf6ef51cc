"""``rollrec info FILE [--json] [--allow-pickle]``: what a rollout file holds, without loading it.

Shapes, dtypes and sizes come from the zip and npy headers. Episode and reward statistics read
``rew`` and ``done`` (and ``truncated``, ``rew_terms`` for their counts and means) in blocks, so a
multi-GB file is summarised in bounded memory.
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from typing import Any

import numpy as np

from rollrec.io.model import MODEL_KEYS

#: Elements per block when reducing a ``[T, N, ...]`` member (bounds memory to ~100 MB of float64).
_BLOCK_ELEMENTS = 1 << 23


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand to the ``rollrec`` command."""
    p = sub.add_parser("info", help="summarise a rollout file (fields, episodes, rewards)",
                       description="Print a rollout's size, fields, episode returns and reward statistics.")
    p.add_argument("file", help="rollout .npz file")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--allow-pickle", action="store_true",
                   help="open files of the original recorder (they hold pickled objects: trusted files only)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    summary = summarize(args.file, allow_pickle=args.allow_pickle)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


# ---- the summary ----------------------------------------------------------------------------
def summarize(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, Any]:
    """A JSON-serialisable summary of the rollout at ``path`` (see the module docstring).

    Raises what `rollrec.load` raises for a missing or invalid file.
    """
    from rollrec.io.reader import load

    path = os.fspath(path)
    with load(path, allow_pickle=allow_pickle) as r:
        members = _zip_members(path)
        fields = {}
        for key in r.keys():  # noqa: SIM118 (Rollout has no __iter__)
            if key in members and not r.is_legacy:
                shape, dtype, stored = members[key]["shape"], members[key]["dtype"], members[key]["stored_bytes"]
            else:  # converted in memory from a legacy file: no member of that name and layout
                shape, dtype, stored = list(r[key].shape), r[key].dtype.str, None
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            fields[key] = {"shape": list(shape), "dtype": _dtype_name(dtype), "bytes": nbytes, "stored_bytes": stored}
        model_bytes = sum(fields.pop(k)["bytes"] for k in list(fields) if k in MODEL_KEYS)  # summarised as one
        model = None if r.model is None else {"summary": repr(r.model), "bytes": model_bytes, **r.model.info}
        kinds = {m["compression"] for m in members.values()}
        compression = next(iter(kinds)) if len(kinds) == 1 else "mixed"
        return {
            "path": path,
            "file_bytes": os.path.getsize(path),
            "format_version": r.meta.get("format_version"),
            "env_name": r.env_name,
            "T": r.T,
            "N": r.N,
            "dt": r.dt,
            "duration_s": r.T * r.dt,
            "legacy": r.is_legacy,
            "recovered": bool(r.meta.get("recovered", False)),
            "storage": {
                "compression": compression,
                "memory_mapped": compression == "stored" and not r.is_legacy,
                "data_bytes": sum(f["bytes"] for f in fields.values()) + model_bytes,
                "file_bytes": os.path.getsize(path),
            },
            "fields": fields,
            "model": model,
            "episodes": episode_stats(r["rew"], r["done"], r["truncated"]),
            "reward": reward_stats(r["rew"], r["rew_terms"], r.reward_term_names, r.terms_are_env_means),
            "meta": r.meta,
        }


def _zip_members(path: str) -> dict[str, dict[str, Any]]:
    """``{member: {shape, dtype, stored_bytes, compression}}`` from the headers only."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            out[info.filename[:-4]] = {
                "shape": list(shape),
                "dtype": dtype.str,
                "stored_bytes": info.compress_size,
                "compression": "stored" if info.compress_type == zipfile.ZIP_STORED else "deflated",
            }
    return out


def _dtype_name(dtype) -> str:
    dtype = np.dtype(dtype)
    return f"unicode[{dtype.itemsize // 4}]" if dtype.kind == "U" else dtype.name


def _env_blocks(T: int, N: int, per_row: int = 1):
    """Column ranges ``(a, b)`` over the env axis holding about `_BLOCK_ELEMENTS` elements each."""
    step = max(1, _BLOCK_ELEMENTS // max(1, T * per_row))
    return ((a, min(N, a + step)) for a in range(0, N, step))


def episode_stats(rew: np.ndarray, done: np.ndarray, truncated: np.ndarray | None = None) -> dict[str, Any]:
    """Counts and returns of the finished episodes of ``rew``/``done`` ``[T, N]``.

    An episode finishes at a step whose ``done`` is set; its return is the sum of ``rew`` since
    the previous finish of that env (or the start). Unfinished tails are not counted.
    Returns ``{done, truncated, finished_envs, mean_return, min_return, max_return}`` (returns
    are None when no episode finished).
    """
    T, N = done.shape
    returns = []
    done_count = 0
    for a, b in _env_blocks(T, N):
        d = np.asarray(done[:, a:b], dtype=bool)
        if not d.any():
            continue
        done_count += int(d.sum())
        csum = np.cumsum(np.asarray(rew[:, a:b], dtype=np.float64), axis=0)
        env, step = np.nonzero(d.T)  # sorted by env, then by step
        ends = csum[step, env]
        starts = np.zeros_like(ends)
        same_env = env[1:] == env[:-1]
        starts[1:][same_env] = ends[:-1][same_env]
        returns.append(ends - starts)
    finished_envs = 0
    for a, b in _env_blocks(T, N):
        finished_envs += int(np.asarray(done[:, a:b], dtype=bool).any(axis=0).sum())
    ret = np.concatenate(returns) if returns else np.zeros(0)
    stats: dict[str, Any] = {
        "done": done_count,
        "truncated": int(sum(np.asarray(truncated[:, a:b]).sum() for a, b in _env_blocks(T, N)))
        if truncated is not None else None,
        "finished_envs": finished_envs,
        "mean_return": None,
        "min_return": None,
        "max_return": None,
    }
    if ret.size:
        stats.update(mean_return=float(ret.mean()), min_return=float(ret.min()), max_return=float(ret.max()))
    return stats


def reward_stats(rew: np.ndarray, rew_terms: np.ndarray, names: list[str], env_means: bool = False) -> dict[str, Any]:
    """Mean/min/max of ``rew`` ``[T, N]`` and the mean of each of the K ``rew_terms`` ``[T, N, K]``."""
    T, N = rew.shape
    K = rew_terms.shape[2]
    total, lo, hi = 0.0, np.inf, -np.inf
    term_sums = np.zeros(K)
    for a, b in _env_blocks(T, N, per_row=max(1, K)):
        r = np.asarray(rew[:, a:b], dtype=np.float64)
        if r.size:
            total += float(r.sum())
            lo, hi = min(lo, float(r.min())), max(hi, float(r.max()))
        term_sums += np.asarray(rew_terms[:, a:b], dtype=np.float64).sum(axis=(0, 1))
    count = T * N
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


def format_summary(s: dict[str, Any]) -> str:
    """The summary as the text `rollrec info` prints."""
    st = s["storage"]
    how = "stored, memory-mapped" if st["memory_mapped"] else st["compression"]
    kind = "legacy file (converted)" if s["legacy"] else f"format v{s['format_version']}"
    lines = [
        f"{s['path']}: {kind}, {_size(s['file_bytes'])}" + (" (recovered)" if s["recovered"] else ""),
        f"  env       {s['env_name']}",
        f"  steps     T={s['T']}  x  dt={s['dt']:g} s  =  {s['duration_s']:.2f} s",
        f"  envs      N={s['N']}",
        f"  storage   {how}: {_size(st['data_bytes'])} of arrays in {_size(st['file_bytes'])} of file",
        "fields",
    ]
    width = max((len(k) for k in s["fields"]), default=0)
    dwidth = max((len(f["dtype"]) for f in s["fields"].values()), default=0)
    for name, f in s["fields"].items():
        shape = "[" + ", ".join(map(str, f["shape"])) + "]"
        deflated = st["compression"] != "stored" and f["stored_bytes"] is not None
        stored = f"  ({_size(f['stored_bytes'])} in file)" if deflated else ""
        lines.append(f"  {name:<{width}}  {shape:<18} {f['dtype']:<{dwidth}} {_size(f['bytes']):>10}{stored}")
    if s.get("model"):
        m = s["model"]
        lines.append(f"model  {m['summary']}, {_size(m['bytes'])}")
    e = s["episodes"]
    lines += [
        "episodes",
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
        tw = max(len(n) for n in rw["term_means"])
        lines += [f"    {name:<{tw}}  {_num(v)}" for name, v in rw["term_means"].items()]
    return "\n".join(lines)
