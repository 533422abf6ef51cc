"""Open a rollout file lazily: stored members are memory-mapped, nothing is read until it is indexed.

`open_file` (what `rollrec.load` calls for a plain file) opens the file once
(`rollrec._npz.archive.NpzArchive`: one descriptor, the zip directory and npy headers checked
against the file, one map of it for every stored member), checks the members and ``meta``
against the format, and returns a `Rollout`. Opening a multi-GB file costs
a few small reads. Compressed members are read whole, on first access. Files of the original
recorder are converted to the v1 model (see `rollrec.io.legacy`) when the caller allows pickle.

Every malformed file raises `RolloutFormatError` (a ValueError): one line naming the file and
the problem. Opening a FIFO or device is refused, never waited on.

Format v2 files (volume control, `rollrec.format.v2`) read the same way: ``r[key]`` is always
``[T, N, ...]`` (members kept for some envs or some episodes read as fill values elsewhere,
`rollrec.io.volume_view`), ``r.stored(key)`` is the member as stored, ``r.env(k)`` holds what
exists for env k, and `Rollout.episodes` / `Rollout.episode` read the episode index.

Format v3 files hold cameras (`rollrec.format.images`): ``r.cameras`` describes them and
``r.images(camera, env)`` reads one env's frames lazily (`rollrec.io.images`); their members are
not per-step members (not in ``step_keys``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rollrec._npz.archive import NpzArchive
from rollrec._npz.cell_reads import random_access
from rollrec.io.env_array import clip_range, fill_value
from rollrec.io.episode_index import EpisodeIndex, RolloutEpisodes
from rollrec.io.images import CameraFrames, CameraIndex, camera_frames
from rollrec.io.legacy import convert_legacy, looks_legacy
from rollrec.format.errors import LegacyPickleError, RolloutFormatError
from rollrec.format.images import StreamSpec, is_image_member
from rollrec.format.meta import decode_meta
from rollrec.format.v1 import INDEX_KEYS, STATIC_KEYS, check_fields, check_unicode_array
from rollrec.format.v2 import Layout
from rollrec.io.model import read_model
from rollrec.io.volume_view import WindowArray, detail_view
from rollrec.model.robot import RobotModel

_READ_THREADS = 8  # reads in flight when the env's bytes are on disk
_CACHED_THREADS = 1  # when they are in the page cache (reads are then CPU work: threads contend for the GIL)


class Rollout(RolloutEpisodes):
    """A rollout opened for reading. Arrays are ``[T, N, ...]`` numpy arrays (read-only memory
    maps for stored files); index them to read: ``r[key][index]`` reads the selection from the file
    with `os.pread` into a new array (any numpy index: `rollrec._npz.member_map`), as `env`, `read`
    and the episode helpers do, so ``r["obs"][:, k]`` costs what ``r.env(k)`` does. A file
    truncated by another process while open then raises `RolloutFormatError`, where touching a
    lost page of a map would kill the process (SIGBUS); arithmetic on a whole member
    (``r["rew"].sum()``) still goes through the map.

    ``N`` is always the full env count and ``T`` the number of (kept) steps; ``every`` the
    recorded steps each of them stands for (format v2). Use as a context manager or call `close`
    to release the file.
    """

    def __init__(self, path: str, fields: Mapping[str, np.ndarray], meta: dict[str, Any],
                 closer: Callable[[], None] | None = None, *, member_info: dict[str, dict[str, Any]] | None = None,
                 layout: Layout | None = None):
        self.path = Path(path)
        self._member_info = member_info or {}
        self._fields = fields
        self._file = fields if isinstance(fields, NpzArchive) else None
        self.meta = meta
        self._closer = closer
        self.T = int(meta["num_steps"])
        self.N = int(meta["num_envs"])
        self.layout = layout if layout is not None else Layout(meta, str(path))
        self.every = self.layout.every
        self._views: dict[str, Any] = {}
        self._index: EpisodeIndex | None = None
        self._camera_indexes: dict[str, CameraIndex] = {}

    # ---- mapping of members -----------------------------------------------------------------
    def __getitem__(self, key: str) -> np.ndarray:
        """Member ``key``; a per-step member always as ``[T, N, ...]`` (see `kind`)."""
        kind = self.layout.kind(key) if key in self._fields and key not in STATIC_KEYS else "all"
        if kind == "all" or key in INDEX_KEYS:
            return self._fields[key]
        view = self._views.get(key)
        if view is None:
            if kind == "detail":
                view = detail_view(key, self._fields[key], self.layout.env_ids[key], self.T, self.N)
            else:
                view = WindowArray(key, self._fields[key], self.index.windows_by_env(), self.T, self.N)
            self._views[key] = view
        return view

    def stored(self, key: str) -> np.ndarray:
        """Member ``key`` as the file stores it (``[T, M, ...]`` for detail members, ``[R, ...]`` for
        window members: see `rollrec.format.v2`)."""
        return self._fields[key]

    def kind(self, key: str) -> str:
        """``"all"`` (every env), ``"detail"`` (the envs of ``meta["env_ids"][key]``) or ``"window"``
        (the captured episodes' windows): which envs and steps per-step member ``key`` holds."""
        return self.layout.kind(key)

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def keys(self) -> list[str]:
        return [k for k in self._fields if k != "meta"]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @property
    def step_keys(self) -> list[str]:
        """Names of the per-step members, ``[T, N, ...]`` each (as ``r[key]``; cameras are not: `images`)."""
        return [k for k in self._fields if k not in STATIC_KEYS and k not in INDEX_KEYS and not is_image_member(k)]

    # ---- cameras ----------------------------------------------------------------------------
    @property
    def cameras(self) -> dict[str, StreamSpec]:
        """``{camera: StreamSpec}`` (codec, frame shape and dtype) of the file's cameras; empty without."""
        return dict(self.layout.cameras)

    def images(self, camera: str, env: int) -> CameraFrames:
        """Camera ``camera``'s frames of env ``env`` (negative counts from the end), decoded lazily
        when indexed: ``frames[t]``, ``frames.at(step)``, ``frames.steps`` (`rollrec.io.images`).

        KeyError for a camera the file does not hold; an env without frames of it (not a detail
        env, no captured episode) gives an empty sequence that says why when indexed."""
        if camera not in self.layout.cameras:
            have = ", ".join(self.layout.cameras) or "none"
            raise KeyError(f"{self.path.name} has no camera {camera!r} (cameras: {have})")
        env = self._check_env(env)
        index = self._camera_indexes.get(camera)
        if index is None:
            index = self._camera_indexes[camera] = CameraIndex(self, camera, self.layout.cameras[camera])
        return camera_frames(self, index, env)

    def read_whole(self, key: str) -> np.ndarray:
        """Member ``key`` read into memory (with pread for stored files)."""
        return self._file.read_all(key) if self._file is not None else np.array(self._fields[key])

    def member_shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._file.shapes[key]) if self._file is not None else tuple(self._fields[key].shape)

    def read_bytes(self, key: str, offset: int, size: int) -> bytes:
        """Bytes ``offset .. offset + size`` of the 1-D uint8 member ``key`` (pread for stored files)."""
        return self._rows(key, offset, offset + size).tobytes()

    def __getattr__(self, name: str) -> Any:
        # Members are read with ``r[name]``, never as attributes (an extra field named ``env`` would
        # be shadowed by the method); the error says how to read one.
        fields = self.__dict__.get("_fields")
        if fields is not None and name in fields:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}; read the member with "
                                 f"r[{name!r}]")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
        return [str(s) for s in self._fields["rew_term_names"]] if "rew_term_names" in self._fields else []

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

    # ---- the file ---------------------------------------------------------------------------
    def member_info(self) -> dict[str, dict[str, Any]]:
        """``{member: {shape, dtype, stored_bytes, compression}}`` of the file's members, from their
        headers (for a legacy file: the members of the file, not of the converted rollout)."""
        return self._member_info if self._file is None else _member_info(self._file)

    def verify(self, progress: Callable[[int], None] | None = None) -> int:
        """Check the CRC-32 of every member (reads the whole file once); `RolloutFormatError` naming
        the first damaged member. ``progress(nbytes)`` is called as bytes are checked. Returns the
        number of members checked: 0 for a legacy file (converted in memory when opened)."""
        return 0 if self._file is None else self._file.verify(progress)

    def check_unchanged(self) -> None:
        """`RolloutFormatError` if the path now names another file, or the file changed size or was
        modified since it was opened. (Reads stay consistent: they come from the file opened.)"""
        if self._file is None:
            return
        why = self._file.changed()
        if why is not None:
            raise RolloutFormatError(f"{self.path}: changed on disk since it was opened ({why}); open it again")

    # ---- per env ----------------------------------------------------------------------------
    def _check_env(self, env: int) -> int:
        if not -self.N <= env < self.N:
            raise IndexError(f"env {env} out of range: this rollout has {self.N} envs (0..{max(self.N - 1, 0)})")
        return env % self.N

    def env_keys(self, env: int) -> list[str]:
        """The per-step members that hold data for env ``env``: every member in a v1 file; in a v2
        file the ones kept for every env, the detail ones if ``env`` is a detail env, and the window
        ones if one of its episodes was captured."""
        env = self._check_env(env)
        keys = []
        for k in self.step_keys:
            kind = self.layout.kind(k)
            if kind == "all" or (kind == "detail" and self._column_of(k, env) is not None) or (
                    kind == "window" and env in self.index.windows_by_env()):
                keys.append(k)
        return keys

    def has_detail(self, env: int) -> bool:
        """Whether every field of env ``env`` is in the file for at least some of its steps."""
        return len(self.env_keys(env)) == len(self.step_keys)

    @property
    def detail_envs(self) -> np.ndarray:
        """The envs that hold every field for some of their steps (all of them in a v1 file)."""
        if not self.layout.env_ids and not self.layout.window_members:
            return np.arange(self.N)
        if self.layout.env_ids:
            return next(iter(self.layout.env_ids.values())).copy()
        return np.array(sorted(self.index.windows_by_env()), dtype=np.int64)

    def _column_of(self, key: str, env: int) -> int | None:
        """The column of ``env`` in detail member ``key`` (None: not a detail env)."""
        ids = self.layout.env_ids[key]
        j = int(np.searchsorted(ids, env))
        return j if j < len(ids) and ids[j] == env else None

    def _row_shape(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        shape, dtype = (self._file.shapes[key], self._file.dtypes[key]) if self._file else (self._fields[key].shape, self._fields[key].dtype)
        return tuple(shape[1:] if self.layout.kind(key) == "window" else shape[2:]), dtype

    def env(self, env: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """One env's trajectory: ``{key: array [T, ...]}``, read from the file into memory.

        By default the members that hold data for ``env`` (`env_keys`); a member named in ``keys``
        that holds none for it (format v2) reads as fill values (NaN, False, the dtype's minimum),
        as do the steps outside a captured episode's window.

        Only that env's bytes are read: one small `os.pread` per step and member, a page apart
        in the file (or, where a step of all envs is small, blocks of steps). On a cold page
        cache those reads wait on the disk, so they are issued from 8 threads at once with
        read-ahead turned off for the duration (read-ahead would fetch the neighbouring envs'
        bytes too); when the env's first and last steps are cached, from this thread. Raises
        `RolloutFormatError` if the file was truncated since it was opened.
        """
        env = self._check_env(env)
        keys = list(self.env_keys(env) if keys is None else keys)
        for k in keys:
            if k not in self._fields or k in STATIC_KEYS or k in INDEX_KEYS:
                raise KeyError(f"{k!r} is not a per-step member of {self.path.name}")
        out = {}
        columns = []  # (key, column of the stored member)
        for k in keys:
            row, dtype = self._row_shape(k)
            kind = self.layout.kind(k)
            col = env if kind == "all" else self._column_of(k, env) if kind == "detail" else None
            if col is None:
                out[k] = np.full((self.T, *row), fill_value(dtype), dtype)
                if kind == "window":
                    for first, n, at in self.index.windows_by_env().get(env, ()):
                        out[k][first : first + n] = self._rows(k, at, at + n)
            else:
                out[k] = np.empty((self.T, *row), dtype)
                columns.append((k, col))
        if self._file is None:
            for k, col in columns:
                out[k][...] = self._fields[k][:, col]
            return out
        # Reads that wait on the disk go out from many threads at once; reads served by the page
        # cache are CPU work, done here (more threads only contend for the GIL).
        threads = _CACHED_THREADS if all(self._file.cached(k, col) for k, col in columns) else _READ_THREADS
        chunk = max(64, -(-self.T // threads))
        jobs = [(k, col, t) for k, col in columns for t in range(0, self.T, chunk)]

        def read(job: tuple[str, int, int]) -> None:
            k, col, t = job
            self._file.read_env(k, col, out[k][t : t + chunk], start=t)

        with random_access(self._file.fileno()):
            if len(jobs) <= 1 or threads == 1:
                for job in jobs:
                    read(job)
            else:
                with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
                    list(pool.map(read, jobs))
        return out

    def _rows(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` of the stored member ``key`` (pread for stored files)."""
        if self._file is None:
            return np.asarray(self._fields[key][start:stop])
        return self._file.read_rows(key, start, stop)

    def read(self, key: str, steps: tuple[int, int] | None = None, envs: tuple[int, int] | None = None) -> np.ndarray:
        """Member ``key`` for steps ``t0..t1`` and envs ``a..b`` (default: all), ``[t1-t0, b-a, ...]``,
        read into a new array (fill values where a v2 file holds nothing). Stored members are read
        with `os.pread`, like `env`: a file truncated since it was opened raises `RolloutFormatError`,
        where indexing ``r[key]`` (a memory map) would kill the process. Ranges are clipped to the
        member, as slices are."""
        if key not in self._fields or key in STATIC_KEYS or key in INDEX_KEYS:
            raise KeyError(f"{key!r} is not a per-step member of {self.path.name}")
        t0, t1 = clip_range(steps, self.T)
        a, b = clip_range(envs, self.N)
        kind = self.layout.kind(key)
        if kind == "all":
            if self._file is None:
                return np.array(self._fields[key][t0:t1, a:b])
            return self._file.read_block(key, (t0, t1), (a, b))
        row, dtype = self._row_shape(key)
        out = np.full((t1 - t0, b - a, *row), fill_value(dtype), dtype)
        if kind == "detail":
            ids = self.layout.env_ids[key]
            c0, c1 = np.searchsorted(ids, [a, b])
            if c1 > c0:
                block = (self._file.read_block(key, (t0, t1), (int(c0), int(c1))) if self._file is not None
                         else np.asarray(self._fields[key][t0:t1, c0:c1]))
                out[:, ids[c0:c1] - a] = block
            return out
        for g, windows in self.index.windows_by_env().items():
            if not a <= g < b:
                continue
            for first, n, at in windows:
                lo, hi = max(first, t0), min(first + n, t1)
                if lo < hi:
                    out[lo - t0 : hi - t0, g - a] = self._rows(key, at + lo - first, at + hi - first)
        return out

    def _column(self, key: str, env: int) -> np.ndarray:
        """``[T, ...]`` of member ``key`` for env ``env`` (pread for stored files)."""
        return self.env(env, [key])[key]

    # ---- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> Rollout:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Rollout({str(self.path)!r}, T={self.T}, N={self.N}, keys={self.keys()})"


def _member_info(f: NpzArchive) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "shape": list(m.shape),
            "dtype": m.dtype.str,
            "stored_bytes": m.entry.compress_size,
            "compression": "stored" if m.stored else "deflated",
        }
        for name, m in f.members.items()
    }


def open_file(path: str | os.PathLike, *, allow_pickle: bool = False) -> Rollout:
    """Open the rollout file at ``path`` without reading its data (`rollrec.load` is the entry
    point: it also opens sharded directories and says when a recording of a missing file exists).

    Format v1 and v2 files open directly. Files of the original recorder hold pickled objects;
    they are converted to the v1 model only when ``allow_pickle=True`` (unpickling a file from an
    untrusted source can run code), else `LegacyPickleError` says how to opt in. Raises
    FileNotFoundError for a missing file and `RolloutFormatError` for an invalid one (never
    another exception for a malformed file).
    """
    path = os.fspath(path)
    try:
        members = NpzArchive(path)
    except FileNotFoundError:
        if not os.path.lexists(path):
            raise FileNotFoundError(f"{path}: no such file") from None
        raise FileNotFoundError(f"{path}: no such file (a dangling link?)") from None
    try:
        if "meta" not in members:
            return _open_legacy(path, members, allow_pickle)
        meta, layout = _checked_meta(path, members)
    except BaseException:
        members.close()
        raise
    rollout = Rollout(path, members, meta, closer=members.close, layout=layout)
    if layout.has_index:
        try:  # the episode index (E x 7 int64) is checked at load: a hostile one never reaches a reader
            _ = rollout.index
        except BaseException:
            rollout.close()
            raise
    return rollout


def _open_legacy(path: str, members: NpzArchive, allow_pickle: bool) -> Rollout:
    """A file without ``meta``: one of the original recorder's, converted when pickle is allowed."""
    if not looks_legacy(members):
        raise RolloutFormatError(f"{path}: missing required key 'meta'")
    if not allow_pickle:
        raise LegacyPickleError(
            f"{path}: written by the original recorder; it holds pickled objects, and unpickling "
            "a file from an untrusted source can run code. If you trust it, open it with "
            "allow_pickle=True (CLI: --allow-pickle)."
        )
    info = _member_info(members)
    with open(members.fileno(), "rb", closefd=False) as source:  # the file opened, not the path again
        fields, meta = convert_legacy(path, source)
    members.close()
    return Rollout(path, fields, meta, member_info=info)


def _checked_meta(path: str, members: NpzArchive) -> tuple[dict[str, Any], Layout]:
    """The file's ``meta`` and `Layout`, once the members are checked against the format."""
    for name, dtype in members.dtypes.items():
        if dtype.hasobject:
            raise RolloutFormatError(f"{path}: member {name!r} is an object array; format v1 never pickles")
    meta = decode_meta(members["meta"], path)
    layout = Layout(meta, path)
    if layout.version == 1:
        T, N = check_fields(members.shapes, members.dtypes, path)
        if (meta["num_steps"], meta["num_envs"]) != (T, N):
            raise RolloutFormatError(
                f"{path}: meta says T={meta['num_steps']}, N={meta['num_envs']} but 'obs' is {T}x{N}"
            )
    else:
        layout.check(members.shapes, members.dtypes, path)
    for key in ("rew_term_names", "link_names"):
        if key in members:
            check_unicode_array(members[key], key, path)
    return meta, layout
