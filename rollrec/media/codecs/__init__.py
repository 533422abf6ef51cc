"""Codecs of camera streams: one encoder and one decoder per stream, knowing no rollout.

A stream is the frames of one env (or one captured episode) of one camera, in order
(`rollrec.format.images`). An encoder takes a batch of its frames and returns one
``(packet, key)`` per frame at once, so a recorder's commit never names a row whose frame is
still inside an encoder; a decoder takes the packets of a stream from a key frame on and returns
each frame. `encoder` and `decoder` pick the codec a `StreamSpec` names:

- ``"h264"`` (`rollrec.media.codecs.h264`): lossy, uint8 RGB, the default for RGB cameras;
- ``"zstd"`` (`rollrec.media.codecs.zstd_frames`): lossless, any dtype: RGB when asked, and
  always depth (16-bit or float) and segmentation.

Measured on the walker camera's frames (`rollrec.envs.camera`, 128x128, 200 steps x 8 envs, the
chase camera moving with each robot; one core per stream, 2-vCPU Xeon VM, PyAV 18.1 with its
bundled FFmpeg 8 / x264 / SVT-AV1 / dav1d, zstandard 0.25); bytes are against raw frames, encode
rates per core:

========================================  ======  ==========  ========  ============  ===========
codec and settings                        ratio   bytes/frame  enc fps   PSNR mean     PSNR min
========================================  ======  ==========  ========  ============  ===========
x264 4:4:4 zerolatency veryfast CRF 16    36.6x   1344        912       37.1 dB       35.7 dB
x264 4:4:4 zerolatency veryfast CRF 18    48.4x   1016        1108      35.6 dB       34.3 dB
x264 4:4:4 zerolatency superfast CRF 16   22.7x   2167        1253      39.2 dB       37.5 dB
x264 4:4:4 zerolatency ultrafast CRF 18   20.0x   2452        2561      38.6 dB       36.3 dB
x264 4:4:4 superfast CRF 16, B-frames     21.5x   2286        1060      39.8 dB       36.5 dB
SVT-AV1 4:2:0 low delay preset 10 CRF 20  30.4x   1615        541       33.7 dB       29.5 dB
zstd 3, difference from previous frame    6.9x    7094        6684      exact
zstd 3, each frame alone                  5.1x    9624        5433      exact
FFV1 level 3 range coder (RGB)            8.2x    6027        950       exact
depth uint16: zstd 3 difference, planar   6.2x    5325        9672      exact
depth uint16: FFV1 gray16le               7.6x    4326        2882      exact
========================================  ======  ==========  ========  ============  ===========

4:2:0 alone (before any coding) caps these frames at 37.2 dB, which rules out SVT-AV1 (PyAV's
build has no libaom; SVT-AV1 takes 4:2:0 only) and x264 4:2:0; the B-frame row needs look-ahead,
so 32 of 1600 frames had no packet yet when the next came (it is not used: see above). Keyframe
interval 32 costs 1% in size over 64 and halves the frames decoded to reach any one. Lossless:
zstd of frame differences is 7x faster than FFV1 for 20% more bytes.
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
