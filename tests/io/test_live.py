"""Following a recording in progress (`rollrec.io.live`): only committed rows, at the placements
the sidecar names, whatever the writer does meanwhile.

The writer runs on a thread of this process and is stopped at every point of the commit protocol
it reports (`rollrec._npz.faults`: each step of a commit, of growing the file, of finishing it);
at each stop the reader refreshes and reads everything it holds, and a reader that has not
refreshed since before the step reads too, and both must read exactly the recorded rows.
"""

from __future__ import annotations

import os
import queue
import threading
import time

import numpy as np
import pytest

from rollrec._npz import faults
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec.format.errors import RolloutFormatError
from rollrec.format.meta import make_meta
from rollrec.io.live import LiveRollout, LiveStatus, in_progress, open_live, writer_pids
from rollrec.io.live import follow
from rollrec.io.partial import PartialRecording, finish, static_members

N = 3
KEYS = ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms")


def truth(t0: int, t1: int) -> dict[str, np.ndarray]:
    """The rows every test writes: each value says its step and env."""
    t = np.arange(t0, t1, dtype=np.float32)[:, None]
    e = np.arange(N, dtype=np.float32)[None, :]
    v = t * 10 + e  # [n, N]
    quat = np.zeros((t1 - t0, N, 4), np.float32)
    quat[..., 0] = 1.0
    quat[..., 1] = v / 1000
    return {
        "obs": np.repeat(v[..., None], 5, axis=2) + np.arange(5, dtype=np.float32),
        "act": np.repeat(-v[..., None], 2, axis=2),
        "rew": v.copy(),
        "done": ((t.astype(int) + e.astype(int)) % 7 == 6),
        "truncated": ((t.astype(int) + e.astype(int)) % 14 == 13),
        "base_pos": np.stack([v, v + 0.5, -v], axis=2),
        "base_quat": quat,
        "rew_terms": np.stack([v, 2 * v], axis=2),
    }


def begin(path, capacity: int = 4, open_ended: bool = False):
    meta = make_meta(num_steps=0, num_envs=N, dt=0.1, env_name="live-test")
    recording = PartialRecording(path)
    specs = [MemberSpec(k, a.dtype.str, a.shape[1:], capacity) for k, a in truth(0, 1).items()]
    stream = recording.begin(specs, info=PartialRecording.recovery_info(meta, ["a", "b"], None, False), direct=False,
                             open_ended=open_ended)
    return recording, stream, meta


def append(stream, t0: int, t1: int) -> None:
    for k, a in truth(t0, t1).items():
        stream.append(k, np.ascontiguousarray(a))


def check(live, T: int | None = None) -> int:
    """Everything ``live`` holds equals the recorded rows; returns its T."""
    T = live.T if T is None else T
    want = truth(0, T)
    for k in KEYS:
        np.testing.assert_array_equal(live.read(k, (0, T)), want[k], err_msg=k)
    for e in range(N):
        got = live.env(e, list(KEYS))
        for k in KEYS:
            np.testing.assert_array_equal(got[k][:T], want[k][:, e], err_msg=f"{k} env {e}")
    np.testing.assert_array_equal(np.asarray(live["base_pos"][T - 1, 1:3]), want["base_pos"][T - 1, 1:3])
    return T


class Paused:
    """Runs ``work`` on a thread whose every fault point waits for the test (`step`)."""

    def __init__(self, work):
        self.reached: queue.Queue[str] = queue.Queue()
        self._go = threading.Semaphore(0)
        self._writer = None
        self.error: BaseException | None = None

        def hook(name: str) -> None:
            if threading.current_thread() is self._writer:
                self.reached.put(name)
                self._go.acquire()

        def run() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc
            finally:
                self.reached.put("done")

        faults.hook = hook
        self._writer = threading.Thread(target=run, daemon=True)
        self._writer.start()

    def points(self):
        """Each point reached, the writer stopped there until the next one is asked for."""
        try:
            while True:
                name = self.reached.get(timeout=30)
                if name == "done":
                    if self.error is not None:
                        raise self.error
                    return
                yield name
                self._go.release()
        finally:
            faults.hook = None
            self._go.release()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("open_ended", [False, True], ids=["grows", "open-ended"])
