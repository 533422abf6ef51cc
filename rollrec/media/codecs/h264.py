"""The lossy stream: H.264 (libx264 through PyAV), one packet per frame, decodable from any key frame.

Why these settings (measured on the walker camera's 128x128 frames, one core per stream; see
`rollrec.media.codecs`): YCbCr 4:4:4, because 4:2:0 alone costs these small renders' sharp colour
edges down to about 37 dB before any coding; ``tune=zerolatency`` (no B-frames, no look-ahead),
because a packet that comes out frames after its frame would leave the rows a commit names
without their frames; ``preset=veryfast``, the best size for its speed among x264's presets here.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.images import DEFAULT_CRF, DEFAULT_PRESET, StreamSpec
from rollrec.media.codecs.deps import require_av
from rollrec.media.codecs.ycbcr import planes_to_rgb, rgb_to_planes


class H264Encoder:
    """One stream of ``spec``'s uint8 RGB frames ``[H, W, 3]``; see the module docstring.

    `encode` returns one ``(packet, key)`` per frame given, at once. Not thread-safe: one caller
    at a time (a stream's batches may come from different threads, one after another).
    """

    def __init__(self, spec: StreamSpec):
        av = require_av()
        height, width, _ = spec.shape
        cc = av.CodecContext.create("libx264", "w")
        cc.width, cc.height = width, height
        cc.pix_fmt = "yuv444p"
        cc.time_base = Fraction(1, 30)  # frames carry their own numbers; the rate is not stored
        cc.thread_count = 1  # streams run in parallel, one per worker: threads inside x264 would add delay
        cc.color_range = 2  # full (JPEG) range
        cc.colorspace = 6  # BT.601 (SMPTE 170M)
        cc.options = {
            "preset": str(spec.params.get("preset", DEFAULT_PRESET)),
            "tune": "zerolatency",
            "crf": str(spec.params.get("crf", DEFAULT_CRF)),
            "g": str(spec.keyframe_interval),
        }
        cc.open()
        self._cc = cc
        self._av = av
        self._frames = 0

    def encode(self, frames: np.ndarray) -> list[tuple[bytes, bool]]:
        """``[n, H, W, 3]`` uint8 -> ``n`` ``(packet, key)``, in order."""
        out = []
        for planes in rgb_to_planes(frames):
            frame = self._av.VideoFrame.from_ndarray(planes, format="yuv444p")
            frame.pts = self._frames
            self._frames += 1
            packets = self._cc.encode(frame)
            if len(packets) != 1:  # cannot happen with zerolatency; a delay would break the commit's promise
                raise RuntimeError(f"libx264 returned {len(packets)} packets for one frame; expected exactly one")
            out.append((bytes(packets[0]), bool(packets[0].is_keyframe)))
        return out

    def close(self) -> None:
        self._cc = None


class H264Decoder:
    """Decodes one stream's packets, in order from a key frame, into ``[H, W, 3]`` uint8 RGB frames."""

    def __init__(self, spec: StreamSpec, where: str = "h264 stream"):
        self._av = require_av()
        self.shape = tuple(spec.shape)
        self.where = where
        self._cc = None

    def decode(self, packet: bytes, key: bool) -> np.ndarray:
        """The frame of ``packet``, the next packet of the stream (``key``: a key frame, which
        starts a new decoder). `RolloutFormatError` for data that does not decode to one frame
        of the stream's shape."""
        av = self._av
        if key or self._cc is None:
            self._cc = av.CodecContext.create("h264", "r")
            self._cc.thread_count = 1
            self._cc.flags |= av.codec.context.Flags.low_delay  # a frame out for each packet in
        try:
            frames = self._cc.decode(av.Packet(packet))
        except av.error.FFmpegError as exc:
            raise RolloutFormatError(f"{self.where}: a packet does not decode ({exc})") from None
        if len(frames) != 1:
            raise RolloutFormatError(f"{self.where}: a packet decoded to {len(frames)} frames, expected one")
        planes = frames[0].to_ndarray(format="yuv444p")
        if planes.shape != (3, *self.shape[:2]):
            raise RolloutFormatError(f"{self.where}: a frame decoded to {planes.shape[1:]}, the stream is {self.shape[:2]}")
        return planes_to_rgb(planes)


__all__ = ["H264Decoder", "H264Encoder"]
