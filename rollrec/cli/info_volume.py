"""What `rollrec info` adds for a format-v2 file: what was kept, and statistics from the episode index.

A v2 file (`rollrec.io.format_v2`) may keep some fields for some envs or for captured episodes
only, one step in k, in other dtypes. `volume_summary` says so; `index_episode_stats` computes the
episode figures from the index (exact returns in the original step numbering); `kept_stats` the
reward figures from the values the file holds (a member kept for some envs is summarised over
them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rollrec.io.episode_index import END_NAMES


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
    """`rollrec.cli.info.episode_stats` from the episode index (finished episodes only)."""
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
    """`rollrec.cli.info.reward_stats` over the values the file holds (stored members read whole)."""
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


def format_volume(v: dict[str, Any], N: int, dt: float) -> list[str]:
    """The ``kept`` lines of `rollrec info`."""
    lines = []
    if v["every"] > 1:
        lines.append(f"  every     1 step in {v['every']} of {v['recorded_steps']} recorded steps kept (a row stands for "
                     f"{v['every']} x {dt / v['every']:g} s: rewards summed, dones OR-ed)")
    if "detail" in v:
        d = v["detail"]
        lines.append(f"  detail    {d['envs']} of {N} envs keep {', '.join(d['members'])}")
        lines.append(f"            every env keeps {', '.join(d['all_envs']) or 'nothing but the episode index'}")
    if "windows" in v:
        w = v["windows"]
        lines.append(f"  captured  {w['captured']} of {w['episodes']} episodes ({w['capture']}): their last {w['window']} "
                     f"steps keep {', '.join(w['members'])} ({w['rows']} rows)")
        lines.append(f"            every env keeps {', '.join(w['all_envs']) or 'nothing but the episode index'}")
    if v["dtypes"]:
        lines.append("  dtypes    " + ", ".join(f"{k} {t}" for k, t in v["dtypes"].items()))
    if v["fields"] is not None:
        lines.append(f"  fields    only {', '.join(v['fields']) + ' and ' if v['fields'] else ''}the required ones kept")
    return lines


__all__ = ["format_volume", "index_episode_stats", "kept_stats", "volume_summary"]
