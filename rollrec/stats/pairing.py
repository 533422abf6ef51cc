"""Whether two runs are paired (env k of one faced what env k of the other faced), and why.

Paired runs differ only by what is compared (the policy), env by env, so their difference cancels
what each env's start, constants and terrain contribute: the interval narrows. `decide` pairs two
runs when they have the same envs and every env's first observation has the same digest
(``meta["start_state"]``, `rollrec.format.start_state`) and, when both record one, the same
``meta["seed"]``; otherwise they are compared as independent samples, and the reason says which
check failed. ``paired=True``/``False`` overrides the checks (True still needs the same envs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollrec.stats.episodes import RunEpisodes


@dataclass(frozen=True)
class Pairing:
    """``paired``, and ``reason``: one line that says which and why."""

    paired: bool
    reason: str


def decide(a: RunEpisodes, b: RunEpisodes, names: tuple[str, str], paired: bool | None = None) -> Pairing:
    """How run ``b`` is compared with baseline ``a`` (``names``: how the user calls them). ``paired``:
    None decides from the files; True pairs (ValueError if the envs differ); False does not."""
    na, nb = names
    if a.num_envs != b.num_envs:
        why = (f"{na} has {a.num_envs} envs and {nb} {b.num_envs}: env k of one is not env k of the other")
        if paired:
            raise ValueError(f"cannot pair {nb} with {na}: {why}")
        return Pairing(False, f"unpaired: {why}")
    if not np.array_equal(a.present, b.present):
        why = f"the envs with data differ ({int(a.present.sum())} in {na}, {int(b.present.sum())} in {nb}: a missing shard)"
        if paired:
            raise ValueError(f"cannot pair {nb} with {na}: {why}")
        return Pairing(False, f"unpaired: {why}")
    if paired is False:
        return Pairing(False, "unpaired, as asked")
    check = _starts(a, b, names)
    if paired:
        return Pairing(True, "paired, as asked" + (f" (though {check})" if check else ""))
    if check:
        return Pairing(False, f"unpaired: {check}")
    seed = f", seed {a.seed}" if a.seed is not None else ""
    return Pairing(True, f"paired: the same {a.num_envs} envs, each starting from the same first observation "
                         f"(start digest {a.start_state.digest}{seed})")


def _starts(a: RunEpisodes, b: RunEpisodes, names: tuple[str, str]) -> str | None:
    """Why the runs' envs may not have faced the same starts, or None when they did."""
    for run, name in ((a, names[0]), (b, names[1])):
        if run.start_state is None:
            return f"{name}: {run.start_note}; pass paired=True (--paired) if env k faced the same start in both"
    sa, sb = a.start_state, b.start_state
    assert sa is not None and sb is not None
    if (sa.hash, sa.fields) != (sb.hash, sb.fields):
        return f"their start digests differ in kind ({sa.hash} of {list(sa.fields)}, {sb.hash} of {list(sb.fields)})"
    if a.seed is not None and b.seed is not None and a.seed != b.seed:
        return f"their seeds differ ({a.seed!r} and {b.seed!r})"
    differ = a.present & (sa.digests != sb.digests)
    if differ.any():
        k = int(np.flatnonzero(differ)[0])
        return (f"the first observations differ in {int(differ.sum())} of {int(a.present.sum())} envs (env {k} first): "
                "other seeds or initial states")
    return None


def run_names(paths: list[Path]) -> list[str]:
    """How to call each run: its file name, or as many trailing path parts as tell it apart from the
    others (``a/run.npz`` and ``b/run.npz``; the full path when nothing shorter does)."""
    parts = [Path(p).parts for p in paths]
    names = []
    for i, p in enumerate(parts):
        name = str(Path(*p)) if p else str(paths[i])
        for k in range(1, len(p) + 1):
            tail = p[-k:]
            if not any(q[-k:] == tail for j, q in enumerate(parts) if j != i) or k == len(p):
                name = str(Path(*tail))
                break
        names.append(name)
    return names


__all__ = ["Pairing", "decide", "run_names"]