def test_a_reader_at_every_point_of_the_commit_protocol_reads_exactly_the_committed_rows(tmp_path, compress, open_ended):
    path = tmp_path / "run.npz"
    _, stream, meta = begin(path, capacity=4, open_ended=open_ended)
    append(stream, 0, 3)
    stream.commit(3)
    live = LiveRollout(path)
    stale = LiveRollout(path)  # refreshed here only: its placements go stale when the file grows
    assert live.T == stale.T == 3 and live.status is LiveStatus.RECORDING

    def work():
        append(stream, 3, 9)  # past the capacity of 4: the file grows (every member but the first moves)
        stream.commit(9)
        append(stream, 9, 33)  # grows again
        stream.commit(33)
        append(stream, 33, 40)  # rows written and not committed
        finish(stream, static_members({**meta, "num_steps": 40}, ["a", "b"]), 40, str(path), compress)

    seen = []
    for point in Paused(work).points():
        seen.append(point)
        # the rows the sidecar names (at commit.synced the new ones are on disk, not named yet);
        # rows written past them are never shown
        want = 40 if live.refresh() and live.status is LiveStatus.FINISHED else stream.committed_rows
        assert want == live.T, point
        check(live)
        check(stale, 3)  # the rows it knew, wherever they are now
    assert {"commit.synced", "commit.named", "finalize.header", "finalize.tail", "finish.renamed",
            "finish.sidecar_removed"} <= set(seen)
    assert open_ended or {"grow.copied", "grow.synced", "grow.switched", "grow.punched"} <= set(seen)
    if stream._collapse:  # the holes between members removed in place (ext4, XFS), each step read across
        assert {"compact.planned", "compact.collapsed", "compact.switched"} <= set(seen)
    elif open_ended:  # else copied over (tmpfs, btrfs)
        assert {"compact.copied", "compact.switched"} <= set(seen)
    assert live.refresh() == 40 and live.status is LiveStatus.FINISHED
    check(live)
    check(stale, 3)
    assert stale.refresh() == 40 and stale.status is LiveStatus.FINISHED
    live.close()
    stale.close()


def test_rows_beyond_the_committed_count_are_never_shown(tmp_path):
    path = tmp_path / "run.npz"
    _, stream, _ = begin(path, capacity=64)
    append(stream, 0, 4)
    stream.commit(4)
    append(stream, 4, 20)
    with LiveRollout(path) as live:
        assert live.T == 4
        assert live.read("rew").shape == (4, N)
        with pytest.raises(IndexError):
            live["rew"][4]
        check(live)
        stream.commit(20)
        assert live.T == 4  # a snapshot until refreshed
        assert live.refresh() == 20
        check(live)
    stream.close()


def test_a_stale_placement_read_after_the_old_place_was_punched_is_read_again(tmp_path, monkeypatch):
    """The reader's worst timing: it takes a member's place from the sidecar, the writer moves the
    member and gives the old place back (it reads as zeros), and only then the reader reads."""
    path = tmp_path / "run.npz"
    _, stream, _ = begin(path, capacity=4)
    append(stream, 0, 4)
    stream.commit(4)
    live = LiveRollout(path)
    real = follow.RecordingFiles.placement
    moves = []

    def placement_then_grow(self, name):
        p = real(self, name)
        if not moves and name == "rew":  # obs, the largest member, grows in place; rew moves
            moves.append(name)
            append(stream, 4, 12)  # grow: copy, sync, switch, punch the old place
            stream.commit(12)
            assert os.pread(self.fileno(), 4 * N, p.data_offset + 4 * N) == b"\0" * 4 * N  # row 1 reads as zeros now
            assert real(self, name) == p  # the reader has not seen the new sidecar yet
        return p

    monkeypatch.setattr(follow.RecordingFiles, "placement", placement_then_grow)
    check(live, 4)
    assert moves
    assert live.refresh() == 12
    check(live)
    live.close()
    stream.close()


