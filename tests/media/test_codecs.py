"""Camera streams' codecs: lossless streams are exact, the lossy one keeps >= 35 dB at its defaults,
every frame gives its packet at once, key frames come as promised, damaged packets are refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rollrec.format.errors import RolloutFormatError
from rollrec.format.images import StreamSpec, h264_params, zstd_params
from rollrec.media.codecs import decoder, encoder
from rollrec.media.streams import StreamSet

pytest.importorskip("av")
pytest.importorskip("zstandard")


def lossy(shape=(128, 128, 3), keyframes=32, **params) -> StreamSpec:
    return StreamSpec("h264", tuple(shape), "|u1", keyframes, h264_params(**params))


def lossless(shape, dtype, keyframes=32) -> StreamSpec:
    return StreamSpec("zstd", tuple(shape), np.dtype(dtype).str, keyframes, zstd_params())


def decode_all(spec: StreamSpec, packets: np.ndarray, index: np.ndarray, column: int) -> list[np.ndarray]:
    """Every frame of one column, decoded in order from its first (key) frame."""
    rows = index[index[:, 1] == column]
    dec = decoder(spec)
    return [dec.decode(packets[o : o + s].tobytes(), bool(k)) for _, _, o, s, k in rows]


def encode(spec: StreamSpec, frames: np.ndarray, batch: int = 7, threads: int = 2):
    """Encode ``[T, C, *frame]`` in batches of ``batch`` rows; ``(packets, index)`` of the whole."""
    with ThreadPoolExecutor(threads) as pool:
        streams = StreamSet(spec, frames.shape[1], pool)
        parts = [streams.encode_rows(frames[t : t + batch], t) for t in range(0, frames.shape[0], batch)]
    return np.concatenate([p.packets for p in parts]), np.concatenate([p.index for p in parts])


@pytest.mark.parametrize(("shape", "dtype"), [
    ((32, 48, 3), np.uint8),     # RGB asked lossless
    ((33, 17), np.uint16),       # 16-bit depth, odd sizes
    ((24, 24), np.float32),      # float depth: exact bits
    ((16, 20), np.int32),        # segmentation labels
    ((12, 12, 4), np.uint8),     # RGBA
    ((10, 10), np.bool_),        # a mask
])
def test_lossless_round_trip_is_exact(camera_frames, shape, dtype):
    T, C = 70, 3  # past two key frames of 32
    frames = np.stack([camera_frames.pattern(t, range(C), shape, dtype) for t in range(T)])
    if np.dtype(dtype).kind == "f":
        frames[5, 1, 0, 0] = np.nan  # bit patterns, not values: NaN and -0.0 come back as they were
        frames[6, 1, 0, 1] = -0.0
    spec = lossless(shape, dtype)
    packets, index = encode(spec, frames)
    for c in range(C):
        got = np.stack(decode_all(spec, packets, index, c))
        assert got.dtype == frames.dtype and got.shape == frames[:, c].shape
        assert got.tobytes() == np.ascontiguousarray(frames[:, c]).tobytes()


def test_lossless_depth_of_the_walker_is_exact_and_smaller(walker_camera):
    _, depth = walker_camera
    spec = lossless(depth.shape[2:], np.uint16)
    packets, index = encode(spec, depth)
    for c in range(depth.shape[1]):
        np.testing.assert_array_equal(np.stack(decode_all(spec, packets, index, c)), depth[:, c])
    assert depth.nbytes / packets.size > 3  # measured 6.2x on 200 steps (see rollrec.media.codecs)


def test_lossy_keeps_35_db_at_the_default_quality_and_is_20x_smaller(walker_camera, camera_frames):
    rgb, _ = walker_camera  # the demo's rendered chase camera, 128x128
    spec = lossy()
    packets, index = encode(spec, rgb)
    scores = [camera_frames.psnr(frame, rgb[t, c]) for c in range(rgb.shape[1])
              for t, frame in enumerate(decode_all(spec, packets, index, c))]
    assert min(scores) >= 35.0, (min(scores), np.mean(scores))
    assert rgb.nbytes / packets.size >= 20.0


def test_every_frame_gives_its_packet_at_once_and_key_frames_come_every_interval(camera_frames):
    """A commit names rows whose frames must be in the file: no encoder may hold a frame back."""
    for spec in (lossy((32, 32, 3), keyframes=8), lossless((32, 32, 3), np.uint8, keyframes=8)):
        enc = encoder(spec)
        keys = []
        for t in range(30):
            out = enc.encode(camera_frames.pattern(t, [0], (32, 32, 3)))
            assert len(out) == 1 and len(out[0][0]) > 0
            keys.append(out[0][1])
        assert keys[0] and all(any(keys[i : i + 8]) for i in range(0, 30, 8)), keys


def test_a_key_frame_decodes_alone(walker_camera, camera_frames):
    rgb, _ = walker_camera
    spec = lossy(keyframes=16)
    packets, index = encode(spec, rgb[:, :1])
    keys = np.flatnonzero(index[:, 4])
    assert list(keys[:3]) == [0, 16, 32]
    _, _, o, s, _ = index[16]
    frame = decoder(spec).decode(packets[o : o + s].tobytes(), True)  # a fresh decoder, mid-stream
    assert camera_frames.psnr(frame, rgb[16, 0]) >= 35


def test_windows_are_streams_of_their_own(camera_frames):
    spec = lossless((8, 8), np.uint16, keyframes=4)
    frames = np.concatenate([camera_frames.pattern(t, [0], (8, 8), np.uint16) for t in range(11)])
    streams = StreamSet(spec, 1)
    out = streams.encode_windows(frames, [5, 6], first_row=3)
    assert list(out.index[:, 0]) == list(range(3, 14)) and set(out.index[:, 1]) == {0}
    assert list(np.flatnonzero(out.index[:, 4])) == [0, 4, 5, 9]  # each window starts with a key frame
    dec = decoder(spec)
    for i, (_, _, o, s, k) in enumerate(out.index):
        np.testing.assert_array_equal(dec.decode(out.packets[o : o + s].tobytes(), bool(k)), frames[i])


@pytest.mark.parametrize("codec", ["h264", "zstd"])
def test_damaged_packets_are_refused_with_a_format_error(codec, camera_frames):
    spec = lossy((16, 16, 3)) if codec == "h264" else lossless((16, 16, 3), np.uint8)
    (packet, _), = encoder(spec).encode(camera_frames.pattern(0, [0], (16, 16, 3)))
    for bad in (b"", b"\x00" * 7, packet[: len(packet) // 3], bytes(255 - b for b in packet)):
        with pytest.raises(RolloutFormatError):
            decoder(spec, "test stream").decode(bad, True)
    other = lossy((8, 8, 3)) if codec == "h264" else lossless((8, 8, 3), np.uint8)  # a frame of another size
    (packet, _), = encoder(other).encode(camera_frames.pattern(0, [0], (8, 8, 3)))
    with pytest.raises(RolloutFormatError, match="frame"):
        decoder(spec).decode(packet, True)


def test_sizes_odd_and_tiny_work_lossy(camera_frames):
    for shape in ((7, 9, 3), (2, 2, 3), (33, 65, 3)):
        frames = np.stack([camera_frames.pattern(t, [0], shape) for t in range(3)])
        packets, index = encode(lossy(shape), frames)
        got = decode_all(lossy(shape), packets, index, 0)
        assert [g.shape for g in got] == [shape] * 3


def test_the_parameters_are_checked():
    with pytest.raises(ValueError, match="0..51"):
        h264_params(crf=60)
    with pytest.raises(ValueError, match="veryfast"):
        h264_params(preset="ludicrous")
