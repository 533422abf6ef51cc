"""Camera images: encoding rate, bytes against raw frames, `record()` host time, peak RSS against T.

The run: N envs of the benchmark workload (`rollrec.bench.workload`), 64 of them detail envs
(``envs=``, spread over 0..N-1) with a 128x128 RGB camera, given for the detail envs only
(``images={"front": [64, 128, 128, 3]}``: what a renderer of the kept envs gives). The frames
are the walker's rendered chase camera (`rollrec.envs.camera.WalkerCamera`), rendered once into a
bank of ``BANK_STEPS`` steps of ``BANK_WALKERS`` walkers; stream j plays walker ``j % BANK_WALKERS``
forward and back (ping-pong) from its own offset, so every stream moves continuously like a camera
and no two streams are alike at a step. Building a step's images from the bank is never timed.

Figures (medians over ``repeats``, each repeat measuring every configuration back to back):

- frames encoded per second: frames over the wall time the writer spent in the camera's
  ``encode_rows`` (its encoder threads: `rollrec.engine.images`), and frames over the whole
  recording (first `record` to `close` returned);
- bytes: the camera's members in the finished file (packets and index) against the raw frames,
  lossy (the default) and lossless;
- `record()` host time per step with the camera, waits for the writer (backpressure) left out,
  against a ``copy_`` of the same tensors (the workload's and the images) into a preallocated ring,
  and against the same recording without the camera; and the recording thread's own CPU time in
  `record()` (``time.thread_time``) against the copy's: on a machine with fewer free cores than
  busy threads the wall time includes waiting for a core (the encoders run at a lower priority,
  but other processes do not), the CPU time is the work `record()` itself does;
- peak RSS of a fresh process recording ``rss_steps`` short and long: the ring and the encoders
  bound memory, not T.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rollrec.bench.measure import Row, median, paired_ratio, remove
from rollrec.bench.record import BlockedTimer, CopyLimit
from rollrec.bench.workload import Workload

SECTION = "10 camera images"
DETAIL_ENVS = 64
SIZE = 128
BANK_STEPS = 100
BANK_WALKERS = 16


def render_bank(path: Path, *, steps: int = BANK_STEPS, walkers: int = BANK_WALKERS, size: int = SIZE) -> Path:
    """The walker camera's frames ``[steps, walkers, size, size, 3]`` uint8, saved at ``path`` (reused when there)."""
    if path.exists():
        return path
    from rollrec.envs import GaitPolicy, WalkerEnv
    from rollrec.envs.camera import WalkerCamera

    env = WalkerEnv(walkers * 4, seed=7)
    camera = WalkerCamera(env, envs=range(0, walkers * 4, 4), size=(size, size))
    policy = GaitPolicy()
    obs = env.reset()
    frames = np.empty((steps, walkers, size, size, 3), np.uint8)
    with torch.no_grad():
        for t in range(steps):
            frames[t] = camera.render()[0].numpy()
            obs = env.step(policy(obs))[0]
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, frames)
    tmp.rename(path)
    return path


class CameraFrames:
    """Step t's images of ``count`` streams from the bank (see the module docstring)."""

    def __init__(self, bank: np.ndarray, count: int):
        self.bank = torch.from_numpy(np.asarray(bank))
        self.count = count
        b = self.bank.shape[0]
        self._period = 2 * b - 2
        self._walker = torch.arange(count) % self.bank.shape[1]
        self._offset = (torch.arange(count) * 23) % self._period
        self._b = b

    def step(self, t: int) -> torch.Tensor:
        phase = (self._offset + t) % self._period
        row = torch.where(phase < self._b, phase, self._period - phase)  # forward, then back
        return self.bank[row, self._walker]

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.bank.shape[2:]))


