#!/usr/bin/env python3
"""Check rollrec's CUDA path on a GPU in a few minutes: one PASS/FAIL/SKIP line per check.

    python scripts/gpu_check.py                 # from the repo root, on a machine with a CUDA GPU
    python scripts/gpu_check.py --cpu-smoke     # what runs without a GPU (CI: tests/test_gpu_check.py)

Needs torch (a CUDA build) and numpy; rollrec is imported from this checkout (no install).
Scratch files go into a folder per check under ``--out`` (default ``./.gpu-check``; what the
script made is removed afterwards), which should be on a disk that takes ``O_DIRECT`` (not tmpfs). Exit status 1 when a check fails.

Each check compares what a CUDA recording wrote with what a CPU recording of the same steps
writes (every member, ``meta`` but for its time stamp), while the device is made to lag:

- ``odirect-pinned-staging``: ``direct_io=True`` writes straight from the pinned staging (no
  ``EFAULT``, most bytes without a bounce copy), data equal;
- ``no-sync-host-ahead``: ``set_sync_debug_mode("error")`` from step 1 to ``close()``, and with
  ~0.5 s of device work queued first, a loop that fits the ring returns before the device is
  done (``Event.query()`` still False);
- ``ring-overwrite-lagging``: ``ring_segments=2``, every step's data made behind a 2 ms kernel:
  the ring is reused long before the device caught up; data equal;
- ``side-stream``: ``record()`` under ``torch.cuda.stream(s)`` behind slow kernels on ``s``,
  ``close()`` outside it; data equal;
- ``device-cuda``: ``Recorder(device="cuda")``;
- ``numpy-input``: numpy ``rew``/``done`` on a CUDA recorder, under sync debug mode;
- ``sync-debug-volume``: sync debug mode ("error") for the whole recording, first ``record()``
  to ``close()``, with ``envs``/``every``/``dtypes``/``capture``/partial flushes;
- ``inference-mode``: recorded under ``torch.inference_mode()``, closed outside it;
- ``ctrl-c-backpressure``: SIGINT while ``record()`` waits for a staging buffer held by a
  lagging device; recording goes on; data and episode index equal;
- ``pinned-bytes``: the staging's pinned bytes against the rows it stages;
- ``two-devices``: a recorder on ``cuda:1`` while the current device is 0 (needs 2 GPUs);
- ``video-frames``: frames made on a side stream behind a slow kernel reach the video thread whole;
- ``camera-images``: cameras (``images=``: H.264 RGB, uint16 depth; every env, ``envs=`` with the
  detail envs' images only, ``capture=`` windows) recorded from CUDA tensors written behind a
  slow kernel, under sync debug mode: the same packets as the CPU recording (needs PyAV and zstandard);
- ``warp-stream``: a pose copied after a slow Warp kernel (needs ``warp``);
- ``targets``: `rollrec.bench.cuda` at N=4096, as ratios measured in the same run:
  host time per ``record()`` / 50 us (<= 1), syncs (0), flush / the disk's ``O_DIRECT`` rate
  (>= 0.8), step-loop slowdown with recording on (<= 5%);
- ``pytest-cuda``: ``pytest -m cuda`` on the test files that have CUDA tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's rollrec, installed or not

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rollrec.engine import Recorder  # noqa: E402

CHECK_SECONDS = 150  # one check's limit (a deadlock fails the check instead of hanging the run)


class CheckTimeout(Exception):
    pass


class Skip(Exception):
    """The check cannot run here (the message says why)."""


@dataclass
class Context:
    out: Path
    cuda: bool
    device: torch.device
    cycles_per_ms: float = 0.0

    def sleep(self, ms: float) -> None:
        """Queue ``ms`` of device time on the current stream (nothing on CPU)."""
        if self.cuda:
            torch.cuda._sleep(int(ms * self.cycles_per_ms))

    def path(self, name: str) -> Path:
        return self.out / name


# ---- data --------------------------------------------------------------------------------------------
def make_steps(T: int, N: int, *, seed: int = 0, burst: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """``T`` steps of `Recorder.record` arguments on the CPU; every env ends its episode at ``burst``."""
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(T):
        done = rng.random(N) < 0.1
        if t in burst:
            done[:] = True
        f32 = lambda *shape: torch.from_numpy(rng.normal(size=shape).astype(np.float32))  # noqa: E731
        steps.append({
            "obs": f32(N, 6), "act": f32(N, 2), "rew": f32(N), "done": torch.from_numpy(done),
            "truncated": torch.from_numpy(done & (rng.random(N) < 0.3)), "base_pos": f32(N, 3),
            "base_quat": f32(N, 4), "reward_terms": {"a": f32(N), "b": f32(N)}, "link_pos": f32(N, 3, 3),
        })
    return steps


def to(step: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: ({kk: vv.to(device) for kk, vv in v.items()} if isinstance(v, dict) else v.to(device))
            for k, v in step.items()}


def record(path: Path, N: int, steps: list[dict[str, Any]], **options: Any) -> Path:
    with Recorder(path, N, **{"segment_steps": 4, "flush_interval_s": None, **options}) as rec:
        for s in steps:
            rec.record(**s)
    return path


def differences(a: Path, b: Path) -> list[str]:
    """Members of ``a`` and ``b`` that differ (``meta`` compared without its ``created`` stamp)."""
    out = []
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        if sorted(x.files) != sorted(y.files):
            return [f"members {sorted(x.files)} != {sorted(y.files)}"]
        for name in x.files:
            if name == "meta":
                mx, my = json.loads(str(x[name])), json.loads(str(y[name]))
                mx.pop("created", None), my.pop("created", None)
                if mx != my:
                    out.append("meta")
            elif x[name].dtype != y[name].dtype or x[name].shape != y[name].shape or x[name].tobytes() != y[name].tobytes():
                out.append(name)
    return out


def same_as_cpu(ctx: Context, name: str, N: int, steps: list[dict[str, Any]], written: Path, **options: Any) -> str:
    """Record ``steps`` on the CPU with ``options``; '' if ``written`` holds the same, else what differs."""
    reference = record(ctx.path(f"{name}-cpu.npz"), N, steps, **options)
    diff = differences(written, reference)
    return "" if not diff else f"differs from the CPU recording in {', '.join(diff)}"


@contextlib.contextmanager
def sync_debug(ctx: Context):
    """``torch.cuda.set_sync_debug_mode("error")`` (process-wide) inside the block, on CUDA."""
    if not ctx.cuda:
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


def takes_direct_io(folder: Path) -> bool:
    """Whether files in ``folder`` can be opened for direct I/O (one probe file, removed)."""
    from rollrec._npz.direct_io import open_direct

    probe = folder / ".probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        direct = open_direct(fd, str(probe))
        if direct is not None:
            os.close(direct)
        return direct is not None
    finally:
        os.close(fd)
        probe.unlink()


def needs_cuda(ctx: Context) -> None:
    if not ctx.cuda:
        raise Skip("needs a CUDA device")


# ---- checks ---------------------------------------------------------------------------------------------
def check_odirect_pinned_staging(ctx: Context) -> str:
    N, T, seg = 4096, 32, 8
    host = make_steps(T, N, seed=1)
    if not takes_direct_io(ctx.out):
        raise Skip(f"{ctx.out} refuses O_DIRECT (tmpfs?); pass --out on a disk")
    path = ctx.path("direct.npz")
    rec = Recorder(path, N, segment_steps=seg, max_steps=T, flush_interval_s=None, direct_io=True)
    for s in host:
        rec.record(**to(s, ctx.device))
    out = rec._stream._out
    pinned = all(v.is_pinned() for buf in rec._pipeline.staging for v in buf.views.values())
    rec.close()
    total = out.zero_copy_bytes + out.copied_bytes
    where = "pinned staging" if ctx.cuda else "the ring"
    if ctx.cuda and not pinned:
        return "FAIL: a staging view is not pinned"
    if out.zero_copy_bytes < 0.8 * total:
        return f"FAIL: only {out.zero_copy_bytes / total:.0%} of {total / 1e6:.1f} MB written from {where} without a copy"
    bad = same_as_cpu(ctx, "direct", N, host, path, segment_steps=seg, max_steps=T)
    return f"FAIL: {bad}" if bad else f"{out.zero_copy_bytes / total:.0%} of {total / 1e6:.1f} MB written from {where} with O_DIRECT, data equal"


def check_no_sync_host_ahead(ctx: Context) -> str:
    needs_cuda(ctx)
    N, seg = 4096, 8
    host = make_steps(4 * seg, N, seed=2)
    steps = [to(s, ctx.device) for s in host]
    path = ctx.path("ahead.npz")
    rec = Recorder(path, N, segment_steps=seg, ring_segments=4, staging_buffers=4, flush_interval_s=None)
    rec.record(**steps[0])  # allocates
    torch.cuda.synchronize()
    with sync_debug(ctx):
        ctx.sleep(500)
        t0 = time.perf_counter()
        for s in steps[1:]:
            rec.record(**s)
        looped = time.perf_counter() - t0
        behind = torch.cuda.Event()
        behind.record()
        still_busy = not behind.query()
        rec.close()
    bad = same_as_cpu(ctx, "ahead", N, host, path, segment_steps=seg, ring_segments=4)
    detail = f"{len(steps) - 1} record() in {looped * 1e3:.1f} ms while the device was busy 500 ms (ratio {looped / 0.5:.3f})"
    if not still_busy or looped > 0.25:
        return f"FAIL: the host waited for the device: {detail}"
    return f"FAIL: {bad}" if bad else f"0 syncs, {detail}, data equal"


def check_ring_overwrite_lagging(ctx: Context) -> str:
    N, T = 1024, 48
    host = make_steps(T, N, seed=3)
    device_steps = [to(s, ctx.device) for s in host]
    path = ctx.path("lag.npz")
    rec = Recorder(path, N, segment_steps=4, ring_segments=2, staging_buffers=2, flush_interval_s=None)
    obs = torch.empty(N, 6, device=ctx.device)
    t0 = time.perf_counter()
    for s in device_steps:
        ctx.sleep(2)  # the step's data is written 2 ms of device time after record() was called
        obs.copy_(s["obs"])
        rec.record(**{**s, "obs": obs})
    host_s = time.perf_counter() - t0
    rec.close()
    bad = same_as_cpu(ctx, "lag", N, host, path, ring_segments=2)
    lag = f"host loop {host_s * 1e3:.0f} ms against {2 * T} ms of device time" if ctx.cuda else "no device to lag"
    return f"FAIL: {bad}" if bad else f"{T} steps ({T // 8} passes over a 2-segment ring), {lag}; data equal"


def check_side_stream(ctx: Context) -> str:
    needs_cuda(ctx)
    N, T = 512, 20
    host = make_steps(T, N, seed=4)
    steps = [to(s, ctx.device) for s in host]
    side = torch.cuda.Stream()
    path = ctx.path("side.npz")
    rec = Recorder(path, N, segment_steps=8, flush_interval_s=None)
    obs = torch.empty(N, 6, device=ctx.device)
    with torch.cuda.stream(side):
        for s in steps:
            ctx.sleep(3)
            obs.copy_(s["obs"])
            rec.record(**{**s, "obs": obs})
    ctx.sleep(50)  # on the default stream, which close() runs on: the tail's flush must still wait for `side`
    rec.close()
    bad = same_as_cpu(ctx, "side", N, host, path, segment_steps=8)
    return f"FAIL: {bad}" if bad else "recorded on a side stream, closed on the default one (tail flushed there); data equal"


def check_device_cuda(ctx: Context) -> str:
    needs_cuda(ctx)
    N, T = 64, 10
    host = make_steps(T, N, seed=5)
    path = ctx.path("dev.npz")
    rec = Recorder(path, N, device="cuda", segment_steps=4)
    for s in host:
        rec.record(**to(s, torch.device("cuda")))
    rec.close()
    want = torch.device("cuda", torch.cuda.current_device())
    if rec.device != want:
        return f"FAIL: recorder device {rec.device}, expected {want}"
    bad = same_as_cpu(ctx, "dev", N, host, path)
    return f"FAIL: {bad}" if bad else f'Recorder(device="cuda") records on {want}; data equal'


def check_numpy_input(ctx: Context) -> str:
    N, T = 256, 16
    host = make_steps(T, N, seed=6)
    steps = [{**to(s, ctx.device), "rew": s["rew"].numpy(), "done": s["done"].numpy()} for s in host]
    path = ctx.path("numpy.npz")
    rec = Recorder(path, N, device=ctx.device, segment_steps=4, flush_interval_s=None)
    rec.record(**steps[0])
    with sync_debug(ctx):
        for s in steps[1:]:
            rec.record(**s)
    rec.close()
    bad = same_as_cpu(ctx, "numpy", N, host, path)
    mode = "under sync debug mode" if ctx.cuda else "(CPU)"
    return f"FAIL: {bad}" if bad else f"numpy rew/done on a {ctx.device} recorder {mode}; data equal"


VOLUME_OPTIONS = [
    {"envs": [3, 17, 200], "every": 3},
    {"capture": "terminated", "window": 3, "every": 2, "dtypes": {"obs": torch.float16}},
    {"capture": -0.5, "window": 2, "flush_interval_s": 1e-9},
    {"envs": range(0, 256, 2), "fields": ("obs", "link_pos")},
]


def check_sync_debug_volume(ctx: Context) -> str:
    N, T = 256, 37
    host = make_steps(T, N, seed=7, burst=(11, 23))
    steps = [to(s, ctx.device) for s in host]
    for i, options in enumerate(VOLUME_OPTIONS):
        path = ctx.path(f"volume-{i}.npz")
        with sync_debug(ctx):  # from the first record() (allocation) to close() (the last episodes)
            record(path, N, steps, **options)
        bad = same_as_cpu(ctx, f"volume-{i}", N, host, path, **options)
        if bad:
            return f"FAIL: {sorted(options)}: {bad}"
    mode = "sync debug mode 'error' from the first record() to close()" if ctx.cuda else "(CPU)"
    return f"{len(VOLUME_OPTIONS)} volume configurations, {mode}; files equal to the CPU path's"


def check_inference_mode(ctx: Context) -> str:
    N, T = 64, 13  # the last kept row holds 1 of its 3 steps: close() ends the episodes in place
    host = make_steps(T, N, seed=8, burst=(4,))
    steps = [to(s, ctx.device) for s in host]
    for i, options in enumerate([{"every": 3}, {"capture": "terminated", "window": 2, "every": 2}]):
        path = ctx.path(f"inference-{i}.npz")
        rec = Recorder(path, N, segment_steps=4, **options)
        with torch.inference_mode():
            for s in steps:
                rec.record(**s)
        rec.close()
        bad = same_as_cpu(ctx, f"inference-{i}", N, host, path, **options)
        if bad:
            return f"FAIL: {options}: {bad}"
    return "recorded under torch.inference_mode(), closed outside it; data equal"


def check_ctrl_c_backpressure(ctx: Context) -> str:
    needs_cuda(ctx)
    N, T = 256, 40
    host = make_steps(T, N, seed=9, burst=(5, 17))
    steps = [to(s, ctx.device) for s in host]
    options = {"every": 2, "capture": "terminated", "window": 2}
    path = ctx.path("ctrlc.npz")
    rec = Recorder(path, N, segment_steps=4, ring_segments=2, staging_buffers=1, flush_interval_s=None, **options)
    rec.record(**steps[0])
    torch.cuda.synchronize()
    ctx.sleep(2000)  # the device is busy: the one staging buffer stays held by the writer
    main = threading.main_thread().ident
    timer = threading.Timer(0.5, lambda: signal.pthread_kill(main, signal.SIGINT))
    interrupted = None
    timer.start()
    try:
        for s in steps[1:]:
            t0 = time.perf_counter()
            rec.record(**s)
    except KeyboardInterrupt:
        interrupted = (rec.steps, time.perf_counter() - t0)
    finally:
        timer.cancel()
    if interrupted is None:
        return "FAIL: record() never waited long enough for the SIGINT to land in a wait"
    for s in steps[rec.steps:]:  # carry on where it stopped
        rec.record(**s)
    rec.close()
    bad = same_as_cpu(ctx, "ctrlc", N, host, path, ring_segments=2, **options)
    return f"FAIL: {bad}" if bad else (f"Ctrl-C after {interrupted[0]} steps, {interrupted[1]:.2f} s into a wait for the "
                                      "device; recording went on; data and episode index equal")


def check_pinned_bytes(ctx: Context) -> str:
    needs_cuda(ctx)
    from rollrec.bench.workload import Workload

    wl = Workload(4096, device=ctx.device)
    stats = getattr(torch.cuda, "host_memory_stats", None)
    before = stats().get("allocated_bytes.all.current", 0) if stats else None
    rec = Recorder(ctx.path("pinned.npz"), 4096, staging_buffers=2)
    rec.record(**wl.step(0))
    rows = rec.segment_length * sum(t[0].numel() * t.element_size() for t in rec._ring.tensors.values())
    held = rec.staging_bytes
    caching = sum(1 << (2 * 4096 + rec.segment_length * t[0].numel() * t.element_size() - 1).bit_length()
                  for t in rec._ring.tensors.values())
    after = stats().get("allocated_bytes.all.current", 0) if stats else None
    rec.close()
    ratio = held / (2 * rows)
    via_caching = "" if before is None else f"; torch's caching host allocator grew by {(after - before) / 1e6:.1f} MB"
    detail = (f"{held / 1e6:.1f} MB pinned for 2 x {rows / 1e6:.1f} MB of rows: {ratio:.3f}x (the caching host "
              f"allocator would hold {2 * caching / (2 * rows):.2f}x){via_caching}; {rec.staging_bytes} bytes after close")
    return detail if ratio <= 1.05 and rec.staging_bytes == 0 else f"FAIL: {detail}"


def check_two_devices(ctx: Context) -> str:
    needs_cuda(ctx)
    if torch.cuda.device_count() < 2:
        raise Skip("needs 2 GPUs")
    N, T = 512, 24
    host = make_steps(T, N, seed=10)
    path = ctx.path("dev1.npz")
    dev1 = torch.device("cuda", 1)
    steps = [to(s, dev1) for s in host]
    assert torch.cuda.current_device() == 0
    rec = Recorder(path, N, segment_steps=4, ring_segments=2, flush_interval_s=None)
    obs = torch.empty(N, 6, device=dev1)
    for s in steps:
        with torch.cuda.device(1):
            ctx.sleep(2)  # on cuda:1's stream: the rows are written late there
        obs.copy_(s["obs"])
        rec.record(**{**s, "obs": obs})
    rec.close()
    bad = same_as_cpu(ctx, "dev1", N, host, path, ring_segments=2)
    return f"FAIL: {bad}" if bad else "recorder on cuda:1 with current device 0, cuda:1 lagging; data equal"


def check_video_frames(ctx: Context) -> str:
    needs_cuda(ctx)
    from rollrec.media.background import _copy

    side = torch.cuda.Stream()
    buf = torch.zeros(64, 64, 3, dtype=torch.uint8, device=ctx.device)
    pending = []
    with torch.cuda.stream(side):
        for step in range(8):
            ctx.sleep(10)  # the frame is written long after it is handed over
            buf.fill_(30 * step)
            pending.append(_copy(buf))  # what BackgroundVideoWriter.submit keeps
    got = [int(p.result().mean()) for p in pending]  # what its thread reads, after the event
    want = [30 * s for s in range(8)]
    return f"8 frames from a side stream, read after their events: {got}" if got == want else f"FAIL: {got} != {want}"


CAMERA_OPTIONS = [{}, {"envs": [3, 17, 40]}, {"capture": "terminated", "window": 3}]


def camera_steps(T: int, N: int, options: dict[str, Any]) -> list[dict[str, Any]]:
    """`make_steps` with a 24x32 RGB camera and its uint16 depth (the detail envs' only with ``envs``)."""
    steps = make_steps(T, N, seed=11, burst=(9,))
    envs = list(options.get("envs", range(N)))
    yy, xx = np.mgrid[0:24, 0:32]
    for t, s in enumerate(steps):
        e = np.asarray(envs)[:, None, None]
        rgb = np.stack([(xx * 5 + t * 7 + e * 13) % 256, (yy * 9 + e * 31) % 256, (xx + yy + t + 0 * e) % 256], -1)
        s["images"] = {"front": torch.from_numpy(rgb.astype(np.uint8)),
                       "depth": torch.from_numpy((1000 + 10 * t + xx + 0 * e).astype(np.int32)).to(torch.uint16)}
    return steps


def check_camera_images(ctx: Context) -> str:
    try:
        import av  # noqa: F401
        import zstandard  # noqa: F401
    except ImportError:
        raise Skip("PyAV and zstandard are not installed (pip install 'rollrec[camera]')") from None
    N, T = 64, 23
    for i, options in enumerate(CAMERA_OPTIONS):
        host = camera_steps(T, N, options)
        steps = [{**to({k: v for k, v in s.items() if k != "images"}, ctx.device),
                  "images": {k: v.to(ctx.device) for k, v in s["images"].items()}} for s in host]
        path = ctx.path(f"camera-{i}.npz")
        rec = Recorder(path, N, segment_steps=4, flush_interval_s=None, **options)
        front = torch.empty_like(steps[0]["images"]["front"])
        with sync_debug(ctx):
            for s in steps:
                if ctx.cuda:
                    ctx.sleep(2)  # the frame is written 2 ms of device time after record() was called
                front.copy_(s["images"]["front"])
                rec.record(**{**s, "images": {**s["images"], "front": front}})
            rec.close()
        bad = same_as_cpu(ctx, f"camera-{i}", N, host, path, segment_steps=4, **options)
        if bad:
            return f"FAIL: {sorted(options) or 'every env'}: {bad}"
    mode = "from CUDA tensors behind a lagging device, sync debug mode 'error'" if ctx.cuda else "(CPU)"
    return f"{len(CAMERA_OPTIONS)} camera configurations (every env, envs=, capture=) {mode}; packets equal to the CPU path's"


def check_warp_stream(ctx: Context) -> str:
    needs_cuda(ctx)
    try:
        import warp as wp
    except ImportError:
        raise Skip("warp is not installed") from None
    from rollrec.adapters.warp_streams import torch_waits_for_warp

    @wp.kernel
    def slow_fill(out: wp.array(dtype=float), value: float, spins: int):
        i = wp.tid()
        x = wp.float32(0.0)
        for _ in range(spins):
            x = x * 0.5 + 1.0
        out[i] = value + x * 0.0

    out = wp.zeros(1 << 16, dtype=float, device=str(ctx.device))
    for value in (1.0, 2.0, 3.0):
        wp.launch(slow_fill, dim=out.shape[0], inputs=[out, value, 200_000], device=str(ctx.device))
        torch_waits_for_warp(out)
        copied = wp.to_torch(out).clone()
        if not bool(torch.all(copied == value)):
            return f"FAIL: the torch copy ran before the Warp kernel finished ({float(copied.min())} != {value})"
    return "torch copies after slow Warp kernels on Warp's stream saw their results"


def check_targets(ctx: Context) -> str:
    from rollrec.bench.cuda import cuda_rows

    if ctx.cuda:
        rows = cuda_rows(4096, ctx.out, steps=200, repeats=3)
    else:
        rows = cuda_rows(64, ctx.out, steps=6, repeats=1, device="cpu")
    lines, failed = [], False
    for r in rows:
        if r.value is None:
            lines.append(f"  {r.name}: {r.note}")
            continue
        verdict = "" if r.passed is None or not ctx.cuda else ("PASS" if r.passed else "FAIL")
        failed |= r.passed is False
        ref = f" vs {r.reference_name} {r.reference:.3g} {r.reference_unit or r.unit}" if r.reference is not None else ""
        ratio = f"; ratio {r.ratio:.3g} ({r.ratio_means}, target {r.target_text})" if r.ratio is not None else ""
        lines.append(f"  {verdict:4} {r.name}: {r.value:.4g} {r.unit}{ref}{ratio}{'; ' + r.note if r.note else ''}")
    body = "\n".join(lines)
    if not ctx.cuda:
        raise Skip("cpu smoke run, not CUDA figures:\n" + body)
    return ("FAIL: a target was missed\n" if failed else "every target met\n") + body


def check_pytest_cuda(ctx: Context) -> str:
    needs_cuda(ctx)
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                   if "mark.cuda" in p.read_text())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *files],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=CHECK_SECONDS - 10)
    tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    if proc.returncode != 0:
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        return f"FAIL: {tail[0]}\n  " + "\n  ".join(failed[:20] or proc.stderr.strip().splitlines()[-10:])
    return f"{tail[0]} ({len(files)} files)"


