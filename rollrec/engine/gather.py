"""The episode index and the captured windows, assembled on the writer thread.

`EpisodeGather` is the flush pipeline's ``gather`` hook (`rollrec.engine.flush.Gather`). Its
``staged`` tensors are the tracker's end buffers (`rollrec.engine.episodes`): they share the
ring's slots and reach the host with each job (kept rows ``first_row ..``, in ring slots
``first_slot ..``), in the job's staging buffer on CUDA. So the entries that ended are found on
the host (``np.nonzero``), and nothing the writer thread does is a call that
``torch.cuda.set_sync_debug_mode`` flags (it is process-wide: a user may turn it on while
rollrec records). Then, on the host:

- each entry's start is the previous stop of its env (host state, from 0);
- with ``capture=``, each captured episode's window, its last ``min(W, kept rows)`` kept rows, is
  gathered from the device window ring by one index per field and copied to the host: only
  captured rows cross (CUDA: on the gather's own stream, through pinned memory, and the writer
  thread sleeps on a blocking event until they are there; `rollrec.engine.cuda_host`). Episodes
  go one after another, in the order they ended (by stop, then env); the window ring holds
  ``W - 1`` rows more than the ring, so a window that began in segments already flushed is
  still there (see `rollrec.engine.volume_record`).

Each job returns rows for ``episodes`` (int64 ``[E, 7]``, `COLUMNS`), ``episode_return``
(float64 ``[E]``; see `rollrec.format.v2`) and the window members, so a commit never names an entry whose window is not
written. `finish` adds the episodes still running when the recording ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from rollrec.engine.cuda_host import DeviceToHost
from rollrec.engine.episodes import EpisodeTracker
from rollrec.format.v2 import COLUMNS

END_UNFINISHED, END_TERMINATED, END_TRUNCATED = 0, 1, 2


class EpisodeGather:
    """Turns the tracker's buffers into index entries and window rows (see the module docstring).

    ``captured``: ``"trigger"`` (the tracker's capture bits; windows from ``window_ring``),
    ``"detail"`` (the envs in ``detail``) or ``"all"``. ``window_ring`` maps window members to
    ``[C, N, *row]`` device tensors (C = ``window_ring_rows``) indexed by kept row modulo C; ``window_constants`` maps
    constant window members to their row; ``transforms`` apply to gathered rows as the pipeline
    applies them to ring rows. ``device``: the recording device (default: the tracker's).
    ``encoders``: window members stored encoded (cameras: `rollrec.engine.images.CameraEncoder`),
    whose window rows go to ``encode_windows`` (each captured window a stream) instead of the file.
    """

    def __init__(
        self,
        tracker: EpisodeTracker,
        num_envs: int,
        *,
        captured: str,
        detail: np.ndarray | None = None,
        window: int | None = None,
        window_ring_rows: int = 0,
        window_ring: Mapping[str, torch.Tensor] | None = None,
        window_constants: Mapping[str, np.ndarray] | None = None,
        transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
        device: torch.device | None = None,
        encoders: Mapping[str, Any] | None = None,
    ):
        self.tracker = tracker
        self.k = tracker.every
        self.N = num_envs
        self.captured = captured
        self.detail = detail
        self.window = window
        self.window_ring = dict(window_ring or {})
        self.window_constants = dict(window_constants or {})
        self.transforms = dict(transforms or {})
        self.encoders = dict(encoders or {})
        self.ring_rows = window_ring_rows
        self.last_stop = np.zeros(num_envs, np.int64)  # each env's current episode starts here
        self.window_rows = 0  # rows in the window members so far
        device = device if device is not None else tracker.ret.device
        self.cuda = device.type == "cuda"
        # CUDA: the gather's own stream, and pinned memory for what it copies (grown as needed).
        self._copies = DeviceToHost(device, torch.cuda.Stream(device=device)) if self.cuda else None

    @property
    def staged(self) -> dict[str, torch.Tensor]:
        """The tracker's ``[capacity, every, N]`` end buffers, moved to the host with each job's rows."""
        tr = self.tracker
        out = {"ends": tr.ends, "truncs": tr.truncs, "rets": tr.rets}
        if self.captured == "trigger":
            out["caps"] = tr.caps
        return out

    # ---- one job (writer thread) --------------------------------------------------------------
    def __call__(self, first_slot: int, rows: int, first_row: int,
                 staged: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Index entries (and window rows) of the episodes that ended in the job's rows; ``staged``:
        the job's rows of `staged` on the host."""
        i, j, env = np.nonzero(staged["ends"])  # (row in job, step in row, env), sorted as the index wants
        ret, trunc = staged["rets"][i, j, env], staged["truncs"][i, j, env]
        cap = staged["caps"][i, j, env] if self.captured == "trigger" else None
        stop = (first_row + i.astype(np.int64)) * self.k + j + 1
        end = np.where(trunc, END_TRUNCATED, END_TERMINATED)
        return self._entries(env.astype(np.int64), stop, end, ret, cap)

    def finish(self, total_steps: int) -> dict[str, np.ndarray]:
        """Entries for the episodes still running after ``total_steps`` recorded steps.

        Main thread, once the flush pipeline has closed: its writer waited for the copy of the
        last flush, which the device ran after every ``record()`` before it, so the running
        returns are final. Reads them (CUDA: through pinned memory, a blocking event), then
        frees the gather's pinned memory.
        """
        env = np.flatnonzero(self.last_stop < total_steps)
        if self._copies is not None:
            ret = self._copies.fetch({"ret": self.tracker.ret})["ret"].astype(np.float64)[env]
            self.close()
        else:
            ret = self.tracker.ret.double().numpy()[env]
        stop = np.full(env.size, total_steps, np.int64)
        cap = np.zeros(env.size, bool) if self.captured == "trigger" else None
        return self._entries(env, stop, np.full(env.size, END_UNFINISHED), ret, cap)

    def _entries(self, env: np.ndarray, stop: np.ndarray, end: np.ndarray, ret: np.ndarray,
                 cap: np.ndarray | None) -> dict[str, np.ndarray]:
        """Index rows (and window rows) for entries given in index order."""
        if env.size == 0:
            return {}
        start = self._starts(env, stop)
        first = -(-start // self.k)  # the episode's kept rows: first .. last
        last = (stop - 1) // self.k
        kept = np.maximum(last - first + 1, 0)
        if self.captured == "trigger":
            captured = cap
            rows = np.where(captured, np.minimum(kept, self.window), 0)
        else:
            captured = np.ones(env.size, bool) if self.captured == "all" else self.detail[env]
            rows = np.where(captured, kept, 0)
        row = np.full(env.size, -1, np.int64)
        out: dict[str, np.ndarray] = {}
        if self.captured == "trigger" and rows.any():
            has = rows > 0
            row[has] = self.window_rows + np.concatenate([[0], np.cumsum(rows[has])[:-1]])
            out.update(self._windows(env[has], last[has], rows[has]))
            self.window_rows += int(rows.sum())
        index = np.stack([env, start, stop, end, captured.astype(np.int64), row, rows], 1).astype(np.int64)
        return {"episodes": index, "episode_return": ret.astype(np.float64), **out}

    def _starts(self, env: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Each entry's start: the stop of its env's entry before it (here or in an earlier job)."""
        order = np.lexsort((stop, env))
        env_s, stop_s = env[order], stop[order]
        first = np.r_[True, env_s[1:] != env_s[:-1]]
        prev = np.empty_like(stop_s)
        prev[first] = self.last_stop[env_s[first]]
        prev[~first] = stop_s[np.flatnonzero(~first) - 1]
        last = np.r_[env_s[1:] != env_s[:-1], True]
        self.last_stop[env_s[last]] = stop_s[last]
        start = np.empty_like(prev)
        start[order] = prev
        return start

    def _windows(self, env: np.ndarray, last: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The window rows of the given episodes, one after another, rows in time order."""
        offsets = np.arange(int(rows.max()))
        step = (last - rows + 1)[:, None] + offsets[None, :]
        valid = offsets[None, :] < rows[:, None]
        flat = ((step % self.ring_rows) * self.N + env[:, None])[valid]  # row-major: episode by episode
        out: dict[str, np.ndarray] = {}
        if self.window_ring:
            for name, got in self._window_rows(flat).items():
                encode = self.encoders.get(name)
                if encode is not None:  # a camera: each window a stream, at the window rows it will take
                    out.update(encode.encode_windows(got, rows, self.window_rows))
                    continue
                fn = self.transforms.get(name)
                out[name] = fn(got) if fn is not None else got
        for name, value in self.window_constants.items():
            out[name] = np.broadcast_to(value, (flat.size, *value.shape))
        return out

    def _window_rows(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Rows ``flat`` (window ring row x N + env) of every window ring member, on the host.

        CUDA: the arrays are pinned memory reused by the next job's call; the writer is done
        writing them by then (it drains a job's writes before the next job).
        """
        flat_rings = {name: ring.reshape(-1, *ring.shape[2:]) for name, ring in self.window_ring.items()}
        if self._copies is None:
            index = torch.from_numpy(flat)
            return {name: ring.index_select(0, index).numpy() for name, ring in flat_rings.items()}
        copies = self._copies
        index = copies.to_device(flat, next(iter(flat_rings.values())))
        with torch.cuda.device(copies.device), torch.cuda.stream(copies.stream):
            rows = {name: ring.index_select(0, index) for name, ring in flat_rings.items()}
        return copies.fetch(rows)

    def close(self) -> None:
        """Free the gather's pinned memory (idempotent; nothing of it may be in use)."""
        if self._copies is not None:
            self._copies.close()


__all__ = ["COLUMNS", "END_TERMINATED", "END_TRUNCATED", "END_UNFINISHED", "EpisodeGather"]
