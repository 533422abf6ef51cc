"""The CUDA branch's ordering, run on the CPU with a STAND-IN for ``torch.cuda`` (not a GPU).

`tests/cuda_standin.py` replaces ``torch.cuda``'s streams, events and devices while a test runs and
logs every operation; the ``cuda_branch`` fixture (conftest) makes every flush pipeline and
episode gather take its CUDA branch for ``cuda:1`` while the main thread's current device is 0,
as for a user who records on a second GPU without ``set_device``. The tests assert the rules
the CUDA branch must keep and that its files are byte-identical to the CPU path's:

- R1: the pipeline's copy waits for an event recorded on the stream ``record()`` used (the
  recording device's current stream), whatever stream is current when it flushes (``close()``);
- R2: before ``record()`` writes a segment again, its stream waits for the last copy out of it;
- R3: a staging buffer is taken again only after the writer waited for its copy and for the
  disk writes from it;
- R4: the host waits on blocking events only (no spinning core), on the writer thread, and in
  ``close()``;
- R5: no thread makes another device current than the recording one (no context on GPU 0).

This shows the logic; it does not show that a GPU honours it, nor how fast anything is: that
is `scripts/gpu_check.py` on a GPU (see the README's CUDA section).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder, flush, gather
from rollrec.engine.schema import Schema, as_tensor
from rollrec._npz.stream import NpzStreamWriter

N, T, SEG = 6, 23, 4
REC = "default:1"  # the stream record() runs on: cuda:1's current stream on the main thread

OPTIONS = {
    "plain": {},
    "envs": {"envs": [1, 4]},
    "envs-every": {"envs": range(0, N, 2), "every": 3},
    "every-f16": {"every": 2, "dtypes": {"obs": torch.float16}},
    "fields": {"fields": ("obs", "link_pos")},
    "trigger": {"capture": "terminated", "window": 3},
    "threshold-every": {"capture": -0.5, "window": 2, "every": 2, "all_env_fields": ("rew", "done")},
    "callable": {"capture": lambda ends: ends.length > 2, "window": 2},
}


def record(path, steps, **options):
    options = {"segment_steps": SEG, "flush_interval_s": None, **options}
    with Recorder(path, N, **options) as rec:
        for s in steps:
            rec.record(**s)
    return rec


def assert_same_file(a, b, member_data_offsets):
    """The same members, at the same offsets, with the same bytes; ``meta`` the same but for its
    ``created`` time stamp (two recordings may straddle a second)."""
    assert a.stat().st_size == b.stat().st_size
    assert member_data_offsets(a) == member_data_offsets(b)
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        assert x.files == y.files
        for name in x.files:
            if name == "meta":
                mx, my = json.loads(str(x[name])), json.loads(str(y[name]))
                mx.pop("created"), my.pop("created")
                assert mx == my
            else:
                assert x[name].dtype == y[name].dtype and x[name].shape == y[name].shape, name
                assert x[name].tobytes() == y[name].tobytes(), name


#: The constructors as imported, before the ``cuda_branch`` fixture forces their device.
_REAL = {"pipeline": flush.FlushPipeline.__init__, "gather": gather.EpisodeGather.__init__}


def _record_on_cpu(path, steps, options):
    """The same recording through the CPU path (the fixture's device forcing bypassed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(flush.FlushPipeline, "__init__", _REAL["pipeline"])
        mp.setattr(gather.EpisodeGather, "__init__", _REAL["gather"])
        record(path, steps, **options)


@pytest.fixture
def marked(cuda_branch, monkeypatch):
    """Marks in the stand-in's log: each acquire and flush (with its segment), staging taken and
    given back (with the buffer), each job's writes, each drain, and close."""
    cuda = cuda_branch

    def around(cls, name, what, key=None):
        real = getattr(cls, name)

        def wrapped(self, *args, **kwargs):
            info = {} if key is None else key(*args)
            cuda.mark(f"{what}-begin", **info)
            try:
                return real(self, *args, **kwargs)
            finally:
                cuda.mark(f"{what}-end", **info)
        monkeypatch.setattr(cls, name, wrapped)

    around(flush.FlushPipeline, "acquire", "acquire", lambda segment: {"segment": segment})
    around(flush.FlushPipeline, "flush", "flush", lambda segment, *a: {"segment": segment})
    around(flush.FlushPipeline, "_write", "write")
    around(NpzStreamWriter, "drain", "drain")
    # A job's writes complete at the fence the writer took after them (issue 25: the next job's
    # writes are queued meanwhile); waiting for it is that job's drain.
    around(NpzStreamWriter, "wait_fence", "drain")
    around(Recorder, "close", "close")
    real_take, real_give = flush.FlushPipeline._take_staging, flush.FlushPipeline._give_staging

    def take(self):
        buf = real_take(self)
        cuda.mark("take", buffer=id(buf))
        return buf

    def give(self, buf):
        cuda.mark("give", buffer=id(buf))
        real_give(self, buf)

    monkeypatch.setattr(flush.FlushPipeline, "_take_staging", take)
    monkeypatch.setattr(flush.FlushPipeline, "_give_staging", give)
    return cuda


def check_rules(cuda, rec_stream=REC):
    log = cuda.log
    events = {op.event: op for op in log if op.kind == "record"}
    # R1: each flush's copy waits (on the pipeline's stream) for an event recorded on record()'s stream.
    flushes = [i for i, op in enumerate(log) if op.kind == "mark" and op.info["what"] == "flush-begin"]
    assert flushes, "nothing was flushed"
    copy_of_take = {}
    for i in flushes:
        end = next(j for j in range(i, len(log)) if log[j].kind == "mark" and log[j].info["what"] == "flush-end")
        ops = log[i:end]
        waits = [op for op in ops if op.kind == "wait" and op.stream != rec_stream]
        assert any(events[op.event].stream == rec_stream for op in waits), (
            f"flush at log entry {i}: the copy does not wait for {rec_stream}: {ops}")
        copies = [op for op in ops if op.kind == "record" and op.stream != rec_stream]
        assert copies, f"flush at log entry {i}: no event after its copy"
        took = next(j for j in range(i, end) if log[j].kind == "mark" and log[j].info["what"] == "take")
        copy_of_take[len(copy_of_take)] = (log[took].info["buffer"], copies[-1].event, took)
    # R2: an acquire of a segment flushed before waits, on record()'s stream, for that copy.
    seen: dict[int, str] = {}
    for i, op in enumerate(log):
        if op.kind == "mark" and op.info["what"] == "flush-begin":
            end = next(j for j in range(i, len(log)) if log[j].kind == "mark" and log[j].info["what"] == "flush-end")
            last_copy = [o for o in log[i:end] if o.kind == "record" and o.stream != rec_stream]
            seen[op.info["segment"]] = last_copy[-1].event
        if op.kind == "mark" and op.info["what"] == "acquire-begin" and op.info["segment"] in seen:
            end = next(j for j in range(i, len(log)) if log[j].kind == "mark" and log[j].info["what"] == "acquire-end")
            want = seen[op.info["segment"]]
            assert any(o.kind == "wait" and o.event == want and o.stream == rec_stream for o in log[i:end]), (
                f"acquire of segment {op.info['segment']} (log entry {i}) does not wait for copy {want}")
    # R3: a staging buffer is given back only after its copy was waited for and its writes drained.
    for buffer, copy_event, at in copy_of_take.values():
        give = next((j for j in range(at, len(log)) if log[j].kind == "mark" and log[j].info["what"] == "give"
                     and log[j].info["buffer"] == buffer), None)
        assert give is not None, f"staging buffer taken at log entry {at} never given back"
        sync = next((j for j in range(at, give) if log[j].kind == "sync" and log[j].event == copy_event), None)
        assert sync is not None, f"staging buffer given back (entry {give}) before its copy {copy_event} was waited for"
        assert any(log[j].kind == "mark" and log[j].info["what"] == "drain-end" for j in range(sync, give)), (
            f"staging buffer given back (entry {give}) before the writes from it drained")
    # R4: host waits are on blocking events, on the writer thread or in close().
    closing = next(i for i, op in enumerate(log) if op.kind == "mark" and op.info["what"] == "close-begin")
    for i, op in enumerate(log):
        if op.kind == "sync":
            assert op.info["blocking"], f"host wait on a spinning (non-blocking) event: {op}"
            assert op.thread == "rollrec-writer" or i > closing, f"host wait on {op.thread} while recording: {op}"
        assert op.kind != "stream-sync", f"a stream synchronize (flagged by sync debug mode): {op}"
    # R5: only the recording device was ever made current; every event is on its streams.
    assert cuda.contexts == {1}
    assert all(op.device == 1 for op in log if op.kind in ("record", "wait", "set_device"))


@pytest.mark.parametrize("name", list(OPTIONS))
def test_cuda_branch_keeps_the_ordering_rules_and_writes_the_cpu_paths_bytes(tmp_path, volume_reference, marked, name,
                                                                            member_data_offsets):
    _, make_steps = volume_reference
    steps = make_steps(T, N, seed=7, burst=(9,))
    record(tmp_path / "cuda.npz", steps, staging_buffers=2, **OPTIONS[name])
    check_rules(marked)
    assert not marked.registered, "pinned staging still registered after close()"
    _record_on_cpu(tmp_path / "cpu.npz", make_steps(T, N, seed=7, burst=(9,)), OPTIONS[name])
    assert_same_file(tmp_path / "cuda.npz", tmp_path / "cpu.npz", member_data_offsets)


def test_partial_flushes_keep_the_rules(tmp_path, volume_reference, marked, member_data_offsets):
    # A flush interval this short hands a partial segment over at every step: many flushes per
    # segment, landing at any offset in the staging buffers.
    _, make_steps = volume_reference
    steps = make_steps(T, N, seed=3)
    record(tmp_path / "cuda.npz", steps, flush_interval_s=1e-9, capture="terminated", window=2)
    check_rules(marked)
    _record_on_cpu(tmp_path / "cpu.npz", make_steps(T, N, seed=3), {"capture": "terminated", "window": 2})
    assert_same_file(tmp_path / "cuda.npz", tmp_path / "cpu.npz", member_data_offsets)


def test_flush_waits_for_the_recording_devices_stream_not_the_current_devices(tmp_path, volume_reference, cuda_branch):
    # Item 1: the main thread's current device is 0 and the recorder is on cuda:1. The event the
    # copy waits for must be recorded on cuda:1's current stream (where record() wrote the rows),
    # and nothing may touch device 0 (a context there costs every process hundreds of MB of GPU 0).
    _, make_steps = volume_reference
    record(tmp_path / "r.npz", make_steps(10, N, seed=1))
    assert torch.cuda.current_device() == 0
    waited = [op for op in cuda_branch.ops("wait") if op.stream != REC]
    assert waited and all(op.info["recorded_on"] == REC for op in waited), waited
    assert cuda_branch.contexts == {1}


def test_writer_thread_makes_no_other_device_current(tmp_path, volume_reference, cuda_branch):
    # Item 7: a new thread starts on device 0; leaving a stream context of cuda:1 there sets
    # device 0 again (torch's StreamContext), which creates a context on GPU 0.
    _, make_steps = volume_reference
    record(tmp_path / "r.npz", make_steps(T, N, seed=2, burst=(5,)), capture="terminated", window=2, every=2)
    writer = [op for op in cuda_branch.ops(thread="rollrec-writer") if op.kind == "set_device"]
    assert all(op.device == 1 for op in writer), writer
    assert cuda_branch.contexts == {1}


def test_close_outside_the_recording_stream_still_waits_for_it(tmp_path, volume_reference, cuda_branch):
    # Item 9: record() runs under torch.cuda.stream(s); close() (which flushes the tail) does not.
    _, make_steps = volume_reference
    steps = make_steps(10, N, seed=4)
    user = torch.cuda.Stream(device=1)
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=SEG, flush_interval_s=None)
    with torch.cuda.stream(user):
        for s in steps:
            rec.record(**s)
    cuda_branch.mark("close")
    before_close = len(cuda_branch.log)
    rec.close()
    waited = [op for op in cuda_branch.log[before_close:] if op.kind == "wait" and op.stream != user.name]
    assert any(op.info["recorded_on"] == user.name for op in waited), waited  # (and on close's current stream too)
    for op in cuda_branch.log[:before_close]:  # every copy, and every reuse of the ring, waits for the user's stream
        if op.kind == "wait":
            assert op.info["recorded_on"] == user.name or op.stream == user.name, op