CHECKS: dict[str, Callable[[Context], str]] = {
    "odirect-pinned-staging": check_odirect_pinned_staging,
    "no-sync-host-ahead": check_no_sync_host_ahead,
    "ring-overwrite-lagging": check_ring_overwrite_lagging,
    "side-stream": check_side_stream,
    "device-cuda": check_device_cuda,
    "numpy-input": check_numpy_input,
    "sync-debug-volume": check_sync_debug_volume,
    "inference-mode": check_inference_mode,
    "ctrl-c-backpressure": check_ctrl_c_backpressure,
    "pinned-bytes": check_pinned_bytes,
    "two-devices": check_two_devices,
    "video-frames": check_video_frames,
    "camera-images": check_camera_images,
    "warp-stream": check_warp_stream,
    "targets": check_targets,
    "pytest-cuda": check_pytest_cuda,
}


# ---- running ------------------------------------------------------------------------------------------
def _calibrate(ctx: Context) -> None:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(1_000_000)
    start.record()
    torch.cuda._sleep(10_000_000)
    end.record()
    end.synchronize()
    ctx.cycles_per_ms = 10_000_000 / max(start.elapsed_time(end), 1e-3)


def _on_alarm(signum: int, frame: Any) -> None:
    raise CheckTimeout(f"no result after {CHECK_SECONDS} s")


