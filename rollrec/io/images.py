"""Camera frames of a rollout, read lazily: ``Rollout.images("front", env=3)``.

`CameraIndex` reads a camera's index member once (a few bytes per frame; checked against the
format, `rollrec.format.images.check_index`) and finds each env's frames in it; `CameraFrames` is
one env's frames of one camera, a sequence that decodes only what is asked: ``frames[i]`` reads
the packets from the key frame at or before frame i to frame i (at most ``keyframe_interval``,
with ``pread``: a file truncated while open raises `RolloutFormatError`) and decodes them. Reading
frames in order (iterating, slices, a replay's playback) continues from the last frame decoded
instead of starting again.

Steps. ``frames.steps`` are the kept rows that hold a frame of that env, in order: every row for
a camera kept for every env or for a detail env (so ``frames[t]`` is the frame of step t), the
rows of its captured episodes' windows for a camera kept in windows. ``frames.at(step)`` is the
frame of a step, by step, whatever the layout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.images import (
    COLUMN,
    KEY,
    ROW,
    StreamSpec,
    camera_member,
    check_index,
    index_member,
    packets_member,
)

if TYPE_CHECKING:
    from rollrec.io.reader import Rollout


class CameraIndex:
    """One camera's index, grouped by stream (read and checked when first needed)."""

    def __init__(self, rollout: Rollout, camera: str, spec: StreamSpec):
        self.rollout = rollout
        self.camera = camera
        self.spec = spec
        self.kind = rollout.layout.kind(camera_member(camera))
        self.where = f"{rollout.path}: camera {camera!r}"
        self._packets = packets_member(camera)
        index = rollout.read_whole(index_member(camera))
        packets_bytes = rollout.member_shape(self._packets)[0]
        if self.kind == "window":
            windows = rollout.index.windows_by_env()
            rows = max((at + n for spans in windows.values() for _, n, at in spans), default=0)
            columns = 1
        else:
            rows = rollout.T
            columns = len(rollout.layout.env_ids[camera_member(camera)]) if self.kind == "detail" else rollout.N
        check_index(index, packets_bytes, rows, columns, self.where)
        # Each column's frames by row (stable: the index lists a stream's frames in order).
        order = np.lexsort((index[:, ROW], index[:, COLUMN]))
        self.index = index[order]
        self._bounds = np.searchsorted(self.index[:, COLUMN], np.arange(columns + 1))

    def column(self, column: int) -> np.ndarray:
        """``[F, 5]`` index rows of one column, by row."""
        return self.index[self._bounds[column] : self._bounds[column + 1]]

    def packet(self, offset: int, size: int) -> bytes:
        return self.rollout.read_bytes(self._packets, offset, size)


