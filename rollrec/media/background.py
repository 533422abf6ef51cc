"""A video writer on its own thread, for recording env renders alongside a rollout.

The caller (the recording engine) hands over frames with `BackgroundVideoWriter.submit` and
goes on stepping; a daemon thread converts and encodes them through a `VideoWriter`. The queue
between them is bounded, so memory stays flat: when encoding falls behind, `submit` blocks
until a slot frees (back-pressure, never dropped frames).

Ownership: `submit` copies the frame before returning, so the caller may overwrite its buffer
at once: numpy, a host copy; a CPU tensor, a clone; a CUDA tensor, a ``non_blocking`` copy into
pinned host memory queued on the tensor's device's current stream (the stream that made the
frame, on the caller's thread), followed by a blocking event. The thread waits for that event
before it reads the frame, and does no device work itself: it has another current stream (the
default one), which a frame made on a stream of the caller's (``torch.cuda.Stream``: PyTorch's
streams do not wait for the default stream, nor it for them) would not be ordered after.
`submit` does not wait for the device. Errors raised on the thread (bad frame, ffmpeg failure)
are re-raised by the next `submit` and by `close`, and the partial file is removed.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from rollrec.media.writer import VideoWriter

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BackgroundVideoWriter"]

_STOP = object()


class _DeviceFrame:
    """A CUDA frame on its way to the host: a pinned copy queued on the caller's stream, and the event after it."""

    def __init__(self, frame: Any):
        import torch

        t = frame.detach()
        self.host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        with torch.cuda.device(t.device):
            self.host.copy_(t, non_blocking=True)  # on the current stream of the frame's device
            self.done = torch.cuda.Event(blocking=True)  # the writer thread sleeps on it
            self.done.record(torch.cuda.current_stream(t.device))

    def result(self) -> np.ndarray:
        self.done.synchronize()
        return self.host.numpy()


def _is_tensor(frame: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch tensor implies torch is imported: never import it here
    return torch is not None and isinstance(frame, torch.Tensor)


def _copy(frame: Any) -> Any:
    if isinstance(frame, np.ndarray):
        return frame.copy()
    if _is_tensor(frame):
        if frame.device.type == "cuda":
            return _DeviceFrame(frame)
        return frame.detach().clone()
    return np.array(frame)


class BackgroundVideoWriter:
    """Encode frames to ``path`` on a background thread; `close` returns the steps written.

    Args:
        path, fps, writer_options: as for `VideoWriter` (size, codec, quality, labels, envs...).
        max_queue: frames waiting to be encoded at most; `submit` blocks beyond that.

    `submit(step, frame)` queues one frame (or a batch ``[N, H, W, C]``, tiled) recorded at
    rollout step ``step``. `close()` waits for the queue to drain, finishes the file and returns
    the list of steps written, in order, so ``video frame i`` shows ``rollout step steps[i]``
    (store it in ``meta["video"]``). `abort()` stops and removes the partial file. Use as a
    context manager (an exception in the block aborts). Not for use from several threads.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float = 30, *, max_queue: int = 32, **writer_options: Any
    ):
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self._writer = VideoWriter(path, fps, **writer_options)  # validates path and options now
        self.path = self._writer.path
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._steps: list[int] = []
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"rollrec-video:{self.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain so a blocked submit wakes up
            step, frame = item
            try:
                if isinstance(frame, _DeviceFrame):
                    frame = frame.result()
                self._writer.write(frame)  # aborts itself (removes the partial) on error
                self._steps.append(step)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"{self.path}: background video writer failed: {self._error}") from self._error

    def submit(self, step: int, frame: Any) -> None:
        """Queue ``frame`` (copied now) as the picture of rollout step ``step``; may block."""
        if self._closed:
            raise ValueError(f"{self.path}: background writer is closed")
        self._raise_if_failed()
        self._queue.put((int(step), _copy(frame)))

    @property
    def pending(self) -> int:
        """Frames queued and not yet encoded (approximate)."""
        return self._queue.qsize()

    def close(self) -> list[int]:
        """Encode what is queued, finish the file, return the steps written (see class doc)."""
        if self._closed:
            return list(self._steps)
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            self._writer.abort()
            self._raise_if_failed()
        self._writer.close()
        return list(self._steps)

    def abort(self) -> None:
        """Drop queued frames, stop the thread and remove the partial file."""
        if not self._closed:
            self._closed = True
            self._error = self._error or RuntimeError("aborted")
            self._queue.put(_STOP)
            self._thread.join()
        self._writer.abort()

    @property
    def steps(self) -> list[int]:
        """Steps encoded so far (a copy)."""
        return list(self._steps)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
