"""Codecs of camera streams: one encoder and one decoder per stream, knowing no rollout.

A stream is the frames of one env (or one captured episode) of one camera, in order
(`rollrec.format.images`). An encoder takes a batch of its frames and returns one
``(packet, key)`` per frame at once, so a recorder's commit never names a row whose frame is
still inside an encoder; a decoder takes the packets of a stream from a key frame on and returns
each frame. `encoder` and `decoder` pick the codec a `StreamSpec` names:

- ``"h264"`` (`rollrec.media.codecs.h264`): lossy, uint8 RGB, the default for RGB cameras;
- ``"zstd"`` (`rollrec.media.codecs.zstd_frames`): lossless, any dtype: RGB when asked, and
  always depth (16-bit or float) and segmentation.

Measured with ``python benchmarks/test_camera_benchmark.py --codecs-only`` on the walker camera's
frames (`rollrec.envs.camera`, 128x128, 100 steps x 8 walkers, the chase camera moving with each
robot), one stream per thread, on a 2-vCPU AMD EPYC VM shared with other jobs (PyAV 18.1 with its
bundled FFmpeg 8, x264, SVT-AV1, dav1d; zstandard 0.25). Bytes are against the raw frames; the
alternatives' rates include PyAV's own RGB conversion (swscale, about 1 ms a frame here):

==========================================  ======  ===========  ========  ==========================
codec and settings                          ratio   bytes/frame  frames/s  quality
==========================================  ======  ===========  ========  ==========================
**h264 4:4:4 veryfast CRF 16 (default)**    28.8x   1709         1692      PSNR 38.2 dB (worst 37.1)
h264 4:4:4 veryfast CRF 18                  35.5x   1384         1870      PSNR 37.0 dB (worst 35.8)
h264 4:4:4 faster CRF 16                    28.9x   1700         1206      PSNR 38.8 dB (worst 37.7)
h264 4:4:4 superfast CRF 16                 18.9x   2602         2214      PSNR 40.3 dB (worst 38.7)
h264 4:4:4 ultrafast CRF 18                 17.0x   2894         4388      PSNR 39.9 dB (worst 37.9)
x264 4:2:0 veryfast CRF 16                  31.0x   1587         714       PSNR 35.4 dB (worst 34.5)
x264 4:4:4 veryfast CRF 16, B-frames        42.0x   1170         456       88 of 800 frames late
SVT-AV1 4:2:0 preset 10 CRF 20, low delay   28.8x   1707         624       PSNR 33.8 dB (worst 29.9)
**zstd 3, frame differences (lossless)**    6.6x    7393         7406      exact
FFV1 level 3, range coder (lossless)        8.1x    6072         1008      exact
==========================================  ======  ===========  ========  ==========================

Why: 4:2:0 alone caps these small renders' sharp colour edges near 37 dB before any coding, which
rules out x264 4:2:0 and SVT-AV1 (it takes 4:2:0 only; PyAV's build has no libaom) at the 35 dB
the lossy default promises; B-frames need look-ahead, so frames wait inside the encoder (a commit
would name rows whose frames are not in the file yet); veryfast has the best size for its speed.
A keyframe interval of 32 costs about 1% over 64 and halves what reading one frame decodes.
Lossless: zstd of frame differences is 7x faster than FFV1 for 20% more bytes (and 1.4x smaller
than zstd of each frame alone, 5.1x).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rollrec.format.images import StreamSpec


class FrameEncoder(Protocol):
    def encode(self, frames: np.ndarray) -> list[tuple[bytes, bool]]:
        """``[n, *shape]`` frames -> ``n`` ``(packet, key)``, in order, at once."""

    def close(self) -> None: ...


class FrameDecoder(Protocol):
    def decode(self, packet: bytes, key: bool) -> np.ndarray:
        """The frame of the stream's next packet (``key``: it starts the stream anew)."""


def encoder(spec: StreamSpec) -> FrameEncoder:
    """A new stream's encoder for ``spec`` (ImportError naming the extra when a package is missing)."""
    if spec.codec == "h264":
        from rollrec.media.codecs.h264 import H264Encoder

        return H264Encoder(spec)
    from rollrec.media.codecs.zstd_frames import ZstdEncoder

    return ZstdEncoder(spec)


def decoder(spec: StreamSpec, where: str = "image stream") -> FrameDecoder:
    """A decoder of one stream of ``spec`` (``where`` names it in errors)."""
    if spec.codec == "h264":
        from rollrec.media.codecs.h264 import H264Decoder

        return H264Decoder(spec, where)
    from rollrec.media.codecs.zstd_frames import ZstdDecoder

    return ZstdDecoder(spec, where)


__all__ = ["FrameDecoder", "FrameEncoder", "decoder", "encoder"]
