"""When the writer fails (disk full, folder removed), nothing leaks and the committed steps survive."""

from __future__ import annotations

import errno
import gc
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec._npz import faults

N = 16


def step(t: int) -> dict:
    v = torch.full((N,), float(t))
    return {"obs": v[:, None].repeat(1, 8), "act": v[:, None], "rew": v, "done": torch.zeros(N, dtype=torch.bool)}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fail_next_commit(monkeypatch) -> None:
    """From now on the sidecar write of every commit fails with ENOSPC, as on a disk another process filled."""

    def hook(name: str) -> None:
        if name == "commit.synced":
            raise OSError(errno.ENOSPC, "No space left on device (injected)")

    monkeypatch.setattr(faults, "hook", hook)


def wait_committed(rec: Recorder, rows: int, timeout_s: float = 30.0) -> None:
    """Block until the sidecar names ``rows`` rows (the committer runs on its own thread)."""
    deadline = time.monotonic() + timeout_s
    while rec._pipeline.stream.committed_rows < rows:
        assert time.monotonic() < deadline, f"only {rec._pipeline.stream.committed_rows} rows committed"
        time.sleep(0.005)


def record_until_failure(path, monkeypatch, before: int = 8) -> tuple[Recorder, BaseException]:
    """Record ``before`` steps, wait until they are committed, make the disk full, record until it fails."""
    rec = Recorder(path, N, segment_steps=4, flush_interval_s=None)
    with pytest.raises(RuntimeError) as failure, rec:
        for t in range(before):
            rec.record(**step(t))
        wait_committed(rec, before)
        fail_next_commit(monkeypatch)
        for t in range(before, 100_000):  # the failure surfaces within a few segments
            rec.record(**step(t))
            time.sleep(0.001)
    return rec, failure.value


def fail_by_removing_the_folder(folder) -> tuple[Recorder, weakref.ref]:
    """A recorder whose output folder is deleted under it while it records (its writer then fails).

    Returns it and a weak reference to its ring's ``obs`` tensor.
    """
    rec = Recorder(folder / "r.npz", N, segment_steps=4)
    with pytest.raises(RuntimeError, match="No such file or directory"), rec:
        rec.record(**step(0))
        ring = weakref.ref(rec._ring.tensors["obs"])
        shutil.rmtree(folder)
        for t in range(1, 200):
            rec.record(**step(t))
    return rec, ring


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_failed_recorders_release_thread_fd_and_ring(tmp_path):
    fail_by_removing_the_folder(tmp_path / "warmup")  # imports and first-use allocations
    gc.collect()
    fds, threads = open_fds(), threading.active_count()
    recorders, rings = [], []
    for i in range(5):
        rec, ring = fail_by_removing_the_folder(tmp_path / str(i))
        rings.append(ring)
        with pytest.raises(RuntimeError, match="No such file or directory"):
            rec.close()  # the same message again, no new failure
        with pytest.raises(RuntimeError, match="No such file or directory"):
            rec.record(**step(0))
        recorders.append(rec)  # the user keeps them (a traceback would)
    gc.collect()
    assert open_fds() == fds  # no descriptor pins a deleted file's space
    assert threading.active_count() == threads  # no writer thread waits forever
    assert [r() for r in rings] == [None] * 5  # no ring is held


def test_ring_memory_is_freed_when_the_writer_fails(tmp_path, monkeypatch):
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=4, flush_interval_s=None)
    rec.record(**step(0))
    ring_tensor = weakref.ref(rec._ring.tensors["obs"])
    fail_next_commit(monkeypatch)
    with pytest.raises(RuntimeError, match="No space left"):
        for t in range(1, 100_000):  # the failure surfaces within a few segments
            rec.record(**step(t))
            time.sleep(0.001)
    gc.collect()
    assert ring_tensor() is None  # the user still holds the recorder; its ring is gone


def test_steps_committed_before_the_disk_filled_are_recovered(tmp_path, monkeypatch):
    path = tmp_path / "full.npz"
    _, err = record_until_failure(path, monkeypatch)
    committed = int(re.search(r"the (\d+) steps committed to full.npz.partial before the failure are kept", str(err))[1])
    assert committed >= 8
    faults.hook = None
    rollrec.recover(path)
    with rollrec.load(path) as r:
        assert committed == r.T
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], np.arange(committed))
    assert sorted(os.listdir(tmp_path)) == ["full.npz"]


def test_folder_removed_while_recording_says_nothing_is_left(tmp_path):
    rec, _ = fail_by_removing_the_folder(tmp_path / "gone")
    with pytest.raises(RuntimeError, match="No such file or directory.*; no partial file is left$"):
        rec.close()


def test_update_meta_while_the_writer_commits(tmp_path):
    # The writer serialises a snapshot; before, it serialised the dict the main thread was changing.
    path = tmp_path / "meta.npz"
    with Recorder(path, N, segment_steps=1, flush_interval_s=1e-4) as rec:
        for t in range(300):
            rec.record(**step(t))
            rec.update_meta(**{f"key_{t}": list(range(t % 50))})
    with rollrec.load(path) as r:
        assert r.T == 300 and r.meta["key_299"] == list(range(299 % 50))


# ---- a real full disk -------------------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp_path):
    """A 24 MiB tmpfs, where this process may mount one (root in a sandbox); skipped elsewhere."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_filled_by_another_process_after_preallocation(small_tmpfs):
    path = small_tmpfs / "run.npz"
    rec = Recorder(path, N, segment_steps=4, max_steps=20_000, flush_interval_s=None)  # ~11 MB preallocated
    for t in range(40):
        rec.record(**step(t))
    deadline = time.monotonic() + 30
    while getattr(rec._stream, "committed_rows", 0) < 40 and time.monotonic() < deadline:  # the writer catches up
        time.sleep(0.01)
    fill = (
        f"f = open({str(small_tmpfs / 'filler')!r}, 'wb')\n"
        "try:\n    [f.write(b'x' * 65536) for _ in range(10**6)]\nexcept OSError:\n    pass\nf.close()"
    )
    filler = subprocess.run([sys.executable, "-c", fill], check=False)  # another process takes every byte left
    assert filler.returncode == 0 and shutil.disk_usage(small_tmpfs).free < 65536
    with pytest.raises(RuntimeError, match="No space left on device") as failure, rec:
        for t in range(40, 400):
            rec.record(**step(t))
    committed = int(re.search(r"the (\d+) steps committed", str(failure.value))[1])
    assert committed >= 36
    rollrec.recover(path)  # on the still full disk: the tail fits in space given back by punching holes
    with rollrec.load(path) as r:
        assert committed == r.T
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], np.arange(committed))
    assert sorted(os.listdir(small_tmpfs)) == ["filler", "run.npz"]
