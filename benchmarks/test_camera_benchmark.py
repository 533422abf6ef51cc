"""Camera images: the codec choices measured side by side, and the recording figures of ``rollrec bench --only camera``.

``pytest benchmarks/test_camera_benchmark.py`` (or ``python benchmarks/test_camera_benchmark.py
[--steps 1000] [--codecs-only]``) runs, on the walker camera's 128x128 frames
(`rollrec.bench.camera.render_bank`: 100 steps of 16 walkers, the demo's rendered chase camera):

* the codecs a camera stream could use, each stream encoded on one thread (`rollrec.media.codecs`
  for the ones rollrec uses, PyAV directly for the alternatives): bytes against raw frames,
  encode frames per second, PSNR (mean and worst frame) or exactness. ``rollrec.media.codecs``
  quotes this table;
* `rollrec.bench.camera.camera_rows` (64 detail envs of 4096 with the camera): frames encoded per
  second, bytes against raw (lossy and lossless), ``record()`` host time against a copy of the
  same tensors and against no camera, peak RSS at two lengths (full runs only).
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("zstandard")

from rollrec.bench.camera import camera_rows, render_bank  # noqa: E402
from rollrec.bench.report import format_table  # noqa: E402
from rollrec.bench.workload import Workload  # noqa: E402
from rollrec.format.images import StreamSpec, h264_params, zstd_params  # noqa: E402
from rollrec.media.codecs import decoder, encoder  # noqa: E402

STREAMS = 8  # of the bank's walkers, one stream each


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def rollrec_codec(frames: np.ndarray, spec: StreamSpec) -> dict:
    """rollrec's own encoder and decoder for ``spec``, on ``frames [T, S, ...]``: one stream per column."""
    size, seconds, scores, exact = 0, 0.0, [], True
    for s in range(frames.shape[1]):
        enc = encoder(spec)
        t0 = time.perf_counter()
        packets = enc.encode(frames[:, s])
        seconds += time.perf_counter() - t0
        size += sum(len(p) for p, _ in packets)
        dec = decoder(spec)
        for t, (p, k) in enumerate(packets):
            got = dec.decode(p, k)
            exact &= np.array_equal(got, frames[t, s])
            scores.append(psnr(got, frames[t, s]))
    return {"bytes": size, "fps": frames.shape[0] * frames.shape[1] / seconds, "psnr": scores, "exact": exact}


def pyav_codec(frames: np.ndarray, codec: str, pix_fmt: str, options: dict, decoder_name: str) -> dict:
    """An alternative through PyAV directly (frames converted by its own swscale), one thread per stream."""
    size, seconds, scores, exact, late = 0, 0.0, [], True, 0
    for s in range(frames.shape[1]):
        cc = av.CodecContext.create(codec, "w")
        cc.width, cc.height, cc.pix_fmt, cc.time_base, cc.thread_count = frames.shape[3], frames.shape[2], pix_fmt, Fraction(1, 30), 1
        cc.options = options
        packets = []
        t0 = time.perf_counter()
        for t in range(frames.shape[0]):
            vf = av.VideoFrame.from_ndarray(frames[t, s], format="rgb24").reformat(format=pix_fmt)
            vf.pts = t
            out = cc.encode(vf)
            late += len(out) != 1
            packets += [bytes(p) for p in out]
        packets += [bytes(p) for p in cc.encode(None)]
        seconds += time.perf_counter() - t0
        size += sum(map(len, packets))
        dc = av.CodecContext.create(decoder_name, "r")
        dc.width, dc.height = cc.width, cc.height
        if cc.extradata:  # FFV1 level 3 keeps its configuration there
            dc.extradata = cc.extradata
        decoded = [f for p in packets for f in dc.decode(av.Packet(p))] + list(dc.decode(None))
        for t, f in enumerate(decoded):
            got = f.to_ndarray(format="rgb24")
            exact &= np.array_equal(got, frames[t, s])
            scores.append(psnr(got, frames[t, s]))
    return {"bytes": size, "fps": frames.shape[0] * frames.shape[1] / seconds, "psnr": scores, "exact": exact, "late": late}