def test_a_sidecar_mid_replace_claimed_or_with_its_temporary_file_beside_it(tmp_path):
    path = tmp_path / "run.npz"
    sidecar = tmp_path / "run.npz.partial.json"
    sidecar.write_bytes(b"")  # names claimed, file not laid out yet
    with LiveRollout(path) as live:
        assert live.status is LiveStatus.WAITING and live.T == 0
        with pytest.raises(RolloutFormatError, match="no step"):
            _ = live.N
    sidecar.unlink()
    _, stream, _ = begin(path)
    append(stream, 0, 2)
    stream.commit(2)
    (tmp_path / "run.npz.partial.json.tmp").write_bytes(b'{"format": "rollrec-partial", "commit')  # a replace under way
    with LiveRollout(path) as live:
        assert live.T == 2
        check(live)
    stream.close()


def test_a_reader_polling_while_the_writer_commits_and_grows_never_sees_wrong_rows(tmp_path):
    path = tmp_path / "run.npz"
    _, stream, meta = begin(path, capacity=2)
    stop = threading.Event()

    def writer():
        t = 0
        while t < 300:
            append(stream, t, t + 3)
            t += 3
            stream.commit(t)
        finish(stream, static_members({**meta, "num_steps": t}, ["a", "b"]), t, str(path), False)
        stop.set()

    thread = threading.Thread(target=writer)
    with LiveRollout(path, expect=True) as live:
        thread.start()
        reads = 0
        while not stop.is_set() or live.status is not LiveStatus.FINISHED:
            if live.refresh() > 0:
                T = live.T
                np.testing.assert_array_equal(live.read("obs", (0, T)), truth(0, T)["obs"])
                np.testing.assert_array_equal(live.read("rew", (max(0, T - 2), T), (1, 3)), truth(0, T)["rew"][-2:, 1:3])
                reads += 1
        thread.join()
        assert live.T == 300 and reads > 5
        check(live)


def test_crcs_are_checked_when_asked(tmp_path):
    path = tmp_path / "run.npz"
    _, stream, _ = begin(path, capacity=16)
    append(stream, 0, 6)
    stream.commit(6)
    with LiveRollout(path, check_crc=True) as live:
        assert live.T == 6
        check(live)
        append(stream, 6, 10)
        stream.commit(10)
        assert live.refresh() == 10  # the new rows, checked from where the last check stopped
        live.verify()
        append(stream, 10, 12)
        stream.commit(12)
        p = live.files.placement("rew")
        with open(stream.path, "r+b") as f:  # the disk changed a byte of a committed row not checked yet
            f.seek(p.data_offset + 11 * N * 4 + 1)
            f.write(b"\x7f")
        with pytest.raises(RolloutFormatError, match="'rew'.*do not match the CRC-32"):
            live.refresh()
    stream.close()


def test_a_recording_is_live_while_its_recorder_holds_the_lease_and_stopped_after(tmp_path, monkeypatch):
    """The lease (rollrec.io.lease) answers: a quiet sidecar (no commit for longer than ACTIVE_S)
    of a recorder that holds it is live; once the recorder lets go (a failure's release, as the
    kernel does for a killed process) it stopped, named with its owner and `rollrec recover`."""
    monkeypatch.setattr(follow, "ACTIVE_S", 0.0)  # the sidecar's age alone would say stopped
    path = tmp_path / "run.npz"
    recording, stream, _ = begin(path)
    append(stream, 0, 3)
    stream.commit(3)
    with LiveRollout(path) as live:
        time.sleep(0.05)
        assert live.refresh() == 3 and live.status is LiveStatus.RECORDING
        assert live.files.holder is not None and live.files.holder.owner.pid == os.getpid()
        recording.release()  # a failed recorder: files left for recover, lease given up
        live.refresh()
        assert live.status is LiveStatus.STOPPED and not live.live
        assert f"pid {os.getpid()}" in live.note and "no longer holds its lease" in live.note
        assert f"rollrec recover {path}" in live.note
        check(live)  # the committed steps stay readable


