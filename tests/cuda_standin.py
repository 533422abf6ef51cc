"""A STAND-IN for the few ``torch.cuda`` pieces rollrec's CUDA branch calls. It is not a GPU.

Loaded by the ``cuda_standin`` fixture (`tests/conftest.py`). CI has no GPU, yet the
ordering logic of the CUDA branch (which stream an event is recorded on, which stream waits for
it, when the host waits, which device a thread makes current) is plain Python that can run on
the CPU. This stand-in replaces ``torch.cuda.Stream``, ``Event``, ``current_stream``,
``stream``, ``device``, ``set_device``, ``current_device`` and ``cudart`` while a test runs, so
that the CUDA branch of the flush pipeline and of the episode gather runs on CPU tensors, and
logs every stream and event operation (`StandInCuda.log`). The tests then assert the ordering
rules on that log and compare the files with the CPU path's, byte for byte.

What it cannot show: that a GPU honours the ordering, that copies run asynchronously, how long
anything takes, what the driver does with pinned memory and ``O_DIRECT``. Only a run on a GPU
shows that (``python scripts/gpu_check.py``, and ``pytest -m cuda``).

It models torch 2.13 (``torch/cuda/__init__.py``, ``torch/cuda/streams.py``) and c10/cuda:

- each thread has a current device (0 when it starts) and a current stream per device (that
  device's default stream until one is set);
- ``torch.cuda.stream(s)`` follows ``StreamContext``: entering it from another device makes
  ``s``'s device current (``torch.cuda.set_stream`` sets the device:
  ``THCPModule_setStream_wrap``); leaving it sets the previous stream and with it the previous
  device again, through ``c10::cuda::SetDevice``, which creates a context there;
- ``torch.cuda.device(d)`` exchanges the current device and restores the previous one with
  ``c10::cuda::MaybeSetDevice``, which creates no context;
- ``set_device(d)``, creating a stream on ``d`` and recording an event on ``d`` create a
  context on ``d`` (`StandInCuda.contexts`);
- an event takes the device of the stream it is first recorded on and may only be recorded on
  streams of that device (``CUDAEvent::record``); a stream may wait for an event of any device;
- the CPU does everything at once, so every event has completed: ``query()`` is True;
- ``cudart().cudaHostRegister/cudaHostUnregister`` record the range and succeed;
- ``torch.zeros``/``torch.empty`` with ``pin_memory=True`` (torch's caching host allocator)
  allocate on the CPU, mark the memory pinned and log ``host-alloc`` with the size asked for;
- ``Tensor.pin_memory()`` returns a copy marked pinned (also a ``host-alloc``), ``Tensor.is_pinned()`` reads the marks
  (and the registered ranges), ``Tensor.to(<cuda device>)`` returns the CPU tensor and logs the
  copy (non-blocking or not, from pinned memory or not, on which stream);
- ``sync_debug = True`` makes ``torch.nonzero``, ``Tensor.nonzero``, ``.cpu()``, ``.item()``,
  ``.tolist()`` and ``.numpy()`` raise for tensors in the memory a test declared device memory
  (`StandInCuda.device_memory`: e.g. the ring and the episode buffers), as
  ``torch.cuda.set_sync_debug_mode("error")`` does for device tensors.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Op:
    """One logged operation: ``kind`` is ``record``, ``wait``, ``sync``, ``query``, ``stream-sync``,
    ``set_device``, ``register``, ``unregister``, ``host-alloc``, ``h2d`` or a mark a test adds (``mark``)."""

    kind: str
    thread: str
    stream: str | None = None
    event: str | None = None
    device: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


class SyncDebugError(RuntimeError):
    """What ``torch.cuda.set_sync_debug_mode("error")`` would raise for a synchronising call."""


class StandInStream:
    """Stands in for ``torch.cuda.Stream``: a name and a device; every call is logged."""

    def __init__(self, cuda: StandInCuda, device: int, name: str):
        self._cuda = cuda
        self.device_index = device
        self.device = torch.device("cuda", device)
        self.name = name
        self.cuda_stream = id(self)  # the handle other libraries (Warp) see

    def wait_event(self, event: StandInEvent) -> None:
        event.wait(self)

    def wait_stream(self, stream: StandInStream) -> None:  # torch: self.wait_event(stream.record_event())
        self.wait_event(stream.record_event())

    def record_event(self, event: StandInEvent | None = None) -> StandInEvent:
        event = event if event is not None else self._cuda.Event()
        event.record(self)
        return event

    def synchronize(self) -> None:
        self._cuda._log("stream-sync", stream=self.name, device=self.device_index)

    def query(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<stand-in stream {self.name}>"


class StandInEvent:
    """Stands in for ``torch.cuda.Event``: records, waits and host waits are logged."""

    def __init__(self, cuda: StandInCuda, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False, external: bool = False):
        self._cuda = cuda
        self.name = f"e{next(cuda._ids)}"
        self.blocking = blocking
        self.device_index: int | None = None
        self.recorded_on: str | None = None

    def record(self, stream: StandInStream | None = None) -> None:
        cuda = self._cuda
        stream = stream if stream is not None else cuda.current_stream()
        if self.device_index is None:
            self.device_index = stream.device_index
        elif self.device_index != stream.device_index:  # CUDAEvent::record
            raise RuntimeError(f"Event device {self.device_index} does not match recording stream's device "
                               f"{stream.device_index}")
        cuda.contexts.add(stream.device_index)
        self.recorded_on = stream.name
        cuda._log("record", stream=stream.name, event=self.name, device=stream.device_index)

    def wait(self, stream: StandInStream | None = None) -> None:
        stream = stream if stream is not None else self._cuda.current_stream()
        self._cuda._log("wait", stream=stream.name, event=self.name, device=stream.device_index,
                        recorded_on=self.recorded_on)

    def synchronize(self) -> None:
        self._cuda._log("sync", event=self.name, device=self.device_index, blocking=self.blocking,
                        recorded_on=self.recorded_on)

    def query(self) -> bool:
        self._cuda._log("query", event=self.name, device=self.device_index)
        return True

    def __repr__(self) -> str:
        return f"<stand-in event {self.name} on {self.recorded_on}>"


class _CudaRuntime:
    """Stands in for ``torch.cuda.cudart()``: host registration only."""

    def __init__(self, cuda: StandInCuda):
        self._cuda = cuda

    def cudaHostRegister(self, ptr: int, size: int, flags: int) -> int:
        self._cuda.registered[ptr] = size
        self._cuda._log("register", ptr=ptr, size=size, flags=flags)
        return 0

    def cudaHostUnregister(self, ptr: int) -> int:
        size = self._cuda.registered.pop(ptr, None)
        self._cuda._log("unregister", ptr=ptr, size=size)
        return 0 if size is not None else 1  # cudaErrorInvalidValue for a range never registered


class StandInCuda:
    """The stand-in itself; `install` swaps it into ``torch.cuda`` (through pytest's monkeypatch).

    ``devices``: how many devices there are. After a test, ``log`` holds every operation in
    order, ``contexts`` the devices a context was created on, ``registered`` the host ranges
    still registered.
    """

    def __init__(self, devices: int = 2):
        self.devices = devices
        self.log: list[Op] = []
        self.contexts: set[int] = set()
        self.registered: dict[int, int] = {}
        self.pinned: dict[int, int] = {}  # (address, bytes) of the caching host allocator's blocks
        self.device_ranges: list[tuple[int, int]] = []  # (address, bytes) standing for device memory
        self.sync_debug = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._tls = threading.local()
        self._defaults = {d: StandInStream(self, d, f"default:{d}") for d in range(devices)}
        self._streams = itertools.count(1)

    # ---- per-thread state ---------------------------------------------------------------------
    def _thread(self) -> Any:
        tls = self._tls
        if not hasattr(tls, "device"):
            tls.device = 0
            tls.streams = {}
        return tls

    def _index(self, device: Any) -> int:
        if device is None:
            return self._thread().device
        if isinstance(device, int):
            return device
        device = torch.device(device)
        if device.type != "cuda":
            raise ValueError(f"stand-in: expected a cuda device, got {device}")
        return device.index if device.index is not None else self._thread().device

    def _log(self, kind: str, *, stream: str | None = None, event: str | None = None, device: int | None = None,
             **info: Any) -> None:
        with self._lock:
            self.log.append(Op(kind, threading.current_thread().name, stream, event, device, info))

    def mark(self, what: str, **info: Any) -> None:
        """A test's own entry in the log (e.g. which flush or acquire the following ops belong to)."""
        self._log("mark", what=what, **info)

    # ---- torch.cuda -----------------------------------------------------------------------------
    def current_device(self) -> int:
        return self._thread().device

    def set_device(self, device: Any) -> None:
        index = self._index(device)
        tls = self._thread()
        if index != tls.device:
            self._log("set_device", device=index, previous=tls.device)
        tls.device = index
        self.contexts.add(index)  # c10::cuda::SetDevice -> cudaSetDevice creates the primary context

    def current_stream(self, device: Any = None) -> StandInStream:
        index = self._index(device)
        return self._thread().streams.get(index, self._defaults[index])

    def default_stream(self, device: Any = None) -> StandInStream:
        return self._defaults[self._index(device)]

    def set_stream(self, stream: StandInStream) -> None:
        tls = self._thread()
        if tls.device != stream.device_index:  # THCPModule_setStream_wrap
            self.set_device(stream.device_index)
        tls.streams[stream.device_index] = stream

    def Stream(self, device: Any = None, priority: int = 0) -> StandInStream:
        index = self._index(device)
        self.contexts.add(index)
        return StandInStream(self, index, f"stream{next(self._streams)}:{index}")

    def Event(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False,
              external: bool = False) -> StandInEvent:
        return StandInEvent(self, enable_timing, blocking, interprocess, external)

    @contextlib.contextmanager
    def stream(self, stream: StandInStream | None):
        """torch's ``StreamContext`` (see the module docstring)."""
        if stream is None:
            yield
            return
        src_prev = self.current_stream(None)
        dst_prev = None
        if src_prev.device_index != stream.device_index:
            with self.device(stream.device_index):
                dst_prev = self.current_stream(stream.device_index)
        self.set_stream(stream)
        try:
            yield
        finally:
            if src_prev.device_index != stream.device_index:
                self.set_stream(dst_prev)
            self.set_stream(src_prev)

    @contextlib.contextmanager
    def device(self, device: Any):
        """torch's ``torch.cuda.device``: exchange now, "maybe" restore (no context) on the way out."""
        if device is None or (isinstance(device, int) and device < 0):
            yield
            return
        index = self._index(device)
        tls = self._thread()
        previous = tls.device
        if index != previous:
            self._log("set_device", device=index, previous=previous)
            self.contexts.add(index)
        tls.device = index
        try:
            yield
        finally:
            tls.device = previous  # MaybeSetDevice: the index only, no context

    def cudart(self) -> _CudaRuntime:
        return _CudaRuntime(self)

    # ---- memory ---------------------------------------------------------------------------------
    def is_pinned_ptr(self, ptr: int) -> bool:
        return any(start <= ptr < start + size for ranges in (self.pinned, self.registered)
                   for start, size in ranges.items())

    def device_memory(self, *tensors: torch.Tensor) -> None:
        """Declare the memory of ``tensors`` device memory (for ``sync_debug``)."""
        for t in tensors:
            self.device_ranges.append((t.data_ptr(), t.numel() * t.element_size()))

    def is_device_ptr(self, ptr: int) -> bool:
        return any(start <= ptr < start + size for start, size in self.device_ranges)

    @staticmethod
    def reports_cuda(t: torch.Tensor, index: int) -> torch.Tensor:
        """See the module function `reports_cuda`."""
        return reports_cuda(t, index)

    # ---- queries for the tests ------------------------------------------------------------------
    def ops(self, kind: str | None = None, thread: str | None = None) -> list[Op]:
        return [op for op in self.log if (kind is None or op.kind == kind) and (thread is None or op.thread == thread)]

    def install(self, monkeypatch: Any) -> StandInCuda:
        """Swap the stand-in into ``torch.cuda`` and ``torch.Tensor`` until the test ends."""
        cuda = torch.cuda
        for name in ("current_device", "set_device", "current_stream", "default_stream", "set_stream", "Stream",
                     "Event", "stream", "device", "cudart"):
            monkeypatch.setattr(cuda, name, getattr(self, name))
        _patch_tensors(self, monkeypatch)
        return self


def _patch_tensors(cuda: StandInCuda, monkeypatch: Any) -> None:
    real_to = torch.Tensor.to
    real_is_pinned = torch.Tensor.is_pinned

    def pin_memory(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.clone()
        cuda.pinned[out.data_ptr()] = out.numel() * out.element_size()
        cuda._log("host-alloc", size=out.numel() * out.element_size())
        return out

    def host_alloc(real: Any) -> Any:
        def make(*args: Any, pin_memory: bool = False, **kwargs: Any) -> torch.Tensor:
            out = real(*args, **kwargs)
            if pin_memory:
                cuda.pinned[out.data_ptr()] = out.numel() * out.element_size()
                cuda._log("host-alloc", size=out.numel() * out.element_size())
            return out
        return make

    monkeypatch.setattr(torch, "zeros", host_alloc(torch.zeros))
    monkeypatch.setattr(torch, "empty", host_alloc(torch.empty))

    def is_pinned(self: torch.Tensor, *args: Any, **kwargs: Any) -> bool:
        if cuda.is_pinned_ptr(self.data_ptr()):
            return True
        try:
            return real_is_pinned(self)
        except RuntimeError:  # a torch without CUDA
            return False

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        target = kwargs.get("device", args[0] if args and isinstance(args[0], (str, torch.device)) else None)
        if target is not None and torch.device(target).type == "cuda":
            index = cuda._index(target)
            non_blocking = kwargs.get("non_blocking", args[1] if len(args) > 1 and isinstance(args[1], bool) else False)
            cuda._log("h2d", stream=cuda.current_stream(index).name, device=index, non_blocking=bool(non_blocking),
                      pinned=cuda.is_pinned_ptr(self.data_ptr()))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    monkeypatch.setattr(torch.Tensor, "is_pinned", is_pinned)
    monkeypatch.setattr(torch.Tensor, "to", to)

    def flagged(name: str, real: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if cuda.sync_debug and cuda.is_device_ptr(self.data_ptr()):
                raise SyncDebugError(f"stand-in sync debug mode: {name} of device memory synchronises with the device")
            return real(self, *args, **kwargs)
        return call

    for name in ("nonzero", "cpu", "item", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, flagged(f"Tensor.{name}()", getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch, "nonzero", flagged("torch.nonzero", torch.nonzero))


class _ReportsCuda(torch.Tensor):
    """A CPU tensor that reports a CUDA device (only its metadata is read as such)."""

    index = 0

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.index)

    @property
    def is_cuda(self) -> bool:
        return True


def reports_cuda(t: torch.Tensor, index: int) -> torch.Tensor:
    """``t`` (on the CPU) as a tensor that says it lives on ``cuda:<index>``: the stand-in's device
    tensors for code that checks ``.device``. Tensors made from it keep saying so."""
    cls = type(f"ReportsCuda{index}", (_ReportsCuda,), {"index": index})
    return torch.Tensor._make_subclass(cls, t)
