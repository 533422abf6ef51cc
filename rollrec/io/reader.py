"""Open rollouts lazily: stored members are memory-mapped, nothing is read until it is indexed.

`load` finds each stored member's data offset itself (zip local header, then npy header) and
maps it with `np.memmap`, so opening a multi-GB file costs a few small reads. Compressed
members are read whole, on first access. Files of the original recorder are converted to the
v1 model (see `rollrec.io.legacy`) when the caller allows pickle.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.io.errors import LegacyPickleError, RolloutFormatError
from rollrec.io.format import STATIC_KEYS, check_fields, decode_meta
from rollrec.io.model import read_model
from rollrec.model.robot import RobotModel

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_READ_THREADS = 8


@contextlib.contextmanager
def _random_access(arrays):
    """Turn the kernel's read-ahead off for the memory maps among ``arrays`` while inside."""
    maps = [a._mmap for a in arrays if isinstance(a, np.memmap) and getattr(a, "_mmap", None) is not None]
    for m in maps:
        m.madvise(mmap.MADV_RANDOM)
    try:
        yield
    finally:
        for m in maps:
            m.madvise(mmap.MADV_NORMAL)


class _Members(Mapping[str, np.ndarray]):
    """Members of an npz: memory maps for stored ones, loaded on first access for deflated ones."""

    def __init__(self, path: str, zf: zipfile.ZipFile):
        self._path = path
        self._zf = zf
        self._infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        self._arrays: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self._offsets: dict[str, int] = {}  # data offsets of stored members
        with open(path, "rb") as f:
            for name, info in self._infos.items():
                if info.compress_type == zipfile.ZIP_STORED:
                    shape, dtype, offset = self._stored_header(f, name, info)
                    self._offsets[name] = offset
                else:
                    with zf.open(info) as mf:
                        shape, dtype = self._read_npy_header(mf, name)
                self.shapes[name], self.dtypes[name] = shape, dtype

    def _read_npy_header(self, f, name: str) -> tuple[tuple[int, ...], np.dtype]:
        try:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
        except ValueError as exc:
            raise RolloutFormatError(f"{self._path}: member {name!r} is not a valid .npy ({exc})") from None
        if fortran and len(shape) > 1:
            raise RolloutFormatError(f"{self._path}: member {name!r} is Fortran-ordered; rollrec writes C order")
        return tuple(shape), dtype

    def _stored_header(self, f, name: str, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
        f.seek(info.header_offset)
        raw = f.read(_LOCAL_HEADER.size)
        if len(raw) < _LOCAL_HEADER.size or _LOCAL_HEADER.unpack(raw)[0] != 0x04034B50:
            raise RolloutFormatError(f"{self._path}: member {name!r} has a damaged zip header")
        name_len, extra_len = _LOCAL_HEADER.unpack(raw)[-2:]
        f.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
        shape, dtype = self._read_npy_header(f, name)
        return shape, dtype, f.tell()

    def __getitem__(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is not None:
            return arr
        if name not in self._infos:
            raise KeyError(name)
        shape, dtype = self.shapes[name], self.dtypes[name]
        if dtype.hasobject:
            raise LegacyPickleError(f"{self._path}: member {name!r} is an object array (needs pickle)")
        if name in self._offsets:
            if int(np.prod(shape, dtype=np.int64)) == 0:
                arr = np.empty(shape, dtype)
            else:
                arr = np.memmap(self._path, dtype=dtype, mode="r", offset=self._offsets[name], shape=shape)
        else:
            with self._zf.open(self._infos[name]) as mf:
                arr = np.lib.format.read_array(mf, allow_pickle=False)
        self._arrays[name] = arr
        return arr

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)

    @property
    def stored(self) -> bool:
        return all(i.compress_type == zipfile.ZIP_STORED for i in self._infos.values())


class Rollout:
    """A rollout opened for reading. Arrays are ``[T, N, ...]`` numpy arrays (memory maps for
    stored files); index them to read. Episode helpers read only the columns they need.

    Use as a context manager or call `close` to release the file.
    """

    def __init__(self, path: str, fields: Mapping[str, np.ndarray], meta: dict[str, Any], closer=None):
        self.path = Path(path)
        self._fields = fields
        self.meta = meta
        self._closer = closer
        self.T = int(meta["num_steps"])
        self.N = int(meta["num_envs"])

    # ---- mapping of members -----------------------------------------------------------------
    def __getitem__(self, key: str) -> np.ndarray:
        return self._fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def keys(self) -> list[str]:
        return [k for k in self._fields if k != "meta"]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @property
    def step_keys(self) -> list[str]:
        """Names of the per-step members, ``[T, N, ...]`` each."""
        return [k for k in self._fields if k not in STATIC_KEYS]

    def __getattr__(self, name: str) -> np.ndarray:
        fields = self.__dict__.get("_fields")
        if fields is not None and name in fields and name not in STATIC_KEYS:
            return fields[name]
        raise AttributeError(name)

    # ---- meta -------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        """Seconds of simulated time per step."""
        return float(self.meta["dt"])

    @property
    def env_name(self) -> str:
        return str(self.meta.get("env_name", "unknown"))

    @cached_property
    def reward_term_names(self) -> list[str]:
        return [str(s) for s in self._fields["rew_term_names"]]

    @cached_property
    def link_names(self) -> list[str] | None:
        if "link_pos" not in self._fields:
            return None
        if "link_names" in self._fields:
            return [str(s) for s in self._fields["link_names"]]
        return [f"link_{i}" for i in range(self._fields["link_pos"].shape[2])]

    @cached_property
    def model(self) -> RobotModel | None:
        """The robot's geometry stored with the rollout (`rollrec.model.RobotModel`), or None.

        Read and checked on first access; a damaged model raises `RolloutFormatError`."""
        if self.is_legacy:
            return None
        return read_model(self._fields, self.meta, self.link_names, str(self.path))

    @property
    def has_links(self) -> bool:
        return "link_pos" in self._fields

    @property
    def is_legacy(self) -> bool:
        """True when converted from a file of the original recorder."""
        return bool(self.meta.get("legacy", False))

    @property
    def terms_are_env_means(self) -> bool:
        """True when reward terms are means over envs (original recorder), not per-env values."""
        return bool(self.meta.get("reward_terms_are_env_means", False))

    # ---- per env ----------------------------------------------------------------------------
    def _check_env(self, env: int) -> int:
        if not -self.N <= env < self.N:
            raise IndexError(f"env {env} out of range: this rollout has {self.N} envs (0..{self.N - 1})")
        return env % self.N

    def env(self, env: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """One env's trajectory: ``{key: array [T, ...]}``, read from the file into memory.

        Only that env's bytes are touched: one small read per step and member, a page apart
        in the file. On a cold page cache those reads wait on the disk, so they are issued from
        several threads at once with read-ahead turned off for the duration (read-ahead would
        fetch the neighbouring envs' bytes too).
        """
        env = self._check_env(env)
        arrays = {k: self._fields[k] for k in (keys or self.step_keys)}
        out = {k: np.empty((a.shape[0], *a.shape[2:]), a.dtype) for k, a in arrays.items()}
        chunk = max(64, -(-self.T // _READ_THREADS))
        jobs = [(k, t) for k in arrays for t in range(0, self.T, chunk)]

        def read(job: tuple[str, int]) -> None:
            k, t = job
            out[k][t : t + chunk] = arrays[k][t : t + chunk, env]

        with _random_access(arrays.values()):
            if len(jobs) == 1:
                read(jobs[0])
            else:
                with ThreadPoolExecutor(min(_READ_THREADS, len(jobs))) as pool:
                    list(pool.map(read, jobs))
        return out

    def episode_bounds(self, env: int) -> np.ndarray:
        """``[E, 2]`` int64 ``(start, stop)`` step ranges of env ``env``'s episodes, in order.

        An episode ends after a step whose ``done`` is set; the last one may be unfinished
        (its stop is T).
        """
        env = self._check_env(env)
        ends = np.flatnonzero(np.asarray(self._fields["done"][:, env])) + 1
        if ends.size == 0 or ends[-1] != self.T:
            ends = np.append(ends, self.T)
        starts = np.concatenate([[0], ends[:-1]])
        return np.stack([starts, ends], axis=1).astype(np.int64)

    def episode_returns(self, env: int) -> np.ndarray:
        """``[E]`` float64 sum of ``rew`` over each episode of env ``env`` (see `episode_bounds`)."""
        env = self._check_env(env)
        bounds = self.episode_bounds(env)
        csum = np.concatenate([[0.0], np.cumsum(np.asarray(self._fields["rew"][:, env], dtype=np.float64))])
        return csum[bounds[:, 1]] - csum[bounds[:, 0]]

    def total_rewards(self) -> np.ndarray:
        """``[N]`` float64 sum of ``rew`` over the whole rollout, per env (reads ``rew`` whole)."""
        return np.asarray(self._fields["rew"], dtype=np.float64).sum(axis=0)

    # ---- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> "Rollout":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Rollout({str(self.path)!r}, T={self.T}, N={self.N}, keys={self.keys()})"


def load(path: str | os.PathLike, *, allow_pickle: bool = False) -> Rollout:
    """Open the rollout at ``path`` without reading its data.

    Format-v1 files open directly. Files of the original recorder hold pickled objects; they are
    converted to the v1 model only when ``allow_pickle=True`` (unpickling a file from an
    untrusted source can run code), else `LegacyPickleError` says how to opt in.
    Raises FileNotFoundError for a missing file and `RolloutFormatError` for an invalid one.

    A directory recorded by several ranks (see `rollrec.io.manifest`), its ``manifest.json``, or
    ``run.npz`` where only the directory ``run/`` exists, opens as one `ShardedRollout`
    (`rollrec.io.sharded`).
    """
    path = os.fspath(path)
    from rollrec.io.sharded import open_sharded, sharded_dir

    if (directory := sharded_dir(path)) is not None:
        return open_sharded(directory)
    if not os.path.exists(path):
        from rollrec.io.writer import partial_paths

        if os.path.exists(partial_paths(path)[1]):
            raise FileNotFoundError(
                f"{path}: no such file, but an interrupted recording of it exists; "
                f"run `rollrec recover {path}` to make it readable"
            )
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise RolloutFormatError(f"{path}: is a directory, not a rollout file")
    if not zipfile.is_zipfile(path):
        raise RolloutFormatError(f"{path}: not a zip archive, so not an .npz rollout")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise RolloutFormatError(f"{path}: damaged zip archive ({exc})") from None
    try:
        members = _Members(path, zf)
        if "meta" not in members:
            from rollrec.io.legacy import convert_legacy, looks_legacy

            if looks_legacy(members):
                if not allow_pickle:
                    raise LegacyPickleError(
                        f"{path}: written by the original recorder; it holds pickled objects, and unpickling "
                        "a file from an untrusted source can run code. If you trust it, open it with "
                        "allow_pickle=True (CLI: --allow-pickle)."
                    )
                fields, meta = convert_legacy(path)
                zf.close()
                return Rollout(path, fields, meta)
            raise RolloutFormatError(f"{path}: missing required key 'meta'")
        meta = decode_meta(members["meta"], path)
        for name, dtype in members.dtypes.items():
            if dtype.hasobject:
                raise RolloutFormatError(f"{path}: member {name!r} is an object array; format v1 never pickles")
        T, N = check_fields(members.shapes, members.dtypes, path)
        if (meta.get("num_steps"), meta.get("num_envs")) != (T, N):
            raise RolloutFormatError(
                f"{path}: meta says T={meta.get('num_steps')}, N={meta.get('num_envs')} but 'obs' is {T}x{N}"
            )
    except BaseException:
        zf.close()
        raise
    return Rollout(path, members, meta, closer=zf.close)
