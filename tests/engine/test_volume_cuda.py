"""CUDA: record() with volume options never synchronises, and the file matches the reference.

Skipped without CUDA. ``torch.cuda.set_sync_debug_mode`` is process-wide. The first test holds
the writer back while the checked loop runs (the rings and staging buffers hold the whole
recording), so it sees the main thread alone; the second leaves the mode on for the whole
recording, first ``record()`` to ``close()``, writer thread included: the writer waits for the
device only on events, which the mode does not flag (issue 20, item 8).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder, gather

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

N, T, SEG = 256, 48, 4


def on_cuda(step):
    return {k: ({kk: vv.cuda() for kk, vv in v.items()} if isinstance(v, dict) else v.cuda()) for k, v in step.items()}


@pytest.mark.parametrize("options", [
    {"envs": [3, 17, 200]},
    {"envs": range(0, N, 2), "every": 3},
    {"every": 4, "dtypes": {"obs": torch.float16}},
    {"capture": "terminated", "window": 5},
    {"capture": -1.0, "window": 3, "every": 2, "all_env_fields": ("rew", "done")},
    {"capture": lambda ends: ends.length > 3, "window": 4},
], ids=["detail", "detail-every", "every-f16", "trigger", "threshold-every", "callable"])
@pytest.mark.parametrize("flush_interval_s", [None, 1e-9], ids=["full-segments", "partial-flush-every-step"])
def test_record_never_syncs_with_volume_options(tmp_path, volume_reference, monkeypatch, options, flush_interval_s):
    expected_file, make_steps = volume_reference
    steps = make_steps(T, N, seed=41, burst=(20,))
    gpu = [on_cuda(s) for s in steps]
    gate = threading.Event()
    real = gather.EpisodeGather.__call__
    monkeypatch.setattr(gather.EpisodeGather, "__call__", lambda self, *a: (gate.wait(), real(self, *a))[1])
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=SEG, ring_segments=T // SEG + 2, staging_buffers=T + 2,
                   flush_interval_s=flush_interval_s, **options)
    rec.record(**gpu[0])  # the first call allocates the rings (allowed to sync)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for s in gpu[1:]:
            rec.record(**s)
    finally:
        torch.cuda.set_sync_debug_mode(0)
        gate.set()
    rec.close()
    ref = {k: v for k, v in options.items() if k != "capture" or not callable(v)}
    if callable(options.get("capture")):
        ref.update(capture=options["capture"], capture_ref=lambda ep: ep["length"] > 3)
    if "envs" in ref:
        ref["envs"] = list(ref["envs"])
    expected = expected_file(steps, N, **ref)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        for name in (k for k in expected if not k.startswith("_")):
            np.testing.assert_array_equal(npz[name], expected[name], err_msg=name)
    with rollrec.load(tmp_path / "r.npz") as r:
        assert len(r.episodes()) == len(expected["episodes"])


@pytest.mark.parametrize("options", [
    {"envs": [3, 17, 200], "every": 3},
    {"capture": "terminated", "window": 5, "every": 2, "dtypes": {"obs": torch.float16}},
    {"capture": -1.0, "window": 3},
], ids=["detail-every", "trigger-every-f16", "threshold"])
@pytest.mark.parametrize("flush_interval_s", [None, 1e-9], ids=["full-segments", "partial-flush-every-step"])
def test_sync_debug_mode_for_the_whole_recording(tmp_path, volume_reference, options, flush_interval_s):
    expected_file, make_steps = volume_reference
    steps = make_steps(T, N, seed=43, burst=(20,))
    gpu = [on_cuda(s) for s in steps]
    torch.cuda.set_sync_debug_mode("error")
    try:
        with Recorder(tmp_path / "r.npz", N, segment_steps=SEG, flush_interval_s=flush_interval_s, **options) as rec:
            for s in gpu:
                rec.record(**s)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    ref = dict(options)
    if "envs" in ref:
        ref["envs"] = list(ref["envs"])
    expected = expected_file(steps, N, **ref)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        for name in (k for k in expected if not k.startswith("_")):
            np.testing.assert_array_equal(npz[name], expected[name], err_msg=name)
