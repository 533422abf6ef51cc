"""`LiveRollout`: a recording in progress, read as a rollout whose steps grow.

``LiveRollout(path)`` follows the recording of ``path`` (``run.npz``, ``run.npz.partial`` or
its sidecar) through `RecordingFiles`: `refresh` reads the sidecar again, and the rollout then
holds every step committed so far (``T`` grows; nothing else changes). Between refreshes it is a
fixed snapshot, so a reader sees one consistent ``T``. Once the recording finishes, the finished
file is read through the same object (``status`` becomes FINISHED, ``T`` its steps): a replay
carries on without opening anything again. A recording whose writer died stays readable at its
committed steps (``status`` STOPPED, ``note`` says to run ``rollrec recover``).

It satisfies `rollrec.io.protocol.ReadableRollout` (the viewer and the video use nothing else),
with these differences while recording: every read uses pread (no memory maps), ``meta`` is the
recorder's (``num_steps`` is the committed steps), and in a format-v2 file the episodes still
running are in ``index`` with ``end`` 0 and their return over the committed rows.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.meta import encode_meta
from rollrec.format.model import MODEL_KEYS
from rollrec.format.v2 import Layout
from rollrec.io.live.arrays import CommittedArray
from rollrec.io.live.follow import Committed, LiveStatus, RecordingFiles
from rollrec.io.live.running import RunningEpisodes
from rollrec.io.reader import Rollout


class LiveRollout:
    """The recording of ``path`` as a growing rollout (see the module docstring). Thread-safe.

    ``check_crc``: expose rows only once their CRC-32 matches the one the recorder wrote for
    them (reads every committed byte once more). Raises FileNotFoundError when ``path`` has
    neither a recording in progress nor a finished file, unless ``expect``: a recording about
    to start (e.g. the shard of a rank that has not recorded its first step yet).
    """

    def __init__(self, path: str | os.PathLike, *, check_crc: bool = False, expect: bool = False):
        self.files = RecordingFiles(path, check_crc=check_crc)
        self.path: Path = self.files.path
        self._lock = threading.RLock()
        self._current: Rollout | None = None
        self._seen: Committed | None = None
        self._running: RunningEpisodes | None = None
        self._model_members: dict[str, np.ndarray] | None = None
        self._model_meta: dict[str, Any] = {}
        self.refresh()
        if (not expect and self._current is None and self.status is LiveStatus.WAITING
                and not os.path.lexists(self.files.partial.sidecar_path)):
            self.files.close()
            raise FileNotFoundError(f"{self.path}: no such file, and no recording of it in progress")

    # ---- following ----------------------------------------------------------------------------
    @property
    def status(self) -> LiveStatus:
        return self.files.status

    @property
    def note(self) -> str:
        """Why `status` is what it is (empty while recording): e.g. the ``rollrec recover`` line."""
        return self.files.note

    @property
    def live(self) -> bool:
        """Whether more steps may still come (waiting or recording)."""
        return self.status in (LiveStatus.WAITING, LiveStatus.RECORDING)

    def refresh(self) -> int:
        """Read the sidecar again and hold every step committed now; returns ``T``."""
        with self._lock:
            status = self.files.poll()
            if status is LiveStatus.FINISHED:
                self._current = self.files.final
            elif self.files.committed is not None and status is not LiveStatus.GONE:
                c = self.files.committed
                if self._seen is None or c.rows != self._seen.rows or c.variable_rows != self._seen.variable_rows:
                    self._current = self._snapshot(c)
                    self._seen = c
            return self.T

    def wait(self, steps: int = 1, timeout: float | None = None, poll: float = 0.1) -> int:
        """Refresh until at least ``steps`` steps are committed (or the recording ended); returns
        ``T``. Raises TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh() < steps and self.live:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: {self.T} of {steps} steps committed after {timeout} s")
            time.sleep(poll)
        return self.T

    def verify(self, progress=None) -> None:
        """Check the CRC-32 of the committed rows (of the whole file once finished)."""
        if self.status is LiveStatus.FINISHED:
            self._rollout.verify(progress)
        else:
            self.files.verify()

    # ---- the snapshot -------------------------------------------------------------------------
    def _snapshot(self, c: Committed) -> Rollout:
        info = c.info
        if "meta" not in info:
            raise RolloutFormatError(f"{self.files.partial.sidecar_path}: the sidecar holds no meta")
        meta = {**info["meta"], **self._model_meta, "num_steps": c.rows}
        fields: dict[str, Any] = {}
        for name, spec in c.members.items():
            fields[name] = CommittedArray(self.files, spec, c.rows_of(name))
        fields["rew_term_names"] = np.asarray(list(info.get("rew_term_names") or []), dtype=str).reshape(-1)
        if info.get("link_names") is not None:
            fields["link_names"] = np.asarray(list(info["link_names"]), dtype=str).reshape(-1)
        model = self._kept_model()
        if model is not None:
            fields.update(model)
            meta.update(self._model_meta)
        where = str(self.path)
        layout = Layout(meta, where)
        if layout.version > 1:
            layout.check({k: v.shape for k, v in fields.items()}, {k: v.dtype for k, v in fields.items()}, where)
        if layout.has_index:
            if self._running is None:
                self._running = RunningEpisodes(layout, c.rows)
            table, returns = self._running.index(fields, c.rows)
            fields["episodes"], fields["episode_return"] = table, returns
        fields["meta"] = encode_meta(meta)
        return Rollout(where, fields, meta, layout=layout)

    def _kept_model(self) -> dict[str, np.ndarray] | None:
        if self._model_members is None:
            kept = self.files.partial.kept_model()
            if kept is None:
                return None
            members, meta = kept
            if not all(k in members for k in MODEL_KEYS):
                return None
            self._model_members, self._model_meta = members, meta
        return self._model_members

    @property
    def _rollout(self) -> Rollout:
        r = self._current
        if r is None:
            raise RolloutFormatError(f"{self.path}: no step of this recording is committed yet ({self.status.value})")
        return r

    # ---- ReadableRollout ----------------------------------------------------------------------
    @property
    def T(self) -> int:
        r = self._current
        return 0 if r is None else r.T

    @property
    def N(self) -> int:
        return self._rollout.N

    @property
    def meta(self) -> dict[str, Any]:
        return self._rollout.meta

    @property
    def layout(self) -> Layout:
        return self._rollout.layout

    @property
    def every(self) -> int:
        return self._rollout.every

    @property
    def dt(self) -> float:
        return self._rollout.dt

    @property
    def env_name(self) -> str:
        return self._rollout.env_name

    @property
    def reward_term_names(self) -> list[str]:
        return self._rollout.reward_term_names

    @property
    def terms_are_env_means(self) -> bool:
        return self._rollout.terms_are_env_means

    @property
    def link_names(self) -> list[str] | None:
        return self._rollout.link_names

    @property
    def has_links(self) -> bool:
        return self._rollout.has_links

    @property
    def model(self):
        return self._rollout.model

    @property
    def step_keys(self) -> list[str]:
        return self._rollout.step_keys

    @property
    def index(self):
        return self._rollout.index

    @property
    def detail_envs(self) -> np.ndarray:
        return self._rollout.detail_envs

    def keys(self) -> list[str]:
        return self._rollout.keys()

    def __contains__(self, key: object) -> bool:
        return key in self._rollout

    def __getitem__(self, key: str):
        return self._rollout[key]

    def kind(self, key: str) -> str:
        return self._rollout.kind(key)

    def env(self, env: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        return self._rollout.env(env, keys)

    def env_keys(self, env: int) -> list[str]:
        return self._rollout.env_keys(env)

    def read(self, key: str, steps: tuple[int, int] | None = None, envs: tuple[int, int] | None = None) -> np.ndarray:
        return self._rollout.read(key, steps, envs)

    def episode_bounds(self, env: int) -> np.ndarray:
        return self._rollout.episode_bounds(env)

    def episode_returns(self, env: int) -> np.ndarray:
        return self._rollout.episode_returns(env)

    def has_detail(self, env: int) -> bool:
        return self._rollout.has_detail(env)

    def total_rewards(self) -> np.ndarray:
        return self._rollout.total_rewards()

    def check_unchanged(self) -> None:
        """Nothing to check while recording (the files change by design); the finished file's check after."""
        if self.status is LiveStatus.FINISHED:
            self._rollout.check_unchanged()

    def close(self) -> None:
        self.files.close()

    def __enter__(self) -> LiveRollout:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LiveRollout({str(self.path)!r}, T={self.T}, status={self.status.value})"


__all__ = ["LiveRollout"]