def detail_envs(num_envs: int) -> list[int]:
    count = min(DETAIL_ENVS, num_envs)
    return list(range(0, num_envs, num_envs // count))[:count]


def _camera_bytes(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.compress_size for i in zf.infolist() if i.filename.startswith("images/"))


def _record(wl: Workload, frames: CameraFrames | None, path: Path, steps: int, **options: Any) -> dict[str, float]:
    """One recording: record() host seconds per step (waits left out), encode seconds and frames,
    wall seconds, camera bytes."""
    from rollrec.engine import Recorder
    from rollrec.engine.images import CameraEncoder

    encode = {"seconds": 0.0, "frames": 0}
    real = CameraEncoder.encode_rows

    def timed(self, rows, first_row):
        t0 = time.perf_counter()
        try:
            return real(self, rows, first_row)
        finally:
            encode["seconds"] += time.perf_counter() - t0
            encode["frames"] += rows.shape[0] * rows.shape[1]

    CameraEncoder.encode_rows = timed
    try:
        start = time.perf_counter()
        rec = Recorder(path, wl.num_envs, max_steps=steps, flush_interval_s=None, envs=detail_envs(wl.num_envs),
                       **options)
        images = (lambda t: {"front": frames.step(t)}) if frames is not None else (lambda t: {})
        rec.record(**wl.step(0), images=images(0) or None)
        blocked = BlockedTimer(rec)
        total = cpu = 0.0
        for t in range(1, steps):
            step, img = wl.step(t), images(t) or None
            t0, c0 = time.perf_counter(), time.thread_time()
            rec.record(**step, images=img)
            total += time.perf_counter() - t0
            cpu += time.thread_time() - c0
        rec.close()
        wall = time.perf_counter() - start
    finally:
        CameraEncoder.encode_rows = real
    nbytes = _camera_bytes(path) if frames is not None else 0
    remove(path)
    return {"record_s": (total - blocked.seconds) / (steps - 1), "cpu_s": cpu / (steps - 1),
            "blocked_s": blocked.seconds, "wall_s": wall,
            "encode_s": encode["seconds"], "frames": encode["frames"], "bytes": nbytes}


def _copy(wl: Workload, frames: CameraFrames, steps: int) -> tuple[float, float]:
    """Mean host seconds and thread CPU seconds per step of a ``copy_`` of the same tensors (the
    workload's and the images)."""
    limit = CopyLimit(wl, min(steps, 64))
    image_ring = torch.zeros((limit.capacity, *frames.step(0).shape), dtype=torch.uint8)
    total = cpu = 0.0
    for t in range(steps):
        tensors, img = wl.tensors(t), frames.step(t)
        t0, c0 = time.perf_counter(), time.thread_time()
        for dst, src in zip(limit.slots[t % limit.capacity], tensors):
            dst.copy_(src)
        image_ring[t % limit.capacity].copy_(img)
        if t:
            total += time.perf_counter() - t0
            cpu += time.thread_time() - c0
    return total / (steps - 1), cpu / (steps - 1)


_RSS = """
import json, sys, torch, numpy as np
torch.set_num_threads(1)
from rollrec.bench.workload import Workload
from rollrec.bench.camera import CameraFrames, detail_envs
N, T, bank, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
wl = Workload(N)
frames = CameraFrames(np.load(bank, mmap_mode="r"), len(detail_envs(N)))
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
base = hwm()
from rollrec.engine import Recorder
with Recorder(path, N, max_steps=T, envs=detail_envs(N)) as rec:
    for t in range(T):
        rec.record(**wl.step(t), images={"front": frames.step(t)})
print(json.dumps({'base': base, 'peak': hwm()}))
"""


def _peak_rss(num_envs: int, steps: int, bank: Path, out_dir: Path) -> dict[str, int]:
    path = out_dir / f"camera-rss-{steps}.npz"
    try:
        out = subprocess.run([sys.executable, "-c", _RSS, str(num_envs), str(steps), str(bank), str(path)],
                             check=True, capture_output=True, text=True).stdout
    finally:
        remove(path)
    return json.loads(out.strip().splitlines()[-1])


def camera_rows(wl: Workload, out_dir: Path, *, steps: int, repeats: int, rss_steps: tuple[int, int] | None,
                bank: Path | None = None) -> list[Row]:
    """The section's rows (see the module docstring); ``bank``: a saved frame bank to reuse."""
    bank = render_bank(bank or out_dir / "camera-bank.npy")
    frames = CameraFrames(np.load(bank), len(detail_envs(wl.num_envs)))
    runs: dict[str, list[dict[str, float]]] = {"lossy": [], "lossless": [], "none": []}
    copies: list[tuple[float, float]] = []
    for rep in range(repeats):
        order = ["copy", "lossy", "lossless", "none"]
        for which in order if rep % 2 == 0 else order[::-1]:
            if which == "copy":
                copies.append(_copy(wl, frames, steps))
            elif which == "none":
                runs["none"].append(_record(wl, None, out_dir / "camera-none.npz", steps))
            else:
                runs[which].append(_record(wl, frames, out_dir / f"camera-{which}.npz", steps, image_quality=which))
    M = len(detail_envs(wl.num_envs))
    raw = steps * M * frames.frame_bytes
    params = {"N": wl.num_envs, "detail_envs": M, "size": list(frames.bank.shape[2:]), "steps": steps,
              "repeats": repeats}
    rows = []
    for quality in ("lossy", "lossless"):
        r = runs[quality]
        fps = [x["frames"] / x["encode_s"] for x in r]
        rows.append(Row(SECTION, f"frames encoded per second, {quality}", median(fps), "frames/s",
                        "frames per second of the whole recording", median([steps * M / x["wall_s"] for x in r]),
                        ratio_means="", note=f"{median([x['encode_s'] for x in r]):.1f} s encoding {steps * M} frames; "
                        f"writer waited on by record() {median([x['blocked_s'] for x in r]):.1f} s", params=params))
        rows.append(Row(SECTION, f"bytes, {quality}", median([x["bytes"] for x in r]) / 1e6, "MB", "raw frames",
                        raw / 1e6, ratio=raw / median([x["bytes"] for x in r]), ratio_means="raw / stored",
                        target=(">=", 20.0) if quality == "lossy" else None, params=params))
    lossy = [x["record_s"] for x in runs["lossy"]]
    copy_wall, copy_cpu = [c[0] for c in copies], [c[1] for c in copies]
    rows.append(Row(SECTION, "record() host time with the camera", median(lossy) * 1e3, "ms/step",
                    "copy_ of the same tensors (workload + images)", median(copy_wall) * 1e3,
                    ratio=paired_ratio(lossy, copy_wall), ratio_means="record / copy", target=("<=", 1.3),
                    note="backpressure waits left out", params=params))
    lossy_cpu = [x["cpu_s"] for x in runs["lossy"]]
    rows.append(Row(SECTION, "record() CPU time of the recording thread, with the camera", median(lossy_cpu) * 1e3,
                    "ms/step", "the copy's CPU time", median(copy_cpu) * 1e3, ratio=paired_ratio(lossy_cpu, copy_cpu),
                    ratio_means="record / copy", note="time.thread_time(): the work record() does, without waiting "
                    "for a core", params=params))
    none = [x["record_s"] for x in runs["none"]]
    rows.append(Row(SECTION, "record() host time without the camera", median(none) * 1e3, "ms/step",
                    "record() with the camera", median(lossy) * 1e3, ratio=paired_ratio(lossy, none),
                    ratio_means="with / without", params=params))
    if rss_steps is not None and Path("/proc/self/status").exists():
        short, long = rss_steps
        a, b = _peak_rss(wl.num_envs, short, bank, out_dir), _peak_rss(wl.num_envs, long, bank, out_dir)
        mib = 1 << 20
        rows.append(Row(SECTION, f"peak RSS at T={long} vs T={short}", b["peak"] / mib, "MiB", f"T={short}",
                        a["peak"] / mib, ratio=b["peak"] / a["peak"], ratio_means=f"peak(T={long}) / peak(T={short})",
                        target=("<=", 1.1), note=f"{(long - short) * M * frames.frame_bytes / mib:.0f} MiB more raw frames",
                        params={**params, "short": short, "long": long}))
    return rows


__all__ = ["SECTION", "CameraFrames", "camera_rows", "detail_envs", "render_bank"]
