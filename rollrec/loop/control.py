"""`PolicyControl`: the policy switched off per env, the simulation paused or stepped, from a viewer.

The original recorder's viewer ran the simulation itself and let ``l`` switch the policy off
(actions become zeros, or a PD controller) and on again. rollrec's viewer is another process
(``rollrec replay``, started by ``RolloutRecorder(...).run(policy, serve=True)``), so the
controls live in a small shared file that both map, with one writer per field::

    offset  size  field         written by  meaning
    0       8     magic         the loop    b"rollrec\\x01"
    8       8     num_envs      the loop    N
    16      8     step_credit   the viewer  single steps asked for while paused (a counter)
    24      8     steps_taken   the loop    single steps taken (a counter)
    32      8     loop_step     the loop    steps the loop has run
    40      1     paused        the viewer  1: the loop waits before its next step
    41      1     finished      the loop    1: the loop has ended (the controls do nothing more)
    48      N     policy_on     the viewer  one byte per env: 1 the policy acts, 0 the fallback

Each field is written by one side only and read by the other with plain loads, so neither ever
waits for the other: the loop reads the env bytes once per step (a copy of N bytes). The loop
records what it applied in the per-step bool field ``policy_acted`` (`RolloutRecorder.run`).
"""

from __future__ import annotations

import mmap
import os
import tempfile
import time
from collections.abc import Callable, Iterable

import numpy as np

MAGIC = b"rollrec\x01"
_HEADER = 48


class PolicyControl:
    """The control file at ``path``, mapped (see the module docstring). `create` makes one for
    ``num_envs`` envs (the loop's side); `attach` opens an existing one (the viewer's side)."""

    def __init__(self, path: str, *, owner: bool = False):
        self.path = path
        self.owner = owner
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        try:
            size = os.fstat(fd).st_size
            if size < _HEADER:
                raise ValueError(f"{path}: not a rollrec policy control file")
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        if self._map[:8] != MAGIC:
            self._map.close()
            raise ValueError(f"{path}: not a rollrec policy control file")
        self._header = np.frombuffer(self._map, np.int64, count=5)
        self._flags = np.frombuffer(self._map, np.uint8, count=2, offset=40)
        self.num_envs = int(self._header[1])
        self._on = np.frombuffer(self._map, np.uint8, count=self.num_envs, offset=_HEADER)

    @classmethod
    def create(cls, num_envs: int, directory: str | None = None) -> PolicyControl:
        """A new control file (every env's policy on, running), removed by `close`."""
        fd, path = tempfile.mkstemp(prefix="rollrec-control-", dir=directory)
        try:
            header = np.zeros(_HEADER, np.uint8)
            header[:8] = np.frombuffer(MAGIC, np.uint8)
            header[8:16] = np.frombuffer(np.int64(num_envs).tobytes(), np.uint8)
            os.write(fd, header.tobytes() + b"\x01" * int(num_envs))
        finally:
            os.close(fd)
        return cls(path, owner=True)

    @classmethod
    def attach(cls, path: str | os.PathLike) -> PolicyControl:
        return cls(os.fspath(path))

    # ---- the viewer's side --------------------------------------------------------------------
    def set_policy(self, on: bool, envs: Iterable[int] | None = None) -> None:
        """Switch the policy on or off for ``envs`` (None: every env) from the next step."""
        if envs is None:
            self._on[:] = int(bool(on))
        else:
            self._on[np.asarray(list(envs), np.int64)] = int(bool(on))

    def toggle(self, envs: Iterable[int] | None = None) -> bool:
        """Switch ``envs`` (None: every env) off when the policy acts for all of them, else on;
        returns whether it acts now."""
        idx = slice(None) if envs is None else np.asarray(list(envs), np.int64)
        on = not bool(self._on[idx].all())
        self._on[idx] = int(on)
        return on

    def pause(self) -> None:
        self._flags[0] = 1

    def resume(self) -> None:
        self._flags[0] = 0

    def step(self, n: int = 1) -> None:
        """Let a paused loop run ``n`` more steps."""
        self._header[2] += int(n)

    @property
    def paused(self) -> bool:
        return bool(self._flags[0])

    @property
    def finished(self) -> bool:
        return bool(self._flags[1])

    @property
    def loop_step(self) -> int:
        return int(self._header[4])

    def policy_on(self) -> np.ndarray:
        """``[N]`` bool copy: whether the policy acts for each env."""
        return self._on.astype(bool)

    # ---- the loop's side ----------------------------------------------------------------------
    def wait_turn(self, on_pause: Callable[[], None] | None = None, poll_s: float = 0.01) -> None:
        """Return when the loop may run its next step: at once unless paused; while paused, when
        a single step was asked for (it is counted taken). ``on_pause`` runs once when a wait
        begins (the recorder flushes, so the viewer shows the last step)."""
        waited = False
        while self._flags[0]:
            if self._header[2] > self._header[3]:
                self._header[3] += 1
                break
            if not waited:
                waited = True
                if on_pause is not None:
                    on_pause()
            time.sleep(poll_s)
        self._header[4] += 1

    def finish(self) -> None:
        """The loop has ended."""
        self._flags[1] = 1

    def close(self) -> None:
        """Unmap; the owner removes the file."""
        del self._header, self._flags, self._on
        self._map.close()
        if self.owner:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


__all__ = ["PolicyControl"]