def test_host_waits_for_the_device_on_blocking_events_only(tmp_path, volume_reference, cuda_branch):
    # Item 11: Event.synchronize() on a default event spins a core at 100% until the copy is done.
    _, make_steps = volume_reference
    record(tmp_path / "r.npz", make_steps(T, N, seed=5, burst=(3,)), capture="terminated", window=2)
    syncs = cuda_branch.ops("sync")
    assert syncs and all(op.info["blocking"] for op in syncs), syncs


def test_staging_is_one_registered_page_aligned_allocation_per_buffer(tmp_path, volume_reference, cuda_branch):
    # Item 10 (and the alignment test_cuda.py checked racily, item 6): each staging buffer is one
    # host allocation registered with CUDA, of the bytes it needs rounded up to pages, and the
    # recorder reports them; close() unregisters them. torch's caching host allocator would round
    # every request up to a power of two and keep the blocks after close().
    _, make_steps = volume_reference
    steps = make_steps(12, N, seed=6)
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=SEG, staging_buffers=3, flush_interval_s=None)
    rec.record(**steps[0])
    registered = dict(cuda_branch.registered)
    assert len(registered) == 3
    page = 4096
    assert all(ptr % page == 0 and size % page == 0 for ptr, size in registered.items())
    assert rec.staging_bytes == sum(registered.values())
    row_bytes = sum(t[0].numel() * t.element_size() for t in rec._ring.tensors.values())
    # Each field lands anywhere within a block: one block of room per field, then pages.
    fields = len(rec._ring.tensors)
    need = SEG * row_bytes
    assert need <= rec.staging_bytes / 3 <= need + (2 * fields + 1) * page
    buffers = rec._pipeline.staging
    assert len(buffers) == 3 and all(cuda_branch.is_pinned_ptr(v.data_ptr()) and v.data_ptr() % page == 0
                                     for buf in buffers for v in buf.views.values())
    assert not cuda_branch.ops("host-alloc")  # nothing from torch's caching host allocator
    for s in steps[1:]:
        rec.record(**s)
    rec.close()
    assert not cuda_branch.registered and rec.staging_bytes == 0
    assert [op.info["ptr"] for op in cuda_branch.ops("unregister")] == list(registered)