class CameraFrames(Sequence):
    """The frames of ``camera`` for env ``env``; see the module docstring.

    ``steps``: int64 ``[F]`` kept rows that hold a frame; ``shape``/``dtype``: one frame's
    (``[H, W, 3]`` uint8 for RGB, ``[H, W]`` for depth, ...). ``frames[i]`` is the i-th frame (a
    new array), ``frames[a:b]`` and ``frames[[i, j]]`` a stacked array, ``frames.at(step)`` the
    frame of a step. Safe to use from several threads (one decodes at a time).
    """

    def __init__(self, camera: str, env: int, spec: StreamSpec, entries: np.ndarray, steps: np.ndarray,
                 index: CameraIndex | None, note: str = ""):
        self.camera = camera
        self.env = env
        self.spec = spec
        self.steps = steps
        self.shape = tuple(spec.shape)
        self.dtype = np.dtype(spec.dtype)
        self._entries = entries  # [F, 5] index rows, in step order
        self._index = index
        self._note = note
        key = entries[:, KEY].astype(bool) if entries.size else np.zeros(0, bool)
        if key.size and not key[0]:
            raise RolloutFormatError(f"{index.where if index else camera}: env {env}'s frames do not start with a key frame")
        # The key frame each frame decodes from: the last key at or before it.
        self._key_of = np.maximum.accumulate(np.where(key, np.arange(key.size), 0)) if key.size else key
        self._lock = threading.Lock()
        self._decoder: Any = None
        self._last = -1  # the position the decoder decoded last
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.steps.size)

    def __repr__(self) -> str:
        return (f"CameraFrames(camera={self.camera!r}, env={self.env}, frames={len(self)}, shape={self.shape}, "
                f"dtype={self.dtype}, codec={self.spec.codec!r})")

    def __getitem__(self, i: Any) -> np.ndarray:
        if isinstance(i, slice):
            return self._stack(range(*i.indices(len(self))))
        if isinstance(i, (list, tuple, np.ndarray)):
            return self._stack([int(j) for j in np.asarray(i).reshape(-1)])
        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(self._out_of_range(f"frame {i}"))
        return self._frame(i % n)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self._frame(i)

    def at(self, step: int) -> np.ndarray:
        """The frame of kept row ``step``; KeyError when that step has none for this env."""
        i = self.position(step)
        if i is None:
            raise KeyError(self._out_of_range(f"step {step}"))
        return self._frame(i)

    def position(self, step: int) -> int | None:
        """The position in the sequence of the frame of ``step``, or None when it has none."""
        i = int(np.searchsorted(self.steps, step))
        return i if i < len(self) and self.steps[i] == step else None

    def _out_of_range(self, what: str) -> str:
        if not len(self):
            return f"camera {self.camera!r} has no frame for env {self.env}" + (f" ({self._note})" if self._note else "")
        return (f"camera {self.camera!r}, env {self.env}: no {what}; it holds {len(self)} frames "
                f"(steps {int(self.steps[0])}..{int(self.steps[-1])})")

    def _stack(self, positions: Sequence[int]) -> np.ndarray:
        out = np.empty((len(positions), *self.shape), self.dtype)
        for k, i in enumerate(positions):
            if not -len(self) <= i < len(self):
                raise IndexError(self._out_of_range(f"frame {i}"))
            out[k] = self._frame(i % len(self))
        return out

    def _frame(self, i: int) -> np.ndarray:
        with self._lock:
            if self._cached is not None and self._cached[0] == i:
                return self._cached[1].copy()
            key = int(self._key_of[i])
            if self._decoder is None or not key <= self._last < i or int(self._key_of[self._last]) != key:
                from rollrec.media.codecs import decoder

                self._decoder = decoder(self.spec, self._index.where)
                self._last = key - 1
            frame = None
            for j in range(self._last + 1, i + 1):
                _, _, offset, size, is_key = (int(v) for v in self._entries[j])
                frame = self._decoder.decode(self._index.packet(offset, size), bool(is_key) and j == key)
                self._last = j
            self._cached = (i, frame)
            return frame.copy()


def camera_frames(rollout: Rollout, index: CameraIndex, env: int) -> CameraFrames:
    """``rollout``'s frames of ``index``'s camera for env ``env`` (in ``0..N-1``)."""
    camera, spec = index.camera, index.spec
    empty = np.zeros((0, 5), np.int64)
    if index.kind == "window":
        spans = rollout.index.windows_by_env().get(env, [])
        if not spans:
            return CameraFrames(camera, env, spec, empty, np.zeros(0, np.int64), index,
                                "it keeps the frames of captured episodes' windows only, and none of this env's was captured")
        rows = index.column(0)
        by_row = np.full(int(rows[:, ROW].max()) + 1 if rows.size else 0, -1, np.int64)
        by_row[rows[:, ROW]] = np.arange(rows.shape[0])
        picks, steps = [], []
        for first, n, at in spans:
            at_rows = np.arange(at, at + n)
            pos = by_row[at_rows[at_rows < by_row.size]]
            if pos.size < n or (pos < 0).any():
                raise RolloutFormatError(f"{index.where}: env {env}'s captured window at rows {at}..{at + n - 1} has no frames")
            picks.append(pos)
            steps.append(np.arange(first, first + n))
        return CameraFrames(camera, env, spec, rows[np.concatenate(picks)], np.concatenate(steps).astype(np.int64), index)
    if index.kind == "detail":
        ids = rollout.layout.env_ids[camera_member(camera)]
        col = int(np.searchsorted(ids, env))
        if col >= len(ids) or ids[col] != env:
            shown = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
            return CameraFrames(camera, env, spec, empty, np.zeros(0, np.int64), index,
                                f"it keeps the frames of the detail envs only: {shown}")
    else:
        col = env
    rows = index.column(col)
    steps = rows[:, ROW].copy()
    if steps.size > 1 and (np.diff(steps) <= 0).any():
        raise RolloutFormatError(f"{index.where}: env {env} has two frames for one step")
    return CameraFrames(camera, env, spec, rows, steps, index)


__all__ = ["CameraFrames", "CameraIndex", "camera_frames"]
