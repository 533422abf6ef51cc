"""The per-step members an export carries, with their column names.

`step_fields` lists a rollout's per-step members but its cameras (`rollrec.exports.cameras`), in
a fixed order (the format's members first, then the extras by name). `column_names` names the
columns of a member flattened to one row per step: ``obs`` by its ``meta["obs_layout"]``,
``rew_terms`` by the reward terms, ``base_pos`` ``x, y, z``, ``base_quat`` ``w, x, y, z``, the
link poses ``<link>.x`` ...; None where the rollout does not say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rollrec.exports.cameras import is_image_member
from rollrec.io.protocol import ReadableRollout

#: The format's per-step members, in the order exports list them.
CORE_ORDER = ("obs", "act", "rew", "done", "truncated", "rew_terms", "base_pos", "base_quat", "link_pos", "link_quat")


@dataclass(frozen=True)
class Field:
    """Per-step member ``key``: ``[T, N, *trailing]`` of ``dtype``."""

    key: str
    trailing: tuple[int, ...]
    dtype: np.dtype

    @property
    def width(self) -> int:
        """Values per step once flattened."""
        return int(np.prod(self.trailing, dtype=np.int64))


def step_fields(r: ReadableRollout) -> list[Field]:
    """Every per-step member of ``r`` but the cameras and those holding no value per step (a
    recorder without reward terms writes ``rew_terms [T, N, 0]``): the format's (`CORE_ORDER`),
    then extras by name."""
    keys = [k for k in r.step_keys if not is_image_member(r, k) and 0 not in r[k].shape[2:]]
    ordered = [k for k in CORE_ORDER if k in keys] + sorted(k for k in keys if k not in CORE_ORDER)
    return [Field(k, tuple(r[k].shape[2:]), r[k].dtype) for k in ordered]


def _indexed(base: str, shape: tuple[int, ...]) -> list[str]:
    if not shape or int(np.prod(shape)) == 1:
        return [base]
    return [f"{base}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]


def column_names(r: ReadableRollout, f: Field) -> list[str] | None:
    """Names of ``f``'s ``width`` columns, or None when the rollout does not name them."""
    if f.key == "obs" and isinstance(r.meta.get("obs_layout"), list):
        names = []
        for entry in r.meta["obs_layout"]:
            names += _indexed(str(entry["name"]), tuple(entry.get("shape") or (int(entry["stop"]) - int(entry["start"]),)))
        return names if len(names) == f.width else None
    if f.key == "rew_terms":
        return list(r.reward_term_names) if len(r.reward_term_names) == f.width else None
    if f.key == "base_pos":
        return ["x", "y", "z"]
    if f.key == "base_quat":
        return ["w", "x", "y", "z"]
    if f.key in ("link_pos", "link_quat") and r.link_names:
        axes = "xyz" if f.key == "link_pos" else "wxyz"
        return [f"{link}.{a}" for link in r.link_names for a in axes]
    return None


def obs_parts(r: ReadableRollout, width: int) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """``[(name, start, stop, shape)]`` of the obs columns by ``meta["obs_layout"]``, or one part
    ``("flat", 0, D, (D,))`` when the rollout does not name them."""
    layout = r.meta.get("obs_layout")
    if isinstance(layout, list) and layout and sum(int(e["stop"]) - int(e["start"]) for e in layout) == width:
        return [(str(e["name"]), int(e["start"]), int(e["stop"]),
                 tuple(e.get("shape") or (int(e["stop"]) - int(e["start"]),))) for e in layout]
    return [("flat", 0, width, (width,))]


__all__ = ["CORE_ORDER", "Field", "column_names", "obs_parts", "step_fields"]
