"""The frame clock: real-time playback at any speed, loop, stepping, nothing while paused."""

from __future__ import annotations

import pytest

from rollrec.viewer.clock import MAX_SPEED, MIN_SPEED, FrameClock


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(num_frames: int = 100, dt: float = 0.02) -> tuple[FrameClock, FakeTime]:
    now = FakeTime()
    return FrameClock(num_frames, dt, now=now), now


def test_paused_clock_never_changes():
    clock, now = make()
    for _ in range(5):
        now.t += 1.0
        assert clock.tick() is False
    assert clock.frame == 0


def test_real_time_at_1x():
    clock, now = make(dt=0.02)
    clock.play()
    now.t += 0.1  # 5 steps of 0.02 s
    assert clock.tick() is True
    assert clock.frame == 5
    assert clock.tick() is False  # no time passed: no change, nothing to push


def test_slow_speed_really_slows_down():
    clock, now = make(dt=0.02)
    clock.speed = 0.1  # one frame per 0.2 s
    clock.play()
    now.t += 0.19
    assert clock.tick() is False and clock.frame == 0
    now.t += 0.02
    assert clock.tick() is True and clock.frame == 1


def test_fast_speed_skips_frames():
    clock, now = make(dt=0.02)
    clock.speed = 4.0
    clock.play()
    now.t += 1 / 30  # one 30 Hz tick
    clock.tick()
    assert clock.frame == 6  # 0.0333 * 4 / 0.02 = 6.67 -> 6


def test_speed_is_clamped_and_change_keeps_frame():
    clock, now = make()
    clock.speed = 100
    assert clock.speed == MAX_SPEED
    clock.speed = 0
    assert clock.speed == MIN_SPEED
    clock.speed = 1.0
    clock.play()
    now.t += 0.2
    clock.tick()
    assert clock.frame == 10
    clock.speed = 2.0  # re-anchored: the frame stays, then goes twice as fast
    assert clock.frame == 10
    now.t += 0.1
    clock.tick()
    assert clock.frame == 20


def test_loop_wraps_and_no_loop_stops_at_end():
    clock, now = make(num_frames=10, dt=0.1)
    clock.play()
    now.t += 1.25  # 12.5 frames
    clock.tick()
    assert clock.frame == 2 and clock.playing
    clock.loop = False
    clock.seek(8)
    now.t += 1.0
    clock.tick()
    assert clock.frame == 9 and not clock.playing
    clock.play()  # play at the end without loop restarts
    assert clock.frame == 0 and clock.playing


def test_step_pauses_and_wraps_with_loop():
    clock, _ = make(num_frames=10)
    clock.play()
    assert clock.step(-1) == 9 and not clock.playing
    assert clock.step(+1) == 0
    clock.loop = False
    assert clock.step(-1) == 0


def test_seek_clamps():
    clock, _ = make(num_frames=10)
    assert clock.seek(50) == 9
    assert clock.seek(-3) == 0


def test_toggle():
    clock, _ = make()
    assert clock.toggle() is True
    assert clock.toggle() is False


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        FrameClock(0, 0.02)
    with pytest.raises(ValueError):
        FrameClock(10, 0.0)
