"""``rollrec info FILE [--json] [--verify] [--allow-pickle]``: what a rollout file holds.

The figures are the library's (`rollrec.io.summary.summarize`: ``--json`` prints exactly its
result); this module only formats them. ``--verify`` also checks every member's CRC-32 (reading
the whole file once) and fails, naming the member, when one differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rollrec.cli.info_volume import format_volume
from rollrec.io.summary import summarize as library_summary


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
    """`rollrec.io.summary.summarize`, with a progress bar on stderr while verifying when ``progress``."""
    return library_summary(path, allow_pickle=allow_pickle, verify=verify, progress=_bar if progress else None)


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="verifying CRC-32", disable=total < 1 << 28,
                file=sys.stderr, leave=False)


def _sparse(storage: dict[str, Any]) -> bool:
    disk = storage.get("disk_bytes")
    return disk is not None and storage["file_bytes"] - disk > max(1 << 20, storage["file_bytes"] // 20)


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


#: Shard lines `rollrec info` prints one by one; the others are summed up in one line.
MOST_SHARD_LINES = 16


def _ranges(pairs: list[tuple[int, int]], most: int = 8) -> str:
    text = [f"{a}..{b - 1}" for a, b in pairs[:most]]
    return ", ".join(text) + (f" and {len(pairs) - most} more ranges" if len(pairs) > most else "")


def _format_shards(sh: dict[str, Any]) -> list[str]:
    live = [x["rank"] for x in sh["shards"] if x.get("live")]
    lines = [f"  shards    {sh['world_size']} ranks, manifest {sh['manifest_state']}"
             + (f"; envs missing: {_ranges(sh['missing_envs'])}" if sh["missing_envs"] else "")
             + (f"; ranks being recorded now: {_rank_list(live)}" if live else "")]
    shown = sh["shards"] if len(sh["shards"]) <= MOST_SHARD_LINES else [
        x for x in sh["shards"] if not x["present"] or x["status"] == "recovered"][:MOST_SHARD_LINES]
    for x in shown:
        envs = f"{x['envs'][0]}..{x['envs'][1] - 1}"
        if x["present"]:
            what = f"{x['steps']} steps  {_size(x['file_bytes'])}"
        else:
            what = f"{'LIVE' if x.get('live') else 'MISSING'}: {_printable(str(x['note']))}"
        status = f" ({x['status']})" if x["present"] and x["status"] == "recovered" else ""
        lines.append(f"    rank {x['rank']:<3} envs {envs:<12} {_printable(x['file'])}  {what}{status}")
    if len(shown) < len(sh["shards"]):
        present = sum(x["present"] for x in sh["shards"])
        lines.append(f"    ... {len(sh['shards']) - len(shown)} more shards not listed ({present} of "
                     f"{len(sh['shards'])} present in all; --json lists every one)")
    return lines


def _rank_list(ranks: list[int], most: int = 16) -> str:
    return ", ".join(map(str, ranks[:most])) + (f" and {len(ranks) - most} more" if len(ranks) > most else "")


def _printable(text: str) -> str:
    """``text`` with control characters escaped: names come from the file, and a terminal would
    act on escape sequences."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def format_cameras(cameras: dict[str, Any]) -> list[str]:
    """One line per camera: codec, frame shape, frames, bytes and their ratio to raw frames."""
    lines = ["cameras"]
    width = max(len(c) for c in cameras)
    for name, c in cameras.items():
        p = c["params"]
        codec = f"h264 (lossy, CRF {p.get('crf')}, {p.get('preset')})" if c["codec"] == "h264" else f"{c['codec']} (lossless)"
        shape = "[" + ", ".join(map(str, c["shape"])) + "]"
        ratio = f"{c['ratio']:.1f}x smaller than raw" if c["ratio"] else "empty"
        kept = {"detail": ", detail envs", "window": ", captured windows"}.get(c["kept"], "")
        lines.append(f"  {_printable(name):<{width}}  {shape} {c['dtype']}  {codec}  {c['frames']} frames  "
                     f"{_size(c['bytes'])} ({ratio}{kept})")
    return lines


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
    if s.get("cameras"):
        lines += format_cameras(s["cameras"])
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
    if s.get("verified"):
        lines.append(_verified_line(s.get("verified_members") or 0))
    return "\n".join(lines)


def _verified_line(members: int) -> str:
    if members == 0:
        return "verified  nothing to check: converted in memory from the original recorder's file"
    return f"verified  CRC-32 of {members} member{'s' * (members != 1)}: all match"
