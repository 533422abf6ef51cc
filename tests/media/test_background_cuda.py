"""CUDA frames handed to the background video writer (issue 20, item 14).

The writer's thread has its own current stream (the default one), which does not wait for a
stream of the caller's. So `submit` queues the frame's copy to pinned host memory on the
caller's stream, with an event after it, and the thread waits for that event: checked on the
CPU with the stand-in for ``torch.cuda`` (`tests/cuda_standin.py`, not a GPU), and on a GPU
with frames a slow kernel on a side stream makes (skipped without CUDA).
"""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from rollrec.media.background import BackgroundVideoWriter


def frame_means(path) -> list[float]:
    with imageio.get_reader(str(path)) as reader:
        return [float(f.mean()) for f in reader.iter_data()]


def test_a_device_frame_is_copied_on_the_callers_stream_and_waited_for_by_the_thread(tmp_path, cuda_standin):
    user = torch.cuda.Stream(device=1)
    with BackgroundVideoWriter(tmp_path / "v.mp4", fps=10, max_queue=2) as writer:
        buf = torch.zeros(16, 16, 3, dtype=torch.uint8)
        for step in range(5):
            buf.fill_(40 * step)
            with torch.cuda.stream(user):
                writer.submit(step, cuda_standin.reports_cuda(buf, 1))
    recorded = {op.event: op for op in cuda_standin.ops("record")}
    assert {op.stream for op in recorded.values()} == {user.name}  # after the copy, on the caller's stream
    thread_ops = [op for op in cuda_standin.log if op.thread.startswith("rollrec-video")]
    assert thread_ops and all(op.kind == "sync" and op.info["blocking"] and op.event in recorded for op in thread_ops)
    assert len(cuda_standin.ops("host-alloc")) == 5  # one pinned host copy per frame: no device memory held
    means = frame_means(tmp_path / "v.mp4")
    np.testing.assert_allclose(means, [40 * s for s in range(5)], atol=3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_frames_made_on_a_side_stream_behind_a_slow_kernel(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="encoding needs imageio-ffmpeg")
    side = torch.cuda.Stream()
    buf = torch.zeros(32, 32, 3, dtype=torch.uint8, device="cuda")
    with BackgroundVideoWriter(tmp_path / "v.mp4", fps=10, max_queue=4) as writer, torch.cuda.stream(side):
        for step in range(8):
            torch.cuda._sleep(20_000_000)  # ~10 ms: the frame is written long after submit() returns
            buf.fill_(30 * step)
            writer.submit(step, buf)
    np.testing.assert_allclose(frame_means(tmp_path / "v.mp4"), [30 * s for s in range(8)], atol=3)
