"""Episodes of one camera as consecutive frames of MP4 files (PyAV), as LeRobot v3 stores videos.

`EpisodeVideos` appends each episode's frames to the current file of its camera, the frame
times counting on across episodes (frame i of the file is at ``i / fps`` exactly: the stream's
time base is ``1 / fps``), and starts a new file once the current one reaches ``file_bytes``
(an episode never spans two files). Each episode gets ``(chunk, file, from_timestamp,
to_timestamp)``: where in which file its frames lie.

Codecs: H.264 (``libx264``, ``yuv420p``: even width and height, lossy, every ``gop``-th frame a key
frame so that a random frame decodes fast), or lossless H.264 in RGB (``libx264rgb``, ``crf 0``:
the decoded frames equal the recorded ones bit for bit).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.exports.deps import require


class EpisodeVideos:
    """MP4 files of one camera under ``root`` at ``path_of(chunk, file)`` (see the module docstring)."""

    def __init__(self, root: Path, path_of: Callable[[int, int], str], *, name: str, fps: int, shape: tuple[int, ...],
                 file_bytes: int, chunks_size: int, lossless: bool = False, crf: int = 23, gop: int = 2):
        self.av = require("av", "lerobot")
        self.root, self.path_of, self.name, self.fps = root, path_of, name, int(fps)
        self.height, self.width = int(shape[0]), int(shape[1])
        if not lossless and (self.height % 2 or self.width % 2):
            raise ValueError(f"camera {name!r}: H.264 in yuv420p needs an even width and height, got "
                             f"{self.width}x{self.height} (use lossless video)")
        self.lossless, self.crf, self.gop = lossless, crf, gop
        self.file_bytes, self.chunks_size = file_bytes, chunks_size
        self.chunk, self.file = 0, -1
        self._container: Any = None
        self._stream: Any = None
        self._frames = 0  # frames in the current file
        self._path: Path | None = None

    @property
    def codec(self) -> str:
        return "libx264rgb" if self.lossless else "libx264"

    @property
    def pix_fmt(self) -> str:
        return "rgb24" if self.lossless else "yuv420p"

    def _open(self) -> None:
        self.file += 1
        if self.file == self.chunks_size:
            self.chunk, self.file = self.chunk + 1, 0
        self._path = self.root / self.path_of(self.chunk, self.file)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._container = self.av.open(str(self._path), "w", format="mp4")
        stream = self._container.add_stream(self.codec, rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.pix_fmt
        stream.codec_context.time_base = Fraction(1, self.fps)
        stream.options = {"crf": str(0 if self.lossless else self.crf), "g": str(self.gop), "preset": "veryfast"}
        self._stream = stream
        self._frames = 0

    def begin_episode(self) -> tuple[int, int, float]:
        """``(chunk, file, from_timestamp)`` of the episode about to be added."""
        if self._container is None or (self._path is not None and os.path.getsize(self._path) >= self.file_bytes):
            self.close()
            self._open()
        return self.chunk, self.file, self._frames / self.fps

    def add(self, frames: np.ndarray) -> None:
        """Append ``[n, H, W, 3]`` uint8 RGB frames."""
        if frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise ValueError(f"camera {self.name!r}: frames must be [n, {self.height}, {self.width}, 3] uint8, "
                             f"got {frames.dtype} {frames.shape}")
        for img in frames:
            frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self._frames
            frame.time_base = Fraction(1, self.fps)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            self._frames += 1

    def end_episode(self) -> float:
        """``to_timestamp`` of the episode just added."""
        return self._frames / self.fps

    def info(self) -> dict[str, Any]:
        """The ``info`` LeRobot keeps with a video feature (its ``get_video_info``'s keys)."""
        return {"video.height": self.height, "video.width": self.width, "video.codec": "h264",
                "video.pix_fmt": self.pix_fmt, "video.is_depth_map": False, "video.fps": self.fps,
                "video.channels": 3, "has_audio": False}

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None


__all__ = ["EpisodeVideos"]