def test_staging_falls_back_to_the_caching_allocator_where_registration_is_refused(cuda_standin, monkeypatch):
    from rollrec.engine.cuda_host import PinnedHostBuffer

    monkeypatch.setattr(type(torch.cuda.cudart()), "cudaHostRegister", lambda self, ptr, size, flags: 801)
    with pytest.warns(RuntimeWarning, match=r"cudaHostRegister of 12288 bytes failed \(CUDA error 801\)"):
        buf = PinnedHostBuffer(10_000)
    assert buf.nbytes == 16384  # the caching allocator's power of two (of 12288 + one block), reported as such
    views = buf.carve([100, 5000])
    assert all(v.data_ptr() % 4096 == 0 and v.is_pinned() for v in views)
    assert [op.info["size"] for op in cuda_standin.ops("host-alloc")] == [12288 + 4096]
    buf.close()
    assert not cuda_standin.ops("unregister")


def test_volume_recording_under_sync_debug_mode(tmp_path, volume_reference, cuda_branch, member_data_offsets):
    # Item 8: sync debug mode ("error") is process-wide. The writer thread's gather used nonzero
    # and .cpu() on the episode buffers, which raise there; it must read staged host copies.
    _, make_steps = volume_reference
    steps = make_steps(T, N, seed=8, burst=(6,))
    options = {"capture": "terminated", "window": 3, "every": 2, "dtypes": {"obs": torch.float16}}
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=SEG, flush_interval_s=None, **options)
    rec.record(**steps[0])
    vol = rec._vol
    cuda_branch.device_memory(*vol.ring.tensors.values(), *vol.window.tensors.values(), vol.tracker.ends,
                              vol.tracker.truncs, vol.tracker.rets, vol.tracker.caps, vol.tracker.ret)
    cuda_branch.sync_debug = True
    for s in steps[1:]:
        rec.record(**s)
    rec.close()
    cuda_branch.sync_debug = False
    _record_on_cpu(tmp_path / "cpu.npz", steps, options)
    assert_same_file(tmp_path / "r.npz", tmp_path / "cpu.npz", member_data_offsets)


