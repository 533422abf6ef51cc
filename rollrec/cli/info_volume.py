"""What `rollrec info` prints for a format-v2 file: what was kept (the figures: `rollrec.io.summary`).

A v2 file (`rollrec.format.v2`) may keep some fields for some envs or for captured episodes
only, one step in k, in other dtypes; `rollrec.io.summary.volume_summary` says so and
`format_volume` prints it.
"""

from __future__ import annotations

from typing import Any


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


__all__ = ["format_volume"]
