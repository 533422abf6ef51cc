"""Poses copied out of Warp memory wait for Warp's stream (issue 20, item 14).

Newton and Isaac Lab 3.0 write poses with Warp kernels on Warp's current stream; the adapters
copy them on torch's. `torch_waits_for_warp` orders the copy after Warp's work on the device.
Checked on the CPU with stand-ins (Warp's stream calls recorded; ``torch.cuda`` from
`tests/cuda_standin.py`, not a GPU) and on a GPU with a slow Warp kernel (skipped without CUDA).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from rollrec.adapters import warp_streams
from rollrec.adapters.warp_streams import torch_waits_for_warp

wp = pytest.importorskip("warp", reason="warp comes with newton (scripts/setup.sh --test)")


class _WarpStreams:
    """Stand-in for Warp's stream calls: its current stream per device, and the waits asked for."""

    def __init__(self, handle: int):
        self.warp_stream = SimpleNamespace(cuda_stream=handle, name="warp")
        self.waits: list[tuple[int, str]] = []

    def get_stream(self, device):
        return self.warp_stream

    def device_to_torch(self, device):
        return str(device)

    def stream_from_torch(self, stream):
        return SimpleNamespace(cuda_stream=stream.cuda_stream,
                               wait_stream=lambda other: self.waits.append((stream.cuda_stream, other.name)))


@pytest.fixture
def warp_standin(cuda_standin, monkeypatch):
    fake = _WarpStreams(handle=12345)
    for name in ("get_stream", "device_to_torch", "stream_from_torch"):
        monkeypatch.setattr(wp, name, getattr(fake, name))
    monkeypatch.setattr(warp_streams, "_WRAPPED", {})
    return fake


class _CudaDevice:
    is_cuda = True

    def __str__(self) -> str:
        return "cuda:1"


def cuda_array():
    """What the helper reads of a Warp array on ``cuda:1``: its device."""
    return SimpleNamespace(device=_CudaDevice())


def test_torchs_current_stream_waits_for_warps(warp_standin, cuda_standin):
    user = torch.cuda.Stream(device=1)
    with torch.cuda.stream(user):
        torch_waits_for_warp(cuda_array())
        torch_waits_for_warp(cuda_array())
    assert warp_standin.waits == [(user.cuda_stream, "warp")] * 2


def test_one_stream_or_the_cpu_needs_no_wait(warp_standin, cuda_standin):
    warp_standin.warp_stream.cuda_stream = torch.cuda.current_stream(1).cuda_stream  # Warp runs on torch's stream
    torch_waits_for_warp(cuda_array())
    torch_waits_for_warp(wp.zeros(3, dtype=float, device="cpu"))
    torch_waits_for_warp(None)
    assert warp_standin.waits == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_copy_after_a_slow_warp_kernel_sees_its_result():
    @wp.kernel
    def slow_fill(out: wp.array(dtype=float), value: float, spins: int):
        i = wp.tid()
        x = wp.float32(0.0)  # a dynamic variable: it changes in the loop
        for _ in range(spins):
            x = x * 0.5 + 1.0
        out[i] = value + x * 0.0

    out = wp.zeros(1 << 16, dtype=float, device="cuda:0")
    for value in (1.0, 2.0, 3.0):
        wp.launch(slow_fill, dim=out.shape[0], inputs=[out, value, 200_000], device="cuda:0")  # Warp's stream
        torch_waits_for_warp(out)
        copied = wp.to_torch(out).clone()  # torch's stream
        assert torch.all(copied == value), f"the copy ran before the Warp kernel finished ({copied.min()} != {value})"