# ---- item 2: device="cuda" -------------------------------------------------------------------------
@pytest.mark.parametrize("current", [0, 1])
def test_device_cuda_means_the_current_device(cuda_standin, current):
    on = cuda_standin.reports_cuda
    # Item 2: torch.device("cuda") != torch.device("cuda:0"), yet a tensor made on "cuda" reports
    # cuda:<current device>. Recorder(device="cuda") must accept the tensors the user makes there.
    torch.cuda.set_device(current)
    first = {"obs": on(torch.zeros(3, 2), current), "act": on(torch.zeros(3, 1), current),
             "rew": on(torch.zeros(3), current), "done": on(torch.zeros(3, dtype=torch.bool), current)}
    schema = Schema(3, torch.device("cuda"), first)
    assert schema.device == torch.device("cuda", current)
    schema.gather(first)


# ---- item 3: numpy input on a CUDA recorder ----------------------------------------------------------
@pytest.mark.parametrize("value", [np.arange(4.0, dtype=np.float32), [1.0, 2.0, 3.0, 4.0]], ids=["numpy", "list"])
def test_host_input_reaches_the_device_without_a_host_wait(cuda_standin, value):
    # Item 3: a copy from pageable memory makes the host wait until it is done (every step).
    # Host values are staged through pinned memory and copied non_blocking on the recording
    # device's current stream, where record() then reads them.
    as_tensor("rew", value, torch.device("cuda", 1))
    copies = cuda_standin.ops("h2d")
    assert len(copies) == 1
    assert copies[0].info == {"non_blocking": True, "pinned": True} and copies[0].stream == REC


