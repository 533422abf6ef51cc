"""Order torch's reads of Warp memory after Warp's writes, on the device (no host wait).

Simulators built on Warp (Newton; Isaac Lab 3.0's ``ProxyArray`` data) launch their kernels on
Warp's current stream for the device. ``wp.to_torch`` gives a zero-copy torch view of a Warp
array, and copying it (``.clone()``) runs on torch's current stream, which is a different
stream unless the user made them one (``wp.ScopedStream(wp.stream_from_torch(...))``); torch's
streams do not wait for others on their own. So before a pose is copied out of Warp memory,
`torch_waits_for_warp` makes torch's current stream wait for the work queued on Warp's
(``Stream.wait_stream``: an event recorded on Warp's stream and waited for on the device). On
the CPU there is nothing to order: a Warp CPU kernel has run when its launch returns.
"""

from __future__ import annotations

from typing import Any

import torch

# Warp wrappers of torch streams, by handle: wrapping registers the stream with Warp each time.
_WRAPPED: dict[tuple[str, int], Any] = {}


def torch_waits_for_warp(array: Any) -> None:
    """Make torch's current stream on ``array``'s device (a Warp array's) wait for Warp's current stream there."""
    device = getattr(array, "device", None)
    if not getattr(device, "is_cuda", False):
        return
    import warp as wp

    warp_stream = wp.get_stream(device)
    torch_stream = torch.cuda.current_stream(wp.device_to_torch(device))
    if torch_stream.cuda_stream == warp_stream.cuda_stream:
        return  # one stream: already in order
    key = (str(device), torch_stream.cuda_stream)
    wrapped = _WRAPPED.get(key)
    if wrapped is None:
        wrapped = _WRAPPED[key] = wp.stream_from_torch(torch_stream)
    wrapped.wait_stream(warp_stream)


__all__ = ["torch_waits_for_warp"]
