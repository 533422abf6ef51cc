"""`StreamSet`: the streams of one camera, encoded a batch at a time, in parallel across streams.

A camera of a recording has one stream per column (an env, or a detail env), each fed its frames
in row order, or one stream per captured episode window (`rollrec.format.images`). `encode_rows`
takes a batch of rows ``[n, C, *frame]`` and `encode_windows` a batch of whole windows; each
returns the batch's packets back to back and their index rows (offsets counted from the start of
the camera's packets member: the batches are appended in the order they were encoded). Streams
are encoded on the ``executor`` given (one task per stream: PyAV and zstandard release the GIL,
so streams run on as many cores as it has workers), else on the calling thread.

Knows codecs and numpy, never a rollout: the recorder's writer thread calls it
(`rollrec.engine.images`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from rollrec.format.images import INDEX_COLUMNS, StreamSpec
from rollrec.media.codecs import FrameEncoder, encoder


@dataclass
class Encoded:
    """A batch's ``packets`` (uint8 ``[B]``) and ``index`` (int64 ``[F, 5]``, `INDEX_COLUMNS`)."""

    packets: np.ndarray
    index: np.ndarray


class StreamSet:
    """The ``columns`` streams of a camera described by ``spec``; see the module docstring."""

    def __init__(self, spec: StreamSpec, columns: int, executor: Executor | None = None):
        self.spec = spec
        self.columns = int(columns)
        self.executor = executor
        self.bytes_written = 0  # the packets member's length so far: where the next batch starts
        self.frames_written = 0
        self._encoders: list[FrameEncoder | None] = [None] * self.columns

    def encode_rows(self, frames: np.ndarray, first_row: int) -> Encoded:
        """Frames ``[n, C, *frame]`` of rows ``first_row .. first_row + n - 1``, column j to stream j."""
        n, columns = frames.shape[:2]
        if columns != self.columns or tuple(frames.shape[2:]) != self.spec.shape:
            raise ValueError(f"expected frames [n, {self.columns}, {', '.join(map(str, self.spec.shape))}], "
                             f"got {list(frames.shape)}")

        def column(j: int) -> list[tuple[bytes, bool]]:
            if self._encoders[j] is None:
                self._encoders[j] = encoder(self.spec)
            return self._encoders[j].encode(frames[:, j])

        per_column = self._map(column, range(columns))
        # Row-major: every column of a row, then the next row.
        packets = [per_column[j][i] for i in range(n) for j in range(columns)]
        rows = np.repeat(np.arange(first_row, first_row + n, dtype=np.int64), columns)
        cols = np.tile(np.arange(columns, dtype=np.int64), n)
        return self._batch(packets, rows, cols)

    def encode_windows(self, frames: np.ndarray, lengths: Sequence[int], first_row: int) -> Encoded:
        """Frames ``[R, *frame]`` of windows of ``lengths`` rows each, one after another, at window
        rows ``first_row ..``: each window is a stream of its own (column 0)."""
        lengths = [int(k) for k in lengths]
        if sum(lengths) != frames.shape[0]:
            raise ValueError(f"window lengths sum to {sum(lengths)}, frames hold {frames.shape[0]} rows")
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)

        def window(w: int) -> list[tuple[bytes, bool]]:
            enc = encoder(self.spec)
            try:
                return enc.encode(frames[starts[w] : starts[w] + lengths[w]])
            finally:
                enc.close()

        per_window = self._map(window, range(len(lengths)))
        packets = [p for w in per_window for p in w]
        rows = np.arange(first_row, first_row + frames.shape[0], dtype=np.int64)
        return self._batch(packets, rows, np.zeros(rows.size, np.int64))

    def _map(self, fn, items) -> list:
        items = list(items)
        if self.executor is None or len(items) <= 1:
            return [fn(i) for i in items]
        return list(self.executor.map(fn, items))

    def _batch(self, packets: list[tuple[bytes, bool]], rows: np.ndarray, cols: np.ndarray) -> Encoded:
        sizes = np.fromiter((len(p) for p, _ in packets), np.int64, len(packets))
        index = np.empty((len(packets), len(INDEX_COLUMNS)), np.int64)
        index[:, 0], index[:, 1] = rows, cols
        index[:, 2] = self.bytes_written + np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(packets) else 0
        index[:, 3] = sizes
        index[:, 4] = np.fromiter((k for _, k in packets), np.int64, len(packets))
        blob = np.frombuffer(b"".join(p for p, _ in packets), np.uint8)
        self.bytes_written += blob.size
        self.frames_written += len(packets)
        return Encoded(blob, index)

    def close(self) -> None:
        """Release the encoders (idempotent)."""
        for enc in self._encoders:
            if enc is not None:
                enc.close()
        self._encoders = [None] * self.columns


__all__ = ["Encoded", "StreamSet"]
