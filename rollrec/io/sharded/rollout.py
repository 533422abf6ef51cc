"""Open a sharded rollout (a directory of per-rank files, see `rollrec.format.manifest`) as one env axis.

`open_sharded` returns a `ShardedRollout`, a `Rollout` whose arrays are `ShardedArray` views:
``r["obs"][t, g]`` and ``r.env(g)`` read only the shard holding env ``g``; a slice across shards
reads each shard's part and assembles them. Nothing is read at open but the shards' headers.

Missing data (a rank that died: its shard has no file, or a recovered shard holds fewer steps
than T) reads as fill values: NaN for floats, False for bools, the dtype's minimum for signed
integers and 0 for unsigned ones, so reductions over the present envs keep working and a
missing value never looks like a plausible one. ``r.missing_envs`` lists the env ranges with no
data, ``r.meta["sharded"]`` records them, `open_sharded` warns (`MissingEnvsWarning`) naming them
and their files, and ``r.env(g)``, ``r.episode_bounds(g)``, ``r.episode_returns(g)`` raise
`MissingEnvsError` for such an env.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.io.env_array import ShardedArray, clip_range, fill_value
from rollrec.format.errors import RolloutFormatError
from rollrec.format.meta import encode_meta
from rollrec.format.start_state import merge as merge_start_states
from rollrec.format.manifest import MANIFEST_NAME, rollout_dir
from rollrec.io.sharded.manifest import read_manifest
from rollrec.format.model import MODEL_KEYS
from rollrec.io.reader import Rollout
from rollrec.io.partial import RecordingBusyError
from rollrec.io.sharded.shards import ShardState, check_consistent, live_shards_message, open_shards, shard_facts

#: Keys of a shard's ``meta`` that describe that shard alone, left out of the rollout's ``meta``.
_SHARD_ONLY_META = ("shard", "video", "num_envs", "num_steps", "recovered", "interrupted", "start_state")


class MissingEnvsError(RolloutFormatError):
    """An env of a sharded rollout was asked for whose shard is missing (its rank died)."""


class MissingEnvsWarning(UserWarning):
    """A sharded rollout was opened with some envs (or some envs' last steps) missing."""


class ShardedRollout(Rollout):
    """A sharded rollout opened as one env axis: the interface of `Rollout`, ``N`` the total.

    ``shards`` lists each shard as found on disk (`ShardState`: its manifest entry, path,
    whether it is present); ``missing_envs`` the ``(start, stop)`` env ranges with no data.
    """

    def __init__(self, directory: Path, states: list[ShardState], T: int, manifest_state: str, run_id: str):
        self.shards = states
        present = [s for s in states if s.present]
        first = present[0].rollout
        N = sum(s.entry.num_envs for s in states)
        self.missing_envs = _merge([(s.entry.env_offset, s.entry.env_stop) for s in states if not s.present])
        short = [s for s in present if s.num_steps < T]
        fields: dict[str, Any] = {}
        for key in first.step_keys:
            proto = first[key]
            parts = [(s.entry.env_offset, s.entry.num_envs, s.rollout[key] if s.present else None) for s in states]
            fields[key] = ShardedArray(key, parts, T, N, tuple(proto.shape[2:]), proto.dtype)
        for key in ("rew_term_names", "link_names", *MODEL_KEYS):  # every rank stores the same robot model
            if key in first:
                fields[key] = first[key]
        meta = {k: v for k, v in first.meta.items() if k not in _SHARD_ONLY_META}
        starts = merge_start_states([(s.entry.env_offset, s.entry.num_envs, s.rollout.meta.get("start_state")
                                      if s.present else None) for s in states], N)
        if starts is not None:  # every env's first obs (rollrec.format.start_state), in env order
            meta["start_state"] = starts
        meta.update(num_envs=N, num_steps=T, sharded={
            "run_id": run_id,
            "world_size": len(states),
            "manifest_state": manifest_state,
            "missing_envs": [list(r) for r in self.missing_envs],
            "short_shards": [{"rank": s.entry.rank, "envs": [s.entry.env_offset, s.entry.env_stop],
                              "num_steps": s.num_steps} for s in short],
        })
        fields["meta"] = encode_meta(meta)
        super().__init__(str(directory), fields, meta, closer=self._close_shards)

    def _close_shards(self) -> None:
        for s in self.shards:
            s.close()

    @property
    def extents(self) -> list[tuple[int, int, int]]:
        """``(env_start, env_stop, steps)`` of the data present: one per present shard, in env order."""
        present = [s for s in self.shards if s.present]
        return [(s.entry.env_offset, s.entry.env_stop, s.num_steps) for s in sorted(present, key=lambda s: s.entry.env_offset)]

    @property
    def env_present(self) -> np.ndarray:
        """``[N]`` bool: True for envs whose shard is present."""
        mask = np.ones(self.N, dtype=bool)
        for a, b in self.missing_envs:
            mask[a:b] = False
        return mask

    def shard_of(self, env: int) -> ShardState:
        """The shard holding global env ``env``."""
        env = super()._check_env(env)
        return next(s for s in self.shards if s.entry.env_offset <= env < s.entry.env_stop)

    def _check_env(self, env: int) -> int:
        return self.check_present(env)

    def check_present(self, env: int) -> int:
        """``env`` as an index in ``0..N-1``; raises IndexError when out of range and
        `MissingEnvsError` when its shard is missing."""
        shard = self.shard_of(env)
        if not shard.present:
            e = shard.entry
            raise MissingEnvsError(
                f"{self.path}: env {env % self.N} is missing: it was recorded by rank {e.rank} (envs "
                f"{e.env_offset}..{e.env_stop - 1}, {e.file}), whose shard is missing ({shard.note})"
            )
        return env % self.N

    def env(self, env: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """One env's trajectory ``{key: [T, ...]}``, read from its shard only (see `Rollout.env`).

        Steps past the end of a short (recovered) shard read as `fill_value`. Raises
        `MissingEnvsError` when the env's shard is missing.
        """
        g = self._check_env(env)
        shard = self.shard_of(g)
        out = shard.rollout.env(g - shard.entry.env_offset, keys)
        if shard.num_steps < self.T:
            for k, a in out.items():
                full = np.full((self.T, *a.shape[1:]), fill_value(a.dtype), a.dtype)
                full[: a.shape[0]] = a
                out[k] = full
        return out

    def images(self, camera: str, env: int):
        """`Rollout.images` of global env ``env``, read from its shard (`MissingEnvsError` when missing)."""
        if camera not in self.layout.cameras:
            return super().images(camera, env)  # the KeyError naming the cameras
        g = self._check_env(env)
        shard = self.shard_of(g)
        frames = shard.rollout.images(camera, g - shard.entry.env_offset)
        frames.env = g
        return frames

    def read(self, key: str, steps: tuple[int, int] | None = None, envs: tuple[int, int] | None = None) -> np.ndarray:
        """`Rollout.read` across shards: each present shard's part read with pread; missing envs and
        steps past a short shard's end read as `fill_value`."""
        t0, t1 = clip_range(steps, self.T)
        a, b = clip_range(envs, self.N)
        proto = self._fields[key]
        out = np.full((t1 - t0, b - a, *proto.shape[2:]), fill_value(proto.dtype), proto.dtype)
        for s in self.shards:
            lo, hi = max(a, s.entry.env_offset), min(b, s.entry.env_stop)
            if not s.present or lo >= hi or t0 >= s.num_steps:
                continue
            stop = min(t1, s.num_steps)
            part = s.rollout.read(key, (t0, stop), (lo - s.entry.env_offset, hi - s.entry.env_offset))
            out[: stop - t0, lo - a : hi - a] = part
        return out

    def verify(self, progress=None) -> int:
        """Check the CRC-32 of every member of every present shard (see `Rollout.verify`); returns
        the number of members checked, over all shards."""
        return sum(s.rollout.verify(progress) for s in self.shards if s.present)

    def check_unchanged(self) -> None:
        """`RolloutFormatError` if a present shard's file changed since it was opened."""
        for s in self.shards:
            if s.present:
                s.rollout.check_unchanged()

    def __repr__(self) -> str:
        missing = f", missing_envs={self.missing_envs}" if self.missing_envs else ""
        return f"ShardedRollout({str(self.path)!r}, T={self.T}, N={self.N}, shards={len(self.shards)}{missing})"


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def sharded_dir(path: str | os.PathLike) -> Path | None:
    """The sharded rollout ``path`` names, or None: a directory with a manifest (or with shard
    files and no manifest), the manifest itself, or ``run.npz`` when only ``run/`` exists."""
    p = Path(path)
    if p.name == MANIFEST_NAME and p.is_file():
        return p.parent
    if p.is_dir():
        if (p / MANIFEST_NAME).exists() or any(p.glob("rank-*.npz*")):
            return p
        return None
    if not p.exists() and p.suffix == ".npz" and (rollout_dir(p) / MANIFEST_NAME).exists():
        return rollout_dir(p)
    return None


def open_sharded(directory: str | os.PathLike) -> ShardedRollout:
    """Open the sharded rollout in ``directory`` (see the module docstring for missing data).

    Raises FileNotFoundError without a manifest (``rollrec recover`` rebuilds one) and
    `RolloutFormatError` for an invalid manifest, shards that disagree on their fields, or no
    readable shard at all.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    states = open_shards(directory, manifest.shards, manifest.run_id)
    try:
        present = [s for s in states if s.present]
        if not present:
            live = live_shards_message(directory, states)
            if live is not None:  # the ranks are recording it now
                raise RecordingBusyError(f"{live}: the shard files appear when the ranks finish",
                                         next(s.live for s in states if s.live is not None))
            raise RolloutFormatError(f"{directory}: no shard is readable ({_notes_text(states)})")
        if present[0].rollout.layout.has_index:
            raise RolloutFormatError(
                f"{directory}: its shards keep some envs or steps only (envs=, every= or capture=), which a sharded "
                "rollout does not support; open each shard file on its own"
            )
        check_consistent([(s.entry.file, shard_facts(s.rollout)) for s in present])
        _check_layout_vouched(directory, manifest, present)
        T = max(s.num_steps for s in present)  # the manifest's num_steps is a claim; the files hold the steps
        rollout = ShardedRollout(directory, states, T, manifest.state, manifest.run_id)
    except BaseException:
        for s in states:
            s.close()
        raise
    problems = [
        f"envs {s.entry.env_offset}..{s.entry.env_stop - 1} (rank {s.entry.rank}, {s.entry.file}) are missing: {s.note}"
        for s in states if not s.present
    ] + [
        f"envs {s.entry.env_offset}..{s.entry.env_stop - 1} (rank {s.entry.rank}) hold {s.num_steps} of {T} steps"
        for s in present if s.num_steps < T
    ]
    if problems:
        more = f"; and {len(problems) - _MOST_LISTED} more shards" if len(problems) > _MOST_LISTED else ""
        warnings.warn(
            f"{directory}: " + "; ".join(problems[:_MOST_LISTED]) + more + ". Missing data reads as NaN (floats), "
            "False (bools) or the dtype's minimum (ints); r.env(g) raises for a missing env.",
            MissingEnvsWarning, stacklevel=3,
        )
    return rollout


def _check_layout_vouched(directory: Path, manifest, present: list[ShardState]) -> None:
    """Every present shard records the whole env layout (``meta["shard"]["layout"]``), so the
    manifest's entries, also those of missing shards, are checked against the files: a manifest
    cannot make a missing shard hold more envs than its rank recorded."""
    layout = [[e.env_offset, e.num_envs] for e in manifest.shards]
    for s in present:
        recorded = (s.rollout.meta.get("shard") or {}).get("layout")
        if recorded is not None and [list(map(int, x)) for x in recorded] != layout:
            shown = layout if len(layout) <= _MOST_LISTED else f"{len(layout)} shards"
            raise RolloutFormatError(
                f"{directory}: {MANIFEST_NAME} lists the env layout {shown}, but {s.entry.file} records "
                f"{recorded if len(recorded) <= _MOST_LISTED else f'{len(recorded)} shards'}; the manifest does "
                f"not describe these shard files (`rollrec recover {directory}` rebuilds it from them)"
            )


#: Shards a message lists one by one; the rest are counted (a manifest may name 200,000).
_MOST_LISTED = 8


def _notes_text(states: list[ShardState]) -> str:
    notes = [f"{s.entry.file}: {s.note}" for s in states[:_MOST_LISTED]]
    more = f"; and {len(states) - _MOST_LISTED} more" if len(states) > _MOST_LISTED else ""
    return "; ".join(notes) + more


__all__ = ["MissingEnvsError", "MissingEnvsWarning", "ShardedArray", "ShardedRollout", "fill_value", "open_sharded",
           "sharded_dir"]