KILLED_RECORDER = """
import sys, time, numpy as np
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec.format.meta import make_meta
from rollrec.io.partial import PartialRecording
path, N = sys.argv[1], int(sys.argv[2])
recording = PartialRecording(path)
stream = recording.begin([MemberSpec("rew", "<f4", (N,), 8)], direct=False,
                         info=PartialRecording.recovery_info(make_meta(num_steps=0, num_envs=N, dt=0.1), [], None, False))
stream.append("rew", np.arange(2 * N, dtype=np.float32).reshape(2, N))
stream.commit(2)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="SIGKILL of a child process")
def test_a_killed_recorder_is_stopped_while_a_quiet_live_one_is_not(tmp_path, monkeypatch):
    """A recorder in another process that commits nothing for a while is still live (it holds
    the lease); SIGKILL drops the lease in the kernel, and the follower says it stopped."""
    import signal
    import subprocess
    import sys

    monkeypatch.setattr(follow, "ACTIVE_S", 0.0)
    path = tmp_path / "run.npz"
    child = subprocess.Popen([sys.executable, "-c", KILLED_RECORDER, str(path), str(N)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with LiveRollout(path) as live:
            time.sleep(0.05)
            assert live.refresh() == 2 and live.status is LiveStatus.RECORDING
            assert live.files.holder.owner.pid == child.pid
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            live.refresh()
            assert live.status is LiveStatus.STOPPED and f"pid {child.pid}" in live.note
            assert f"rollrec recover {path}" in live.note
            np.testing.assert_array_equal(live.read("rew", (0, 2)), np.arange(2 * N, dtype=np.float32).reshape(2, N))
    finally:
        child.kill()
        child.wait()


def test_a_sidecar_naming_no_owner_falls_back_to_the_processes_writing_it(tmp_path, monkeypatch):
    """A sidecar without an owner (an older rollrec's, or a stream written outside
    PartialRecording): alive while its sidecar changes or a process holds the data file open."""
    monkeypatch.setattr(follow, "ACTIVE_S", 0.2)
    monkeypatch.setattr(follow, "PROCESS_CHECK_S", 0.0)
    path = tmp_path / "run.npz"
    data_path, sidecar_path = PartialRecording(path).data_path, PartialRecording(path).sidecar_path
    meta = make_meta(num_steps=0, num_envs=N, dt=0.1, env_name="live-test")
    specs = [MemberSpec(k, a.dtype.str, a.shape[1:], 4) for k, a in truth(0, 1).items()]
    stream = NpzStreamWriter(data_path, specs, layout_path=sidecar_path, direct=False,
                             recovery_info=PartialRecording.recovery_info(meta, ["a", "b"], None, False))
    append(stream, 0, 3)
    stream.commit(3)
    with LiveRollout(path) as live:
        time.sleep(0.3)
        assert writer_pids(stream.path) == [os.getpid()]  # this process writes it
        assert live.refresh() == 3 and live.status is LiveStatus.RECORDING and live.files.holder is None
        stream.close()  # the writer's descriptors close, as a killed process's do
        assert writer_pids(stream.path) == []
        live.refresh()
        assert live.status is LiveStatus.STOPPED and not live.live
        assert f"rollrec recover {path}" in live.note
        check(live)  # the committed steps stay readable


def test_what_a_path_names(tmp_path):
    path = tmp_path / "run.npz"
    assert not in_progress(path)
    with pytest.raises(FileNotFoundError, match="no recording of it in progress"):
        LiveRollout(path)
    _, stream, meta = begin(path)
    append(stream, 0, 2)
    stream.commit(2)
    for name in ("run.npz", "run.npz.partial", "run.npz.partial.json"):
        assert in_progress(tmp_path / name)
        with open_live(tmp_path / name) as live:
            assert live.path == path and live.T == 2
    finish(stream, static_members({**meta, "num_steps": 2}, ["a", "b"]), 2, str(path), False)
    assert not in_progress(path)
    with open_live(path) as live:  # a finished file is just that
        assert live.status is LiveStatus.FINISHED and live.T == 2


def test_an_aborted_recording_is_gone_and_an_older_finished_file_is_not_taken_for_it(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(b"an older run")  # a finished file from before this recording began
    past = time.time() - 60
    os.utime(path, (past, past))
    time.sleep(0.2)
    _, stream, _ = begin(path)
    append(stream, 0, 2)
    stream.commit(2)
    with LiveRollout(path) as live:
        assert live.T == 2
        stream.abort()
        live.refresh()
        assert live.status is LiveStatus.GONE and "removed" in live.note
