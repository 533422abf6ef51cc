"""The lease (`rollrec.io.lease`): one owner of a recording's files at a time, asked without
taking a lock, dropped by the kernel when its process dies, and the owner's pid and host as the
fallback where a file system takes no locks."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rollrec._npz.stream import MemberSpec
from rollrec.io import lease
from rollrec.io.partial import PartialRecording, RecordingBusyError, RecordingState, static_members

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="advisory locks, fork, SIGKILL")

HOLD = textwrap.dedent(
    """
    import sys, time
    from rollrec.io import lease
    got = lease.acquire(sys.argv[1], sys.argv[2], lease.Owner.this_process())
    print("ready" if isinstance(got, lease.Lease) else "held", flush=True)
    time.sleep(60)
    """
)


def hold_in_child(path, role="recording") -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), role], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def kill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


def test_a_held_lease_names_its_holder_and_the_kernel_drops_it_with_the_process(tmp_path):
    path = str(tmp_path / "run.npz.partial.lock")
    assert lease.probe(path) is None
    child = hold_in_child(path)
    try:
        holder = lease.probe(path)
        assert holder.role == "recording" and holder.owner.pid == child.pid and holder.owner.host == lease.this_host()
        got = lease.acquire(path, "recovery", lease.Owner.this_process())
        assert isinstance(got, lease.Holder) and got.owner.pid == child.pid  # refused, without waiting
    finally:
        kill(child)
    assert os.path.exists(path) and lease.probe(path) is None  # a stale file: nobody's lease
    mine = lease.acquire(path, "recovery", lease.Owner.this_process())
    assert isinstance(mine, lease.Lease) and lease.held_here(path, "recovery")
    mine.release()
    assert not os.path.exists(path) and not lease.held_here(path, "recovery")


def test_asking_takes_no_lock_a_holder_could_wait_on(tmp_path):
    """A prober that never lets go (as a reader following a recording would ask again and again)
    leaves the lock free for a new holder: the question is a query, not a lock."""
    path = str(tmp_path / "x.lock")
    open(path, "w").close()
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(100):
            assert lease._is_held(fd) is False
        got = lease.acquire(path, "recording", lease.Owner.this_process())
        assert isinstance(got, lease.Lease)
        assert lease._is_held(fd) is True  # another open file description of the same process holds it
        got.release()
    finally:
        os.close(fd)


def test_a_planted_lock_file_is_never_followed_or_written(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep me")
    link = tmp_path / "run.npz.partial.lock"
    link.symlink_to(target)
    with pytest.raises(OSError):
        lease.acquire(str(link), "recording", lease.Owner.this_process())
    hard = tmp_path / "other.lock"
    os.link(target, hard)  # a hard link to a file that matters
    with pytest.raises(OSError, match="not a lock file"):
        lease.acquire(str(hard), "recording", lease.Owner.this_process())
    assert target.read_text() == "keep me"


FORKING_HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from rollrec.io import lease
    got = lease.acquire(sys.argv[1], "recording", lease.Owner.this_process())
    worker = os.fork()  # e.g. a data-loader worker forked while recording
    if worker == 0:
        time.sleep(60)
        os._exit(0)
    print(worker, flush=True)
    time.sleep(60)
    """
)


def test_a_forked_child_does_not_keep_a_dead_recorders_lease(tmp_path):
    path = str(tmp_path / "f.lock")
    recorder = subprocess.Popen([sys.executable, "-c", FORKING_HOLDER, path], stdout=subprocess.PIPE, text=True)
    worker = int(recorder.stdout.readline())
    try:
        assert lease.probe(path).owner.pid == recorder.pid
        kill(recorder)  # the recorder dies; its forked worker lives on
        os.kill(worker, 0)
        assert lease.probe(path) is None
    finally:
        os.kill(worker, signal.SIGKILL)


def test_a_reused_pid_or_a_zombie_is_not_the_owner():
    me = lease.Owner.this_process()
    assert lease.process_running(me) is True
    assert lease.process_running(lease.Owner(me.pid, "another-host", me.started)) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert lease.process_running(lease.Owner(child.pid, me.host, time.time())) is False
    parent = os.getppid()  # started long before this "recording" began: a pid reused since
    if sys.platform.startswith("linux"):
        assert lease.process_running(lease.Owner(parent, me.host, 0.0)) is False
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])
        time.sleep(0.5)  # exited, not yet reaped
        assert lease.process_running(lease.Owner(zombie.pid, me.host, time.time() - 5)) is False
        zombie.wait()


# ---- PartialRecording asks the lease -----------------------------------------------------------
def _begin(path, **kwargs) -> PartialRecording:
    recording = PartialRecording(path)
    info = PartialRecording.recovery_info({"format": "rollrec"}, [], None, False)
    stream = recording.begin([MemberSpec("x", "<f4", (2,), 8)], info=info, **kwargs)
    stream.append("x", np.arange(6, dtype=np.float32).reshape(3, 2))
    stream.commit(3)
    return recording


