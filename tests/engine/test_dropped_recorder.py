"""A `Recorder` dropped without `close()` is released: garbage collected, its threads end, its
descriptors close, its lease goes and the committed steps wait for ``rollrec recover`` (with a
warning saying so); still referenced at interpreter exit, it is finished."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest
import torch

import rollrec
from rollrec.io.partial import PartialRecording, RecordingState

N = 3


def record(rec, steps: int, start: int = 0) -> None:
    for t in range(start, start + steps):
        rec.record(obs=torch.full((N, 2), float(t)), act=torch.zeros(N, 1), rew=torch.full((N,), float(t)),
                   done=torch.zeros(N, dtype=torch.bool))


def rollrec_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("rollrec-"))


def open_fds() -> set[str]:
    return {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
@pytest.mark.parametrize("options", [{}, {"every": 2}, {"direct_io": False}], ids=["plain", "every", "buffered"])
def test_a_dropped_recorder_is_released_and_its_steps_recoverable(tmp_path, options):
    path = tmp_path / "run.npz"
    threads_before = rollrec_threads()
    rec = rollrec.Recorder(path, N, segment_steps=4, **options)
    record(rec, 18)  # 16 steps (8 kept rows with every=2) handed to the writer, 2 in the ring
    assert len(rollrec_threads()) > len(threads_before)
    assert PartialRecording(path).state() is RecordingState.LIVE
    ref = weakref.ref(rec)
    with pytest.warns(RuntimeWarning, match=r"Recorder of .*run\.npz was dropped without close\(\).* committed steps "
                                            r"are kept in run\.npz\.partial: run `rollrec recover"):
        del rec
        gc.collect()
    assert ref() is None
    assert rollrec_threads() == threads_before
    assert not any(str(tmp_path) in target for target in open_fds())
    assert PartialRecording(path).state() is RecordingState.INTERRUPTED
    rollrec.recover(path)
    with rollrec.load(path) as r:
        every = options.get("every", 1)
        assert 16 // every == r.T
        first = np.arange(0, 16, every)  # a kept row's reward sums its `every` steps
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], every * first + every * (every - 1) // 2)


def test_a_recorder_still_open_at_exit_is_finished(tmp_path):
    path = tmp_path / "run.npz"
    code = textwrap.dedent(
        """
        import sys, torch, rollrec
        rec = rollrec.Recorder(sys.argv[1], 3, segment_steps=4)
        for t in range(10):
            rec.record(obs=torch.full((3, 2), float(t)), act=torch.zeros(3, 1), rew=torch.full((3,), float(t)),
                       done=torch.zeros(3, dtype=torch.bool))
        """  # no close(): the script ends with the recorder open
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "the Recorder was never closed; finished it at exit (10 steps)" in proc.stderr
    with rollrec.load(path) as r:
        assert r.T == 10 and not r.meta.get("recovered")
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], np.arange(10))
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_a_closed_recorder_leaves_nothing_for_the_finaliser(tmp_path, recwarn):
    rec = rollrec.Recorder(tmp_path / "run.npz", N, segment_steps=4)
    record(rec, 6)
    rec.close()
    del rec
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
