"""The policy controls a live replay shares with the rollout loop (`rollrec.loop.control`): what
the viewer writes is what the loop reads, pausing holds the loop until resumed or stepped, and
the file is the owner's to remove."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from rollrec.loop.control import PolicyControl


def test_what_the_viewer_sets_the_loop_reads(tmp_path):
    loop = PolicyControl.create(5, str(tmp_path))
    viewer = PolicyControl.attach(loop.path)  # another mapping of the same file, as the viewer's process has
    try:
        assert viewer.num_envs == 5 and loop.policy_on().all()
        viewer.set_policy(False, [1, 3])
        np.testing.assert_array_equal(loop.policy_on(), [True, False, True, False, True])
        assert viewer.toggle([1]) is True and loop.policy_on()[1]
        assert viewer.toggle() is True and loop.policy_on().all()  # env 3 was off: every env on
        assert viewer.toggle() is False and not loop.policy_on().any()  # all on: every env off
        loop.finish()
        assert viewer.finished
    finally:
        viewer.close()
        loop.close()
    assert not os.path.exists(loop.path)  # the owner (the loop) removes it


def test_a_paused_loop_waits_and_takes_single_steps(tmp_path):
    loop = PolicyControl.create(2, str(tmp_path))
    viewer = PolicyControl.attach(loop.path)
    taken, pauses = [], []
    stop = threading.Event()

    def run():
        while not stop.is_set() and len(taken) < 1000:
            loop.wait_turn(on_pause=lambda: pauses.append(len(taken)), poll_s=0.001)
            taken.append(loop.loop_step)

    try:
        viewer.pause()
        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.2)
        assert taken == [] and pauses == [0]  # held before its first step; the pause hook ran once
        viewer.step(3)
        deadline = time.monotonic() + 10
        while len(taken) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert taken == [1, 2, 3]  # exactly the steps asked for
        assert viewer.loop_step == 3
        viewer.resume()
        worker.join(timeout=10)
        assert len(taken) == 1000
    finally:
        stop.set()
        viewer.resume()
        viewer.close()
        loop.close()


def test_a_file_that_is_not_a_control_file_is_refused(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match="not a rollrec policy control file"):
        PolicyControl.attach(bad)
    bad.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a rollrec policy control file"):
        PolicyControl.attach(bad)
