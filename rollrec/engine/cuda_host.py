"""Host memory for the CUDA path, and copies between it and the device that never wait unseen.

- `PinnedHostBuffer`: page-locked host memory for the device-to-host staging and the writer's
  direct I/O. It is an anonymous ``mmap`` registered with ``cudaHostRegister`` (portable: pinned
  for every CUDA context), not torch's caching host allocator (``pin_memory=True``), which
  rounds each request up to a power of two and keeps freed blocks for the rest of the process
  (up to twice the memory asked for, never given back), and whose ``cudaHostAlloc`` memory is
  mapped by the driver: ``O_DIRECT`` needs the kernel to pin the pages of the buffer it writes
  from, which works for ordinary pages and may not for driver mappings (other accelerators'
  pinned host allocations fail there with ``EFAULT``). So a buffer holds exactly the bytes asked
  for, rounded up to the page size, starts on a page (so on a 4 KiB block), and is unpinned by
  `PinnedHostBuffer.close`. `carve` cuts it into `BLOCK`-aligned views.
- `host_to_device`: a host tensor to the device without making the host wait: copied into pinned
  memory (a host memcpy), then ``non_blocking`` on the device's current stream. A copy from
  pageable memory makes the host wait until the device has done it (the driver stages it).
  torch's caching host allocator keeps that pinned block until the copy has completed.
- `DeviceToHost`: device tensors into pinned memory on a given stream, then a wait on a
  *blocking* event: the waiting thread sleeps instead of spinning a core, and
  ``torch.cuda.set_sync_debug_mode`` (which flags ``.cpu()``, ``nonzero``, ``item()``, pageable
  copies and stream synchronisations) sees nothing. For the threads that may wait for the
  device: the writer thread, and ``close()``.
"""

from __future__ import annotations

import mmap
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from rollrec._npz.direct_io import BLOCK, address, aligned_array

#: ``cudaHostRegisterPortable``: the memory counts as pinned in every CUDA context, not only the current device's.
_PORTABLE = 1


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


def carved_size(sizes: Sequence[int]) -> int:
    """Bytes `PinnedHostBuffer.carve` needs for views of ``sizes`` bytes, each starting on a `BLOCK`."""
    return sum(_round_up(max(int(s), 1), BLOCK) for s in sizes)


class PinnedHostBuffer:
    """``nbytes`` of page-locked host memory (rounded up to the page size); see the module docstring.

    ``nbytes`` is what the buffer holds (the figure to report); ``tensor`` is the memory as a
    ``uint8`` CPU tensor (``is_pinned()``). Where ``cudaHostRegister`` is refused, the buffer
    falls back to one block of torch's caching host allocator (with a warning), and ``nbytes``
    is then that allocator's power of two. The owner calls `close` once no copy into or out of
    the buffer is in flight: it unpins the memory, which goes when its last view does.
    """

    def __init__(self, nbytes: int):
        size = _round_up(max(int(nbytes), 1), mmap.PAGESIZE)
        with torch.inference_mode(False):  # a buffer of the recorder's own, also when made under inference mode
            self._array: np.ndarray | None = aligned_array(size)  # anonymous mmap: page-aligned, zero-filled
            self._ptr: int | None = address(self._array)
            err = int(torch.cuda.cudart().cudaHostRegister(self._ptr, size, _PORTABLE))
            if err == 0:
                self.nbytes = size
                self.tensor = torch.from_numpy(self._array)
                return
            warnings.warn(f"rollrec: cudaHostRegister of {size} bytes failed (CUDA error {err}); staging through "
                          "torch's caching host allocator instead (rounded up to a power of two)", RuntimeWarning,
                          stacklevel=3)
            self._array = self._ptr = None
            raw = torch.empty(size + BLOCK, dtype=torch.uint8, pin_memory=True)
            skip = (-raw.data_ptr()) % BLOCK
            self.tensor = raw[skip : skip + size]
            self.nbytes = 1 << (size + BLOCK - 1).bit_length()

    def carve(self, sizes: Sequence[int]) -> list[torch.Tensor]:
        """Consecutive ``uint8`` views of ``sizes`` bytes, each starting on a `BLOCK` boundary."""
        views, at = [], 0
        for size in sizes:
            views.append(self.tensor[at : at + int(size)])
            at += _round_up(max(int(size), 1), BLOCK)
        if at > self.tensor.numel():
            raise ValueError(f"{at} bytes of views do not fit a pinned buffer of {self.tensor.numel()}")
        return views

    def close(self) -> None:
        """Unpin the memory (idempotent). No copy into or out of it may be in flight."""
        if self._ptr is not None:
            torch.cuda.cudart().cudaHostUnregister(self._ptr)
            self._ptr = None
        self._array = None
        self.tensor = torch.empty(0, dtype=torch.uint8)
        self.nbytes = 0


