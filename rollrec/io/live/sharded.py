"""`LiveShardedRollout`: a sharded recording in progress (one file per ``torch.distributed``
rank, see `rollrec.format.manifest`) as one growing rollout.

Each rank's shard is followed by its own `LiveRollout`; `refresh` refreshes them all and builds
a `ShardedRollout` over their snapshots, so reads of any env go to its shard only. ``T`` is the
smallest step count among the shards still recording (every env has data up to the live edge),
or, once none records, the largest (as a finished sharded rollout reads: short shards read as
fill values). When every shard is finished and rank 0 has written the final manifest, the
finished directory is read (`open_sharded`) through the same object.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.io.live.follow import LiveStatus
from rollrec.io.live.rollout import LiveRollout
from rollrec.io.sharded.manifest import read_manifest
from rollrec.io.sharded.rollout import ShardedRollout, open_sharded
from rollrec.io.sharded.shards import ShardState


class LiveShardedRollout:
    """The sharded recording in ``directory`` as a growing rollout (see the module docstring);
    the interface of `LiveRollout`. Thread-safe."""

    def __init__(self, directory: str | os.PathLike, *, check_crc: bool = False):
        self.path = Path(directory)
        self.manifest = read_manifest(self.path)
        self.shards = [LiveRollout(self.path / e.file, check_crc=check_crc, expect=True) for e in self.manifest.shards]
        self._lock = threading.RLock()
        self._current: ShardedRollout | None = None
        self._finished: ShardedRollout | None = None
        self.status = LiveStatus.WAITING
        self.note = ""
        self.refresh()

    @property
    def live(self) -> bool:
        return self.status in (LiveStatus.WAITING, LiveStatus.RECORDING)

    def refresh(self) -> int:
        """Refresh every shard and hold the steps every recording rank has committed; returns ``T``."""
        with self._lock:
            if self._finished is not None:
                return self.T
            for s in self.shards:
                s.refresh()
            statuses = [s.status for s in self.shards]
            if all(st is LiveStatus.FINISHED for st in statuses):
                self.manifest = read_manifest(self.path)
                if self.manifest.state != "recording":
                    self._finished = open_sharded(self.path)
                    self._current = self._finished
                    self.status, self.note = LiveStatus.FINISHED, ""
                    return self.T
            live = [s for s in self.shards if s.live]
            T = min(s.T for s in live) if live else max(s.T for s in self.shards)
            self._set_status(statuses, T)
            if T > 0 and (self._current is None or T != self._current.T):
                self._current = self._snapshot(T)
            return self.T

    def _set_status(self, statuses: list[LiveStatus], T: int) -> None:
        stopped = [s for s in self.shards if s.status is LiveStatus.STOPPED]
        gone = [s for s in self.shards if s.status is LiveStatus.GONE]
        if any(st in (LiveStatus.WAITING, LiveStatus.RECORDING) for st in statuses):
            self.status = LiveStatus.RECORDING if T > 0 else LiveStatus.WAITING
        elif stopped:
            self.status = LiveStatus.STOPPED
        elif gone:
            self.status = LiveStatus.GONE
        else:
            self.status = LiveStatus.FINISHED  # every shard finished; the manifest is not final yet
        parts = []
        if stopped:
            ranks = ", ".join(str(e.rank) for e, s in zip(self.manifest.shards, self.shards) if s in stopped)
            parts.append(f"rank {ranks} stopped without finishing its shard; run `rollrec recover {self.path}` once "
                         "every rank has ended")
        for e, s in zip(self.manifest.shards, self.shards):
            if s in gone:
                parts.append(f"rank {e.rank}: {s.note}")
        self.note = "; ".join(parts)

    def _snapshot(self, T: int) -> ShardedRollout:
        states = []
        for e, s in zip(self.manifest.shards, self.shards):
            present = s.T > 0 and s.status is not LiveStatus.GONE
            states.append(ShardState(e, s.path, _Snapshot(s) if present else None,
                                     None if present else (s.note or "no step committed yet")))
        if not any(st.present for st in states):
            raise RolloutFormatError(f"{self.path}: no shard has a committed step")
        return ShardedRollout(self.path, states, T, self.manifest.state, self.manifest.run_id)

    def wait(self, steps: int = 1, timeout: float | None = None, poll: float = 0.1) -> int:
        """Refresh until ``steps`` steps are there (or no shard records); see `LiveRollout.wait`."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh() < steps and self.live:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: {self.T} of {steps} steps committed after {timeout} s")
            time.sleep(poll)
        return self.T

    @property
    def T(self) -> int:
        return 0 if self._current is None else self._current.T

    @property
    def _rollout(self) -> ShardedRollout:
        if self._current is None:
            raise RolloutFormatError(f"{self.path}: no step of this recording is committed yet")
        return self._current

    def __getattr__(self, name: str) -> Any:
        # every other member of the rollout interface: the current snapshot's (see ShardedRollout)
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._rollout, name)

    def __contains__(self, key: object) -> bool:
        return key in self._rollout

    def __getitem__(self, key: str):
        return self._rollout[key]

    def check_unchanged(self) -> None:
        if self._finished is not None:
            self._finished.check_unchanged()

    def verify(self, progress=None) -> None:
        for s in self.shards:
            s.verify(progress)

    def close(self) -> None:
        for s in self.shards:
            s.close()
        if self._finished is not None:
            self._finished.close()

    def __enter__(self) -> LiveShardedRollout:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LiveShardedRollout({str(self.path)!r}, T={self.T}, shards={len(self.shards)}, status={self.status.value})"


class _Snapshot:
    """A shard's `LiveRollout` held at its current snapshot, as `ShardState.rollout`: closing it
    (the sharded snapshot is dropped, not closed, but `ShardedRollout.close` would) is a no-op."""

    def __init__(self, live: LiveRollout):
        self._r = live._rollout

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)

    def __contains__(self, key: object) -> bool:
        return key in self._r

    def __getitem__(self, key: str) -> np.ndarray:
        return self._r[key]


__all__ = ["LiveShardedRollout"]