def codec_table(frames: np.ndarray) -> list[str]:
    raw = frames.nbytes
    shape = frames.shape[2:]
    rows = []

    def line(name: str, r: dict) -> None:
        quality = "exact" if r["exact"] else f"PSNR {np.mean(r['psnr']):.1f} dB (worst {min(r['psnr']):.1f})"
        late = f"; {r['late']} frames had no packet at once" if r.get("late") else ""
        rows.append(f"{name:48s} {raw / r['bytes']:6.1f}x  {r['bytes'] / frames.shape[0] / frames.shape[1]:6.0f} B/frame  "
                    f"{r['fps']:6.0f} frames/s  {quality}{late}")

    for preset, crf in (("veryfast", 16), ("veryfast", 18), ("superfast", 16), ("ultrafast", 18), ("faster", 16)):
        spec = StreamSpec("h264", shape, "|u1", 32, h264_params(crf, preset))
        line(f"rollrec h264 4:4:4 {preset} CRF {crf}" + (" (default)" if (preset, crf) == ("veryfast", 16) else ""),
             rollrec_codec(frames, spec))
    line("rollrec zstd 3, frame differences (lossless)", rollrec_codec(frames, StreamSpec("zstd", shape, "|u1", 32, zstd_params())))
    line("x264 4:2:0 veryfast CRF 16 zerolatency", pyav_codec(frames, "libx264", "yuv420p",
                                                             {"preset": "veryfast", "tune": "zerolatency", "crf": "16", "g": "32"}, "h264"))
    line("x264 4:4:4 veryfast CRF 16 with B-frames", pyav_codec(frames, "libx264", "yuv444p",
                                                               {"preset": "veryfast", "crf": "16", "g": "32"}, "h264"))
    try:
        line("SVT-AV1 4:2:0 preset 10 CRF 20 low delay", pyav_codec(
            frames, "libsvtav1", "yuv420p", {"preset": "10", "crf": "20", "g": "32", "svtav1-params": "pred-struct=1:lp=1"},
            "libdav1d"))
    except (av.error.FFmpegError, ValueError) as exc:  # a build without it
        rows.append(f"SVT-AV1: not available ({exc})")
    line("FFV1 level 3, range coder (lossless)", pyav_codec(frames, "ffv1", "bgr0",
                                                           {"level": "3", "coder": "range_tab", "context": "1", "slices": "4"}, "ffv1"))
    return rows


def test_codec_choices(report):
    frames = np.load(render_bank(_bank_path()))[:60, :STREAMS]
    lines = codec_table(frames)
    report(f"codecs on the walker camera, {frames.shape[0]} steps x {frames.shape[1]} streams, 128x128:\n" + "\n".join(lines))
    assert any("(default)" in x for x in lines)


def test_recording_with_a_camera(report, tmp_path):
    rows = camera_rows(Workload(4096), tmp_path, steps=200, repeats=1, rss_steps=None, bank=_bank_path())
    report(format_table(rows))
    by = {r.name: r for r in rows}
    assert by["bytes, lossy"].ratio >= 20


def _bank_path():
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "rollrec-camera-bank-128.npy"


def main() -> None:  # pragma: no cover - full-size runs
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--codecs-only", action="store_true")
    args = p.parse_args()
    import tempfile
    from pathlib import Path

    frames = np.load(render_bank(_bank_path()))
    print(f"codecs on the walker camera, {frames.shape[0]} steps x {STREAMS} streams, 128x128, one thread each:")
    print("\n".join(codec_table(frames[:, :STREAMS])))
    if not args.codecs_only:
        with tempfile.TemporaryDirectory(dir=".") as d:
            print(format_table(camera_rows(Workload(4096), Path(d), steps=args.steps, repeats=args.repeats,
                                           rss_steps=(200, args.steps), bank=_bank_path())))


if __name__ == "__main__":  # pragma: no cover
    main()
