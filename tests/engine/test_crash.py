"""A recording killed with SIGKILL keeps every flushed step, readable after `recover`.

The children record values that encode their step and env, so the recovered file is compared
with exactly what was recorded. `tests/io/test_crash_consistency.py` kills the file writer at
every step; here the whole `Recorder` (writer thread, I/O threads, flush interval, close) is
killed, with rows written by direct I/O where the test folder takes it and by buffered writes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import rollrec

CHILD = textwrap.dedent(
    """
    import json, sys, time, torch
    from rollrec.engine import Recorder

    def committed_rows(sidecar):  # what `recover` will trust: the sidecar on disk (replaced atomically)
        try:
            with open(sidecar) as f:
                return json.load(f)["committed_rows"]
        except FileNotFoundError:
            return 0

    rec = Recorder(sys.argv[1], 3, segment_steps=4)
    for t in range(10_000):
        rec.record(obs=torch.full((3, 2), float(t)), act=torch.zeros(3, 1), rew=torch.full((3,), float(t)),
                   done=torch.zeros(3, dtype=torch.bool))
        if t == 13:  # 3 segments (12 steps) handed to the writer, 2 steps in the ring
            deadline = time.monotonic() + 60
            while committed_rows(sys.argv[1] + ".partial.json") < 12:  # the writer commits them
                if time.monotonic() > deadline:
                    sys.exit("the writer did not commit 12 steps in 60 s")
                time.sleep(0.01)
            print("ready", flush=True)
            time.sleep(60)
    """
)


def test_sigkill_leaves_flushed_steps_recoverable(tmp_path, kill_when_ready):
    path = tmp_path / "killed.npz"
    kill_when_ready(CHILD, str(path))
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


# ---- the recorder killed while closing, and at random times --------------------------------------
RECORDING = textwrap.dedent(
    """
    import os, sys, torch
    from rollrec.engine import Recorder
    path, steps, max_steps, compress = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
    direct_io = {"auto": None, "buffered": False}[sys.argv[5]]
    if len(sys.argv) > 6:  # an unknown length's room limited to that many bytes (0: none, so the file grows)
        import rollrec._npz.stream
        rollrec._npz.stream._RESERVE_LIMIT = int(sys.argv[6])
    if os.environ.get("ROLLREC_TEST_HOLES") == "copy":  # holes copied over, as where COLLAPSE_RANGE is refused
        import rollrec._npz.stream
        rollrec._npz.stream.collapse_range = lambda fd, offset, length: False
    N, L = 6, 13  # walker-like: link poses, the largest members, come after obs
    max_steps = None if max_steps == "none" else int(max_steps)
    rec = Recorder(path, N, segment_steps=8, max_steps=max_steps, compress=compress, link_names=[f"l{i}" for i in range(L)],
                   direct_io=direct_io)
    for t in range(steps):
        v = torch.full((N,), float(t)) * 1000 + torch.arange(N)
        rec.record(obs=v[:, None].repeat(1, 20), act=v[:, None].repeat(1, 3), rew=v, done=(v % 7 == 0),
                   link_pos=v[:, None, None].repeat(1, L, 3), link_quat=v[:, None, None].repeat(1, L, 4),
                   reward_terms={"a": v, "b": -v})
    print("recorded", flush=True)
    rec.close()
    print("closed", flush=True)
    """
)


def check_recovered(path, *, at_least: int, at_most: int) -> int:
    """Recover ``path`` if a sidecar is left; the file must hold steps 0..T-1 exactly.

    A kill before the recording wrote its first layout (possible with ``at_least=0`` on a loaded
    machine) leaves nothing to keep: recover says so and removes both partial files."""
    if os.path.exists(str(path) + ".partial.json"):
        if at_least == 0 and os.path.getsize(str(path) + ".partial.json") == 0:
            with pytest.raises(FileNotFoundError, match="killed before it wrote a step"):
                rollrec.recover(path)
            assert os.listdir(path.parent) == []
            return 0
        rollrec.recover(path)
    assert sorted(os.listdir(path.parent)) == [path.name]
    with rollrec.load(path) as r:
        T = r.T
        assert at_least <= T <= at_most, (T, at_least, at_most)
        v = np.arange(T, dtype=np.float32)[:, None] * 1000 + np.arange(6, dtype=np.float32)
        np.testing.assert_array_equal(r["rew"], v)
        np.testing.assert_array_equal(r["obs"], np.repeat(v[..., None], 20, -1))
        np.testing.assert_array_equal(r["link_pos"], np.broadcast_to(v[..., None, None], (T, 6, 13, 3)))
        np.testing.assert_array_equal(r["link_quat"], np.broadcast_to(v[..., None, None], (T, 6, 13, 4)))
        np.testing.assert_array_equal(r["rew_terms"], np.stack([v, -v], -1))
        np.testing.assert_array_equal(r["done"], v % 7 == 0)
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["link_quat"][:, :, 0, 0], v)
    return T


IO = pytest.mark.parametrize("io", ["auto", "buffered"])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@IO
@pytest.mark.parametrize(
    ("fault", "max_steps", "compress", "holes"),
    [
        ("finalize.punched:1", "100", "0", "auto"),  # 80 of 100 steps: unused capacity, a later member the largest
        ("finalize.header:9", "100", "0", "auto"),
        ("finalize.tail:1", "100", "0", "auto"),
        ("compact.collapsed:2", "100", "0", "collapse"),  # the holes between members removed in place
        ("compact.copied:2", "20000", "0", "copy"),  # or, where that is refused, worth closing: members slide down
        ("compact.switched:1", "20000", "0", "copy"),
        ("compress.member:3", "100", "1", "auto"),
        ("finish.renamed:1", "100", "1", "auto"),
        ("finalize.truncated:1", "none", "0", "auto"),  # unknown length: room for as many steps as the disk holds
        ("compact.planned:1", "none", "0", "collapse"),  # ... so the holes between members go at the end
        ("compact.collapsed:3", "none", "0", "collapse"),
        ("compact.switched:1", "none", "0", "collapse"),
        ("compact.copied:3", "none", "0", "copy"),  # ... or the members after the largest slide down
    ],
)
def test_recorder_killed_while_closing_keeps_every_step(tmp_path, fault, max_steps, compress, holes, io, collapses):
    path = tmp_path / "run.npz"
    steps = 300 if max_steps == "none" else 80
    if holes == "collapse" and not collapses:
        pytest.skip(f"{tmp_path}: this file system cannot collapse ranges")
    env = dict(os.environ, ROLLREC_FAULT=fault, ROLLREC_TEST_HOLES=holes)
    out = subprocess.run([sys.executable, "-c", RECORDING, str(path), str(steps), max_steps, compress, io], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert "recorded" in out.stdout  # every step was recorded and flushed: close() was running
    check_recovered(path, at_least=steps, at_most=steps)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@IO
def test_recorder_killed_while_growing_keeps_the_committed_steps(tmp_path, io):
    path = tmp_path / "run.npz"
    env = dict(os.environ, ROLLREC_FAULT="grow.synced:2")  # 128 -> 256 rows done, 256 -> 512 copied, not switched
    # No room reserved past the first 128 rows (as where the file system cannot leave holes): the file grows.
    out = subprocess.run([sys.executable, "-c", RECORDING, str(path), "300", "none", "0", io, "0"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    check_recovered(path, at_least=128, at_most=256)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@IO
def test_recorder_killed_at_random_times(tmp_path, io):
    rng = random.Random(0)
    for i in range(4):
        path = tmp_path / str(i) / "run.npz"
        path.parent.mkdir()
        child = subprocess.Popen([sys.executable, "-c", RECORDING, str(path), "400", "none", "0", io],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not path.with_name("run.npz.partial").exists() and child.poll() is None:  # torch is imported
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.6))  # recording, growing (128 -> 256 -> 512 rows) or closing
        child.kill()
        child.communicate(timeout=60)
        check_recovered(path, at_least=0, at_most=400)


# ---- bounded loss ---------------------------------------------------------------------------------
INTERVAL = textwrap.dedent(
    """
    import sys, time, torch
    from rollrec.engine import Recorder
    N = 512
    rec = Recorder(sys.argv[1], N, flush_interval_s=0.2)  # segments of 256 steps
    for t in range(252):
        if t == 251:
            time.sleep(0.3)  # the env takes a while: the next record() finds the interval over
        rec.record(obs=torch.full((N, 16), float(t)), act=torch.zeros(N, 2), rew=torch.full((N,), float(t)),
                   done=torch.zeros(N, dtype=torch.bool))
    deadline = time.monotonic() + 60
    while rec._stream.committed_rows < 252 and time.monotonic() < deadline:  # the committer catches up
        time.sleep(0.01)
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.slow
def test_a_partial_segment_is_flushed_every_interval(tmp_path, kill_when_ready):
    # Killed at step 251 of a 256-step segment: before, nothing was on disk and 0 steps came back.
    path = tmp_path / "interval.npz"
    kill_when_ready(INTERVAL, str(path))
    rollrec.recover(path)
    with rollrec.load(path) as r:
        assert r.T == 252
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], np.arange(252))


def test_recover_cli_says_when_the_file_was_already_complete(tmp_path, capsys):
    from rollrec.cli import main
    from rollrec.engine import Recorder

    path = tmp_path / "done.npz"
    with Recorder(path, 2) as rec:
        rec.record(obs=np.zeros((2, 1), np.float32), act=np.zeros((2, 1), np.float32),
                   rew=np.zeros(2, np.float32), done=np.zeros(2, bool))
    (tmp_path / "done.npz.partial.json").write_text("{}")  # killed after the rename, before the tidy-up
    assert main(["recover", str(path)]) == 0
    assert "was already complete (1 steps x 2 envs); removed the leftover sidecar" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["done.npz"]