class GrowingPinnedBuffer:
    """A `PinnedHostBuffer` replaced by one twice as large when a request does not fit.

    `carve` returns views that stay valid until the next `carve` (the caller must be done with
    them and with any copy or write from them by then).
    """

    def __init__(self) -> None:
        self._buffer: PinnedHostBuffer | None = None

    def carve(self, sizes: Sequence[int]) -> list[torch.Tensor]:
        need = carved_size(sizes)
        if self._buffer is None or self._buffer.tensor.numel() < need:
            old = self._buffer.nbytes if self._buffer is not None else 0
            self.close()
            self._buffer = PinnedHostBuffer(max(need, 2 * old))
        return self._buffer.carve(sizes)

    @property
    def nbytes(self) -> int:
        return self._buffer.nbytes if self._buffer is not None else 0

    def close(self) -> None:
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None


def host_to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (a CPU tensor) on ``device``, copied without making the host wait (see the module docstring)."""
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


class DeviceToHost:
    """Copies between the host and ``device`` on ``stream`` for a thread that may wait (see the module docstring).

    `to_device` queues a host array's copy to the device; `fetch` queues device tensors' copies
    to pinned memory, then sleeps until everything queued on ``stream`` is done. The arrays
    `fetch` returns stay valid until the next `fetch` (they are reused): the caller is done with
    them, and with any write from them, by then. One thread at a time.
    """

    def __init__(self, device: torch.device, stream: torch.cuda.Stream):
        self.device = device
        self.stream = stream
        self._in = GrowingPinnedBuffer()
        self._out = GrowingPinnedBuffer()

    def to_device(self, array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        """``array`` on the device of ``like``, for work queued on ``stream`` (valid until the next `fetch` returns)."""
        src = torch.from_numpy(np.ascontiguousarray(array))
        view, = self._in.carve([src.numel() * src.element_size()])
        host = view.view(src.dtype).view(src.shape)
        host.copy_(src)
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            out = torch.empty(src.shape, dtype=src.dtype, device=like.device)
            out.copy_(host, non_blocking=True)
        return out

    def fetch(self, tensors: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """``{name: tensor}`` on the device as ``{name: array}`` in pinned host memory."""
        names = list(tensors)
        views = self._out.carve([tensors[n].numel() * tensors[n].element_size() for n in names])
        out = {}
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            for name, view in zip(names, views):
                t = tensors[name]
                out[name] = view.view(t.dtype).view(t.shape)
                out[name].copy_(t, non_blocking=True)
            done = torch.cuda.Event(blocking=True)
            done.record(self.stream)
        done.synchronize()
        return {name: host.numpy() for name, host in out.items()}

    @property
    def nbytes(self) -> int:
        """Pinned bytes held now."""
        return self._in.nbytes + self._out.nbytes

    def close(self) -> None:
        """Unpin the memory; nothing may be in flight (every `fetch` has returned)."""
        self._in.close()
        self._out.close()


__all__ = ["DeviceToHost", "GrowingPinnedBuffer", "PinnedHostBuffer", "carved_size", "host_to_device"]
