"""A recording killed with SIGKILL keeps every flushed segment, readable after `recover`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rollrec

CHILD = textwrap.dedent(
    """
    import sys, time, torch
    from rollrec.engine import Recorder
    rec = Recorder(sys.argv[1], 3, segment_steps=4)
    for t in range(10_000):
        rec.record(obs=torch.full((3, 2), float(t)), act=torch.zeros(3, 1), rew=torch.full((3,), float(t)),
                   done=torch.zeros(3, dtype=torch.bool))
        if t == 13:  # 3 segments (12 steps) handed to the writer, 2 steps in the ring
            time.sleep(0.5)  # let the writer commit them
            print("ready", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_leaves_flushed_steps_recoverable(tmp_path):
    path = tmp_path / "killed.npz"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert not path.exists()
    with pytest.raises(FileNotFoundError, match="rollrec recover"):
        rollrec.load(path)
    from rollrec.cli import main

    assert main(["recover", str(path)]) == 0
    r = rollrec.load(path)
    assert r.T == 12 and r.meta["recovered"] is True
    np.testing.assert_array_equal(np.asarray(r["obs"])[:, 0, 0], np.arange(12))
    assert not (tmp_path / "killed.npz.partial").exists()


def test_recover_without_partial_is_a_clear_error(tmp_path):
    from rollrec.cli import main

    assert main(["recover", str(tmp_path / "none.npz")]) == 1