# ---- item 5: Ctrl-C while waiting for a staging buffer -------------------------------------------------
@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler while the test runs: a shell that starts pytest in the background
    (``cmd &``) makes it ignore SIGINT, and the test's Ctrl-C would never arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_main_when_blocked_in(function: str, module: str, timeout: float = 20.0) -> threading.Thread:
    """SIGINT to the main thread once it blocks in ``queue.get`` called (indirectly) by ``function``
    (with the `python_sigint` fixture, so that it raises KeyboardInterrupt)."""
    main = threading.main_thread().ident

    def blocked() -> bool:
        frame = sys._current_frames().get(main)
        names = []
        while frame is not None:
            names.append((frame.f_code.co_name, frame.f_code.co_filename))
            frame = frame.f_back
        return any(n == "get" and f.endswith("queue.py") for n, f in names) and any(
            n == function and f.endswith(module) for n, f in names)

    def run() -> None:
        deadline = time.monotonic() + timeout
        while not blocked():
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to the main thread")
@pytest.mark.parametrize("then", ["close", "continue"])
def test_ctrl_c_while_waiting_for_staging_keeps_every_row_in_place(tmp_path, volume_reference, cuda_branch,
                                                                  monkeypatch, then, python_sigint):
    # Item 5: with one staging buffer held by a writer that is behind, the flush at the end of
    # the second segment waits for it; Ctrl-C arrives there. Closing at once, or recording on
    # and closing later, must give the file of the steps recorded, episode index included.
    expected_file, make_steps = volume_reference
    steps = make_steps(4 * SEG, N, seed=9, burst=(2, 6))
    options = {"every": 2, "capture": "terminated", "window": 2}
    gate = threading.Event()
    real_call = gather.EpisodeGather.__call__
    monkeypatch.setattr(gather.EpisodeGather, "__call__", lambda self, *a: (gate.wait(30), real_call(self, *a))[1])
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=SEG, staging_buffers=1, flush_interval_s=None, **options)
    per_segment = SEG * 2  # kept rows x every
    for s in steps[: 2 * per_segment - 1]:
        rec.record(**s)
    interrupter = _interrupt_main_when_blocked_in("flush", "flush.py")
    with pytest.raises(KeyboardInterrupt):
        rec.record(**steps[2 * per_segment - 1])  # its flush waits for the staging buffer
    interrupter.join()
    gate.set()
    recorded = 2 * per_segment
    if then == "continue":
        for s in steps[recorded:]:
            rec.record(**s)
        recorded = len(steps)
    rec.close()
    expected = expected_file(steps[:recorded], N, **options)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        for name in (k for k in expected if not k.startswith("_")):
            np.testing.assert_array_equal(npz[name], expected[name], err_msg=name)
    with rollrec.load(tmp_path / "r.npz") as r:
        assert r.meta["recorded_steps"] == recorded