def test_a_recording_in_progress_is_live_and_owned(tmp_path):
    path = tmp_path / "run.npz"
    a = _begin(path)
    other = PartialRecording(path)
    assert other.state() is RecordingState.LIVE and PartialRecording.state_of(str(path) + ".partial") is RecordingState.LIVE
    owner = other.owner()
    assert (owner.pid, owner.host) == (os.getpid(), lease.this_host()) and owner.started <= time.time()
    assert other.holder().role == "recording"
    for attempt in (lambda: other.check_not_interrupted(overwrite=True), lambda: _begin(path, overwrite=True),
                    other.recover):
        with pytest.raises(RecordingBusyError, match=rf"being recorded \(pid {os.getpid()} on host "):
            attempt()
    assert a.stream.committed_rows == 3 and os.path.exists(a.sidecar_path)  # nothing was touched
    a.finish(static_members({"format": "rollrec"}, []), 3, compress=False)
    assert other.state() is RecordingState.FINISHED and sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_a_recording_released_after_a_failure_is_interrupted_and_recovered(tmp_path):
    path = tmp_path / "run.npz"
    a = _begin(path)
    a.release()  # the writer failed: the files stay for `recover`, the lease goes
    assert PartialRecording(path).state() is RecordingState.INTERRUPTED
    assert PartialRecording(path).recover() == path
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_a_recovery_in_progress_refuses_a_second_one_in_one_line(tmp_path):
    path = tmp_path / "run.npz"
    _begin(path).release()
    child = hold_in_child(str(path) + ".partial.lock", role="recovery")
    try:
        with pytest.raises(RecordingBusyError) as caught:
            PartialRecording(path).recover()
        message = str(caught.value)
        assert f"being recovered by pid {child.pid} on host" in message and "\n" not in message
        assert "CRC" not in message and "power loss" not in message
    finally:
        kill(child)
    assert PartialRecording(path).recover() == path  # the stale lease after the kill: recovery proceeds


@pytest.fixture
def no_locks(monkeypatch):
    """A file system that takes no advisory locks (NFS ``nolock``, sshfs): ENOLCK on every lock call."""
    def refuse(fd):
        raise lease.LocksUnsupported(38, "Function not implemented")

    monkeypatch.setattr(lease, "_lock", refuse)
    monkeypatch.setattr(lease, "_is_held", refuse)


def _sidecar_owner(path, **owner) -> None:
    sidecar = str(path) + ".partial.json"
    doc = json.loads(Path(sidecar).read_text())
    doc["info"]["owner"].update(owner)
    with open(sidecar, "w") as f:
        json.dump(doc, f)


def test_without_locks_the_sidecar_owner_decides(tmp_path, no_locks):
    path = tmp_path / "run.npz"
    a = _begin(path)
    assert json.loads(Path(a.sidecar_path).read_text())["info"]["owner"]["lease"] is False
    assert PartialRecording(path).state() is RecordingState.LIVE  # this process records it
    a.release()
    assert PartialRecording(path).state() is RecordingState.INTERRUPTED  # ... and stopped
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _sidecar_owner(path, pid=child.pid, started=time.time())  # a process on this host that runs
        assert PartialRecording(path).state() is RecordingState.LIVE
        with pytest.raises(RecordingBusyError, match=f"pid {child.pid} .*its process still runs"):
            PartialRecording(path).recover(force=True)  # force never overrides a process known to run
    finally:
        kill(child)
    assert PartialRecording(path).state() is RecordingState.INTERRUPTED  # it died
    _sidecar_owner(path, host="gpu-node-7")  # another host: nothing here can tell
    assert PartialRecording(path).state() is RecordingState.LIVE
    with pytest.raises(RecordingBusyError, match="on host gpu-node-7.*--force"):
        PartialRecording(path).recover()
    assert PartialRecording(path).recover(force=True) == path


def test_a_sharded_directory_names_its_live_ranks(tmp_path, make_fields, write_sharded, capsys):
    """Rank 1 still records (its lease held by another process), rank 0 finished: ``info DIR``
    shows the data present and names the live rank; ``recover DIR`` leaves it (and the manifest)
    alone and says so in one line."""
    from rollrec.cli import main

    run = write_sharded(tmp_path / "run", make_fields(6, 5), (3, 2), missing=(1,))
    partial = PartialRecording(run / "rank-00001.npz")
    (run / "rank-00001.npz.partial").write_bytes(b"")  # its files, as a recording rank has them
    (run / "rank-00001.npz.partial.json").write_bytes(b"")
    manifest = (run / "manifest.json").read_bytes()
    child = hold_in_child(partial.lock_path)
    try:
        assert main(["info", str(run)]) == 0
        out = capsys.readouterr().out
        assert "ranks being recorded now: 1" in out
        assert re.search(rf"rank 1 .* LIVE: no file yet: being recorded \(pid {child.pid} on host", out)
        assert main(["recover", str(run)]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"rank-00001.npz being recorded (pid {child.pid}" in err and "again once they stop" in err
        assert (run / "manifest.json").read_bytes() == manifest and (run / "rank-00001.npz.partial").exists()
    finally:
        kill(child)


SLOW_NAMER = textwrap.dedent(
    """
    import json, os, sys, time
    from rollrec.io import lease
    fd = os.open(sys.argv[1], os.O_RDWR)
    assert lease._lock(fd)
    print("locked", flush=True)
    time.sleep(0.1)  # a holder between taking the lock and writing its name over the last one's
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"role": "recovery", **lease.Owner.this_process().to_json()}).encode(), 0)
    time.sleep(60)
    """
)


def test_a_new_holder_is_never_taken_for_the_dead_one_it_replaces(tmp_path):
    """The lock file still names a recorder killed since; a recovery takes the lock and writes its
    own name a moment later. Asked in between, the answer is the recovery, never "being recorded
    (pid of the dead recorder)" (two recoveries at once reported that in 2 of 200 trials)."""
    path = tmp_path / "run.npz.partial.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(json.dumps({"role": "recording", "pid": dead.pid, "host": lease.this_host(), "started": time.time()}))
    child = subprocess.Popen([sys.executable, "-c", SLOW_NAMER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        holder = lease.probe(str(path))
        assert holder.role == "recovery" and holder.owner.pid == child.pid
        got = lease.acquire(str(path), "recovery", lease.Owner.this_process())
        assert isinstance(got, lease.Holder) and got.owner.pid == child.pid
    finally:
        kill(child)
