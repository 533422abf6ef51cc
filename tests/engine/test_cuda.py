"""CUDA path: record() never synchronises, the host runs ahead of the device, and flushed data
matches. Skipped without CUDA (``pytest -m cuda`` selects them; `scripts/gpu_check.py` runs more)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("flush_interval_s", [None, 1e-9], ids=["full-segments", "partial-flush-every-step"])
def test_record_never_syncs_and_data_matches(tmp_path, flush_interval_s):
    # With a tiny flush interval every record() hands a one-step partial segment to a D2H copy:
    # the time check and the partial flushes must not sync either.
    N, T = 1024, 300
    gen = torch.Generator(device="cuda").manual_seed(0)
    obs_all = torch.randn(T, N, 64, device="cuda", generator=gen)
    rew_all = torch.randn(T, N, device="cuda", generator=gen)
    done_all = torch.rand(T, N, device="cuda", generator=gen) < 0.05
    path = tmp_path / "gpu.npz"
    rec = Recorder(path, N, segment_steps=16, flush_interval_s=flush_interval_s)
    # The first call allocates the ring (allowed to sync); every later call must not.
    rec.record(obs=obs_all[0], act=obs_all[0, :, :8], rew=rew_all[0], done=done_all[0],
               reward_terms={"a": rew_all[0], "b": -rew_all[0]})
    torch.cuda.set_sync_debug_mode("error")
    try:
        for t in range(1, T):
            obs = obs_all[t].clone()
            rec.record(obs=obs, act=obs[:, :8], rew=rew_all[t], done=done_all[t],
                       reward_terms={"a": rew_all[t], "b": -rew_all[t]})
            obs.mul_(0)  # in-place change after record, on the same stream
    finally:
        torch.cuda.set_sync_debug_mode(0)
    rec.close()
    r = rollrec.load(path)
    np.testing.assert_array_equal(np.asarray(r["obs"]), obs_all.cpu().numpy())
    np.testing.assert_array_equal(np.asarray(r["rew_terms"])[..., 1], -rew_all.cpu().numpy())
    np.testing.assert_array_equal(np.asarray(r["done"]), done_all.cpu().numpy())


@pytest.mark.parametrize("N", [4096, 1000])
def test_d2h_copies_land_where_direct_io_writes_from(tmp_path, N):
    # Pinned staging starts on a 4 KiB boundary and each D2H copy lands at the place within a block
    # its rows have in the file, so the writer sends them to the disk with no other host copy: only
    # the blocks a flush starts or ends inside of (N=1000: no row is whole blocks) are copied.
    T, seg = 40, 8
    path = tmp_path / "staged.npz"
    rec = Recorder(path, N, segment_steps=seg, max_steps=T, flush_interval_s=None)
    obs = torch.arange(T * N * 16, device="cuda", dtype=torch.float32).reshape(T, N, 16)
    for t in range(T):  # every field given: nothing is a constant the writer fills on the host
        rec.record(obs=obs[t], act=obs[t, :, :2], rew=obs[t, :, 0], done=obs[t, :, 0] > 0, truncated=obs[t, :, 1] < 0,
                   base_pos=obs[t, :, :3], base_quat=obs[t, :, 4:8], reward_terms={"a": obs[t, :, 2], "b": obs[t, :, 3]})
    if not rec._stream.direct:
        rec.close()
        pytest.skip(f"{tmp_path}: this file system refuses O_DIRECT")
    # Every staging buffer, whichever the writer holds now (a free-list peek raced the writer).
    staging = rec._pipeline.staging
    assert len(staging) == rec.staging_buffers
    assert all(view.is_pinned() and view.data_ptr() % 4096 == 0 for buf in staging for view in buf.views.values())
    out = rec._stream._out
    rec.close()
    assert out.copied_bytes <= (T // seg) * 8 * 2 * 4096  # 8 members, at most 2 blocks each a flush
    assert out.zero_copy_bytes >= 0.9 * T * N * (16 + 2 + 1 + 3 + 4 + 2) * 4
    np.testing.assert_array_equal(np.asarray(rollrec.load(path)["obs"]), obs.cpu().numpy())


def test_host_runs_ahead_of_the_device(tmp_path):
    # Sync debug mode sees neither Event.synchronize, torch.cuda.synchronize, waits on Python
    # queues, nor cudaHostAlloc: a recorder that waited for the device any of those ways would
    # pass the test above. Here the device is kept busy for ~0.5 s first; a loop that fits the
    # ring and the staging buffers must return long before the device is done with it.
    N, seg = 4096, 8
    rec = Recorder(tmp_path / "ahead.npz", N, segment_steps=seg, ring_segments=4, staging_buffers=4,
                   flush_interval_s=None)
    obs = torch.randn(N, 64, device="cuda")
    step = dict(obs=obs, act=obs[:, :8], rew=obs[:, 0], done=obs[:, 1] > 2)
    rec.record(**step)  # allocates the ring and the staging
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(1_000_000)
    end.record()
    end.synchronize()
    cycles_per_ms = 1_000_000 / max(start.elapsed_time(end), 1e-3)
    torch.cuda._sleep(int(500 * cycles_per_ms))  # ~0.5 s of device time, queued ahead of the loop
    t0 = time.perf_counter()
    for _ in range(4 * seg - 1):  # the ring's other slots: no segment is reused, no staging buffer waited for
        rec.record(**step)
    looped = time.perf_counter() - t0
    behind = torch.cuda.Event()
    behind.record()
    assert not behind.query(), "the device finished the loop's work already: record() waited for it"
    assert looped < 0.25, f"the loop took {looped:.3f} s while the device was busy for 0.5 s"
    rec.close()
    with rollrec.load(tmp_path / "ahead.npz") as r:
        np.testing.assert_array_equal(np.asarray(r["obs"])[-1], obs.cpu().numpy())