def run_check(name: str, fn: Callable[[Context], str], ctx: Context, base: Path) -> str:
    """Run one check in a scratch folder of its own under ``base``; print and return its status."""
    ctx.out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(CHECK_SECONDS)
    try:
        detail = fn(ctx)
        status = "FAIL" if detail.startswith("FAIL") else "PASS"
        detail = detail.removeprefix("FAIL: ").removeprefix("FAIL")
    except Skip as why:
        status, detail = "SKIP", str(why)
    except BaseException as exc:  # every failure is a line of the report
        if isinstance(exc, KeyboardInterrupt) and name != "ctrl-c-backpressure":
            raise
        status = "FAIL"
        detail = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exc().splitlines(True)[-6:])
    finally:
        signal.alarm(0)
        if ctx.cuda:
            torch.cuda.set_sync_debug_mode(0)
        shutil.rmtree(ctx.out, ignore_errors=True)
    first, *rest = detail.strip().splitlines() or [""]
    print(f"{status}  {name:<24} {first}  [{time.perf_counter() - t0:.1f} s]", *rest, sep="\n" if rest else "",
          flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="run what runs without a GPU (CI)")
    parser.add_argument("--out", type=Path, default=Path(".gpu-check"), help="scratch folder (a disk: O_DIRECT)")
    parser.add_argument("--only", nargs="+", choices=sorted(CHECKS), help="run these checks only")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    if not cuda and not args.cpu_smoke:
        print("FAIL  cuda                     torch.cuda.is_available() is False "
              f"(torch {torch.__version__}); --cpu-smoke runs what needs no GPU")
        return 1
    base = args.out.resolve()
    made = not base.exists()
    base.mkdir(parents=True, exist_ok=True)
    ctx = Context(out=base, cuda=cuda, device=torch.device("cuda", torch.cuda.current_device()) if cuda
                  else torch.device("cpu"))
    if cuda:
        _calibrate(ctx)
        print(f"gpu_check on {torch.cuda.get_device_name()} ({torch.cuda.device_count()} GPU), torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, {ctx.cycles_per_ms / 1e3:.0f} MHz sleep clock", flush=True)
    else:
        print(f"gpu_check --cpu-smoke (no GPU: CUDA checks skip), torch {torch.__version__}", flush=True)
    t0 = time.perf_counter()
    try:
        statuses = [run_check(name, fn, ctx, base) for name, fn in CHECKS.items() if not args.only or name in args.only]
    finally:
        if made:
            shutil.rmtree(base, ignore_errors=True)
    counts = {s: statuses.count(s) for s in ("PASS", "FAIL", "SKIP")}
    print(f"gpu_check: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