# ---- direct I/O from the staging buffers -------------------------------------------------------------
@pytest.mark.parametrize("n", [4096, 1000])
def test_staged_rows_land_where_direct_io_writes_from(direct_dir, cuda_branch, n):
    # Each copy lands at the place within a 4 KiB block its rows have in the file, so the writer
    # sends the staging memory to the disk without another copy: only the blocks a flush starts
    # or ends inside of are copied (n=1000: no row is whole blocks). The CPU twin of
    # test_cuda.py::test_d2h_copies_land_where_direct_io_writes_from.
    steps, seg = 40, 8
    path = direct_dir / "staged.npz"
    rec = Recorder(path, n, segment_steps=seg, max_steps=steps, flush_interval_s=None)
    obs = torch.arange(steps * n * 16, dtype=torch.float32).reshape(steps, n, 16)
    for t in range(steps):  # every field given: nothing is a constant the writer fills on the host
        rec.record(obs=obs[t], act=obs[t, :, :2], rew=obs[t, :, 0], done=obs[t, :, 0] > 0, truncated=obs[t, :, 1] < 0,
                   base_pos=obs[t, :, :3], base_quat=obs[t, :, 4:8], reward_terms={"a": obs[t, :, 2], "b": obs[t, :, 3]})
    assert rec._stream.direct and rec._pipeline.cuda
    out = rec._stream._out
    rec.close()
    assert out.copied_bytes <= (steps // seg) * 8 * 2 * 4096  # 8 members, at most 2 blocks each a flush
    assert out.zero_copy_bytes >= 0.9 * steps * n * (16 + 2 + 1 + 3 + 4 + 2) * 4
    np.testing.assert_array_equal(np.asarray(rollrec.load(path)["obs"]), obs.numpy())
