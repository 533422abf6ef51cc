"""The replay frame clock: which frame is shown, driven by an injectable time source.

Playback follows real time: while playing, frame ``f0 + floor((now - t0) * speed / dt)`` is
shown, where ``(t0, f0)`` is the anchor set when play started (or the speed changed, or the
user seeked). So 0.1x really shows a frame every ``10 * dt`` seconds and 4x skips frames when
ticks are slower than ``dt / 4``. Plain Python, no viser: tested without a browser.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: Speeds offered by the GUI, slowest first.
SPEEDS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
MIN_SPEED, MAX_SPEED = SPEEDS[0], SPEEDS[-1]


class FrameClock:
    """Frame index in ``[0, num_frames)`` with play/pause, speed and loop.

    ``now`` returns seconds (monotonic); tests pass a fake. Nothing changes between calls to
    `tick` while paused, so a paused viewer pushes nothing.
    """

    def __init__(self, num_frames: int, dt: float, *, now: Callable[[], float] = time.monotonic):
        if num_frames < 1:
            raise ValueError(f"a replay needs at least one frame, got {num_frames}")
        if not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.num_frames = int(num_frames)
        self.dt = float(dt)
        self._now = now
        self._frame = 0
        self._playing = False
        self._speed = 1.0
        self.loop = True
        #: A recording in progress: playing past the last frame waits there for the next ones
        #: (neither loops nor pauses), so playback can sit at the live edge.
        self.hold_at_end = False
        self._anchor = (0.0, 0)  # (time, frame) playback is measured from

    # ---- read ------------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        return self._frame

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    # ---- control ---------------------------------------------------------------------------
    def _reanchor(self) -> None:
        self._anchor = (self._now(), self._frame)

    def play(self) -> None:
        """Start playing from the current frame (from the start if paused at the end without loop)."""
        if self._playing:
            return
        if not self.loop and not self.hold_at_end and self._frame >= self.num_frames - 1:
            self._frame = 0
        self._playing = True
        self._reanchor()

    def pause(self) -> None:
        self._playing = False

    def toggle(self) -> bool:
        """Play if paused, pause if playing; returns the new `playing`."""
        self.pause() if self._playing else self.play()
        return self._playing

    @speed.setter
    def speed(self, value: float) -> None:
        """Playback speed factor, clamped to [`MIN_SPEED`, `MAX_SPEED`]."""
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"speed must be finite, got {value}")
        self._speed = min(max(value, MIN_SPEED), MAX_SPEED)
        self._reanchor()

    def extend(self, num_frames: int) -> None:
        """More frames to play (a recording in progress grew); the frame and the anchor stay."""
        self.num_frames = max(self.num_frames, int(num_frames))

    def seek(self, frame: int) -> int:
        """Show ``frame`` (clamped to the valid range); playback continues from there."""
        self._frame = min(max(int(frame), 0), self.num_frames - 1)
        self._reanchor()
        return self._frame

    def step(self, delta: int) -> int:
        """Move ``delta`` frames (wrapping when `loop` is on, else clamped) and pause."""
        self.pause()
        target = self._frame + int(delta)
        if self.loop:
            target %= self.num_frames
        return self.seek(target)

    def tick(self) -> bool:
        """Advance to the frame real time asks for; returns True when the frame changed.

        At the end: wraps to 0 when `loop` is on, else stops on the last frame and pauses.
        """
        if not self._playing:
            return False
        t0, f0 = self._anchor
        target = f0 + math.floor((self._now() - t0) * self._speed / self.dt + 1e-9)
        if target >= self.num_frames:
            if self.hold_at_end:
                target = self.num_frames - 1  # at the live edge until more frames come
            elif self.loop:
                target %= self.num_frames
                # Re-anchor at the wrap so the float offset never grows without bound.
                self._anchor = (self._now() - (target * self.dt / self._speed), 0)
            else:
                target = self.num_frames - 1
                self._playing = False
        changed = target != self._frame
        self._frame = target
        return changed
