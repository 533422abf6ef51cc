"""Open a sharded rollout (a directory of per-rank files, see `rollrec.io.manifest`) as one env axis.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.io.errors import RolloutFormatError
from rollrec.io.format import encode_meta
from rollrec.io.manifest import MANIFEST_NAME, read_manifest, rollout_dir
from rollrec.io.model import MODEL_KEYS
from rollrec.io.reader import Rollout, _clip
from rollrec.io.shard_files import ShardState, check_consistent, open_shard, shard_facts

#: Keys of a shard's ``meta`` that describe that shard alone, left out of the rollout's ``meta``.
_SHARD_ONLY_META = ("shard", "video", "num_envs", "num_steps", "recovered", "interrupted")


class MissingEnvsError(RolloutFormatError):
    """An env of a sharded rollout was asked for whose shard is missing (its rank died)."""


class MissingEnvsWarning(UserWarning):
    """A sharded rollout was opened with some envs (or some envs' last steps) missing."""


def fill_value(dtype: np.dtype) -> Any:
    """What missing data reads as: NaN, False, the signed dtype's minimum, or 0 (unsigned)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "b":
        return False
    if dtype.kind == "i":
        return np.iinfo(dtype).min
    return 0


def _axis_index(key: Any, n: int, axis: str) -> tuple[np.ndarray | int, bool]:
    """``key`` on an axis of length ``n`` as an int (scalar) or an int64 index array."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        k = int(key)
        if not -n <= k < n:
            raise IndexError(f"index {k} is out of bounds for the {axis} axis of size {n}")
        return k % n, True
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key], False
    idx = np.asarray(key)
    if idx.dtype == np.bool_:
        if idx.shape != (n,):
            raise IndexError(f"boolean index for the {axis} axis must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx), False
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise IndexError(f"the {axis} axis takes an int, a slice or a 1-D int/bool array, got {key!r}")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index out of bounds for the {axis} axis of size {n}")
    return idx.astype(np.int64) % n if idx.size else idx.astype(np.int64), False


def _compact(idx: np.ndarray) -> slice | np.ndarray:
    """An evenly spaced index array as the equivalent slice (so memory maps stay views), else itself."""
    if idx.size == 0:
        return slice(0, 0)
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    step = int(idx[1] - idx[0])
    if step == 0 or not np.all(np.diff(idx) == step):
        return idx
    stop = int(idx[-1]) + (1 if step > 0 else -1)
    return slice(int(idx[0]), stop if stop >= 0 else None, step)


class ShardedArray:
    """A ``[T, N, ...]`` array of a sharded rollout, read lazily from the shards' arrays.

    Index it like a numpy array: ints, slices and one 1-D int/bool array among the time and env
    axes, then any basic index on the trailing axes. A selection inside one complete shard
    returns that shard's view (a memory map for stored files); one that spans shards, or touches
    missing data, returns a new array with the missing parts set to `fill_value`.
    ``np.asarray(a)`` reads it whole.
    """

    def __init__(self, name: str, parts: Sequence[tuple[int, int, np.ndarray | None]], T: int, N: int,
                 row_shape: tuple[int, ...], dtype: np.dtype):
        self.name = name
        self._parts = list(parts)  # (env_offset, num_envs, shard array [T_s, n, ...] or None) by offset
        self.shape = (T, N, *row_shape)
        self.dtype = np.dtype(dtype)
        self.fill = fill_value(self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self[:, :])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"ShardedArray({self.name!r}, shape={self.shape}, dtype={self.dtype}, shards={len(self._parts)})"

    def _split(self, key: Any) -> tuple[Any, Any, tuple]:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is None for k in key):
            raise IndexError("np.newaxis is not supported when indexing a sharded array")
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices: {self.name} is {self.ndim}-dimensional")
        key = key + (slice(None),) * (2 - min(len(key), 2))
        return key[0], key[1], tuple(key[2:])

    def __getitem__(self, key: Any) -> np.ndarray:
        t_key, e_key, rest = self._split(key)
        T, N = self.shape[:2]
        t, t_scalar = _axis_index(t_key, T, "time")
        e, e_scalar = _axis_index(e_key, N, "env")
        # Keep numpy's result layout: refuse the mixes where advanced indices would move axes.
        t_arr = not t_scalar and not isinstance(t_key, slice)
        e_arr = not e_scalar and not isinstance(e_key, slice)
        if t_arr and e_arr:
            raise IndexError("index at most one of the time and env axes with an array")
        basic = [isinstance(k, (slice, int, np.integer)) for k in rest]
        ints = [not isinstance(k, slice) for k in rest]
        if (t_arr or e_arr or t_scalar or e_scalar) and not all(basic):
            raise IndexError("index the trailing axes with arrays only when the time and env axes take slices")
        if e_arr and ints != sorted(ints, reverse=True):  # numpy would move the env axis to the front
            raise IndexError("with an index array on the env axis, put int indices on the trailing axes right after it")
        row_shape = np.broadcast_to(np.empty((), self.dtype), self.shape[2:])[rest].shape
        t_dims = () if t_scalar else (len(t),)
        t_sel = t if t_scalar else _compact(t)
        if e_scalar:
            offset, count, arr = self._part_of(e)
            return self._read(arr, t, t_scalar, t_sel, e - offset, rest, t_dims + row_shape)
        touched = []
        for offset, count, arr in self._parts:
            mask = (e >= offset) & (e < offset + count)
            if mask.any():
                touched.append((np.flatnonzero(mask), offset, arr))
        if len(touched) == 1 and touched[0][2] is not None and self._full_time(touched[0][2], t, t_scalar):
            pos, offset, arr = touched[0]
            return arr[(t_sel, _compact(e[pos] - offset), *rest)]
        out = np.empty(t_dims + (len(e),) + row_shape, self.dtype)
        for pos, offset, arr in touched:
            dst = (slice(None), _compact(pos)) if not t_scalar else (_compact(pos),)
            local = _compact(e[pos] - offset)
            out[dst] = self._read(arr, t, t_scalar, t_sel, local, rest, t_dims + (len(pos),) + row_shape)
        return out

    def _part_of(self, g: int) -> tuple[int, int, np.ndarray | None]:
        for part in self._parts:
            if part[0] <= g < part[0] + part[1]:
                return part
        raise IndexError(f"env {g} is in no shard")  # unreachable: the layout covers 0..N-1

    def _full_time(self, arr: np.ndarray, t: np.ndarray | int, t_scalar: bool) -> bool:
        steps = arr.shape[0]
        return (t < steps) if t_scalar else (t.size == 0 or int(t.max()) < steps)

    def _read(self, arr, t, t_scalar, t_sel, local, rest, shape) -> np.ndarray:
        """One shard's part: read what it holds, fill what it lacks (missing shard or steps past its end)."""
        if arr is None:
            return np.full(shape, self.fill, self.dtype)
        if self._full_time(arr, t, t_scalar):
            return arr[(t_sel, local, *rest)]
        if t_scalar:
            return np.full(shape, self.fill, self.dtype)
        out = np.full(shape, self.fill, self.dtype)
        have = np.flatnonzero(t < arr.shape[0])
        out[_compact(have)] = arr[(_compact(t[have]), local, *rest)]
        return out


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

    def read(self, key: str, steps: tuple[int, int] | None = None, envs: tuple[int, int] | None = None) -> np.ndarray:
        """`Rollout.read` across shards: each present shard's part read with pread; missing envs and
        steps past a short shard's end read as `fill_value`."""
        t0, t1 = _clip(steps, self.T)
        a, b = _clip(envs, self.N)
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

    def verify(self, progress=None) -> None:
        """Check the CRC-32 of every member of every present shard (see `Rollout.verify`)."""
        for s in self.shards:
            if s.present:
                s.rollout.verify(progress)

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
    states = [open_shard(directory, e, manifest.run_id) for e in manifest.shards]
    try:
        present = [s for s in states if s.present]
        if not present:
            notes = "; ".join(f"{s.entry.file}: {s.note}" for s in states)
            raise RolloutFormatError(f"{directory}: no shard is readable ({notes})")
        check_consistent([(s.entry.file, shard_facts(s.rollout)) for s in present])
        T = max([manifest.num_steps or 0] + [s.num_steps for s in present])
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
        warnings.warn(
            f"{directory}: " + "; ".join(problems) + ". Missing data reads as NaN (floats), False (bools) or the "
            "dtype's minimum (ints); r.env(g) raises for a missing env.",
            MissingEnvsWarning, stacklevel=3,
        )
    return rollout


__all__ = ["MissingEnvsError", "MissingEnvsWarning", "ShardedArray", "ShardedRollout", "fill_value", "open_sharded",
           "sharded_dir"]
