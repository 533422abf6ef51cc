"""Sustained recording: GBs recorded end to end against the device's own limit, in one run.

* The device limit: the same number of bytes written with ``O_DIRECT`` (`disk.direct_write`),
  measured right before and right after rollrec's run; their mean is the reference.
* rollrec: `Recorder` with ``max_steps`` known, the loop as fast as it goes (it waits for the
  disk when the ring is full), from the constructor to the end of ``close()``. Its ``record()``
  median and p99 host time, and the peak of the machine's ``Dirty:`` pages meanwhile.
* ``np.save`` + ``fsync`` of the same number of bytes: what a buffered writer sustains once it
  has to reach the disk (the workload's steps repeated, see `disk.np_save_fsync`).
* rollrec with ``max_steps`` unknown (``stop_on=``, Ctrl-C, open-ended loops): the same bytes,
  the file laid out with room for as many steps as the disk holds and compacted at the end,
  against the same device limit.
* 50% load: the producer paced at half the device limit (each step starts on a fixed schedule,
  as a simulator that takes the rest of the time would): the fraction of the loop spent blocked
  waiting for the writer, and ``record()``'s median and p99 against a plain ``copy_`` of the same
  tensors paced the same way.
* The CPU side on its own (`cpu_side`): the same recording into a memory file system (tmpfs,
  ``/dev/shm``), against writing the same bytes there (the "device" is then a memory copy), so
  what rollrec's own threads cost is visible without a disk in the way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from rollrec.bench.disk import DirtyPeak, direct_write, np_save_fsync
from rollrec.bench.measure import GB, Row, median, paired_ratio, percentile, remove, skipped
from rollrec.bench.record import BlockedTimer, CopyLimit, paced_loop
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

SECTION = "9 sustained"
DIRTY_BUDGET = 256 << 20  # the most dirty page cache a recording may leave the machine with


def record_run(wl: Workload, path: Path, steps: int, period: float = 0.0, known: bool = True, **recorder_kwargs) -> dict:
    """Record ``steps`` steps (paced by ``period`` s, 0: flat out) and close; times, blocking, dirty pages.
    ``known``: ``max_steps`` given (else the recording's length is unknown to the recorder)."""
    with DirtyPeak() as dirty:
        t0 = time.perf_counter()
        rec = Recorder(path, wl.num_envs, max_steps=steps if known else None, **recorder_kwargs)
        rec.record(**wl.step(0))  # lays the file out and allocates the ring
        timer = BlockedTimer(rec)
        per, loop = paced_loop(lambda t: rec.record(**wl.step(t)), steps, period, first=1)
        t_close = time.perf_counter()
        rec.close()
        t_end = time.perf_counter()
    direct = bool(getattr(rec._stream, "direct", False))
    remove(path)
    return {
        "seconds": t_end - t0, "close": t_end - t_close, "per": per, "loop": loop,
        "blocked": timer.seconds if timer.ok else float("nan"), "dirty": dirty, "direct": direct,
    }


def sustained(wl: Workload, out_dir: Path, *, nbytes: int, load_bytes: int, copy_steps: int = 200) -> list[Row]:
    """Rows of the section (see the module docstring) for ``nbytes`` recorded, ``load_bytes`` at 50% load."""
    steps = max(2, nbytes // wl.step_bytes)
    total = steps * wl.step_bytes
    N = wl.num_envs
    params = {"N": N, "steps": steps, "GB": total / GB}
    before = direct_write(out_dir / "limit.bin", total)
    run = record_run(wl, out_dir / "sustained.npz", steps)
    after = direct_write(out_dir / "limit.bin", total)
    grown = record_run(wl, out_dir / "unknown.npz", steps, known=False)
    last = direct_write(out_dir / "limit.bin", total)
    save_s = np_save_fsync(out_dir / "np.npy", wl.flat_bytes(wl.pool_steps), total)
    rate = total / run["seconds"]
    save_rate = total / save_s
    how = "direct I/O" if run["direct"] else "buffered (direct I/O refused)"
    if before is None or after is None:
        return [
            Row(SECTION, f"rollrec, N={N}, {total / GB:.1f} GB", rate / GB, "GB/s", note=how, params=params),
            skipped(SECTION, "O_DIRECT write (device limit)", "the scratch file system refuses O_DIRECT", **params),
        ]
    limit = 2 * total / (before + after)
    grown_limit = 2 * total / (after + last)
    grown_rate = total / grown["seconds"]
    rows = [
        Row(SECTION, f"rollrec, N={N}, {total / GB:.1f} GB, max_steps known", rate / GB, "GB/s",
            "O_DIRECT write", limit / GB, ratio=rate / limit, ratio_means="rollrec / device limit", target=(">=", 0.8),
            note=f"{how}; record {run['seconds'] - run['close']:.1f} s + close {run['close']:.2f} s; "
            f"{steps * N / run['seconds'] / 1e6:.2f} M env-steps/s", params=params),
        Row(SECTION, f"rollrec, N={N}, {total / GB:.1f} GB, max_steps unknown", grown_rate / GB, "GB/s",
            "O_DIRECT write", grown_limit / GB, ratio=grown_rate / grown_limit, ratio_means="rollrec / device limit",
            target=(">=", 0.8), note=f"record {grown['seconds'] - grown['close']:.1f} s + close (compaction) "
            f"{grown['close']:.2f} s; device {total / last / GB:.2f} GB/s after it", params=params),
        Row(SECTION, "np.save + fsync, same bytes", save_rate / GB, "GB/s", "O_DIRECT write", limit / GB,
            ratio=save_rate / limit, ratio_means="np.save / device limit", params=params),
        Row(SECTION, "O_DIRECT write (device limit)", limit / GB, "GB/s",
            note=f"64 MiB writes, synced; {total / before / GB:.2f} GB/s before rollrec's run, {total / after / GB:.2f} after",
            params=params),
    ]
    for stat, q in (("p50", 50), ("p99", 99)):
        rows.append(Row(SECTION, f"record() {stat}, flat out", percentile(run["per"], q) * 1e3, "ms/step",
                        note=f"blocked {100 * run['blocked'] / run['loop']:.0f}% of the loop (the disk is the limit)",
                        params=params))
    dirty = run["dirty"]
    if dirty.peak is not None:
        rows.append(Row(SECTION, "peak Dirty: while recording", dirty.peak / 2**20, "MiB", "budget", DIRTY_BUDGET / 2**20,
                        ratio=dirty.peak / DIRTY_BUDGET, ratio_means="peak / budget", target=("<=", 1.0),
                        note=f"machine-wide /proc/meminfo, {dirty.before / 2**20:.0f} MiB before", params=params))
    rows += _half_load(wl, out_dir, load_bytes, limit, copy_steps)
    return rows


def _half_load(wl: Workload, out_dir: Path, load_bytes: int, limit: float, copy_steps: int) -> list[Row]:
    steps = max(2, load_bytes // wl.step_bytes)
    period = wl.step_bytes / (0.5 * limit)
    limit_copy = CopyLimit(wl, 32)
    copy, _ = paced_loop(limit_copy.step, min(steps, copy_steps), period, first=1)
    del limit_copy
    run = record_run(wl, out_dir / "half.npz", steps, period)
    params = {"N": wl.num_envs, "steps": steps, "GB": steps * wl.step_bytes / GB, "period_ms": period * 1e3}
    label = f"50% of device limit ({period * 1e3:.1f} ms a step)"
    rows = []
    for stat, q, target in (("p50", 50, ("<=", 1.2)), ("p99", 99, ("<=", 3.0))):
        v, c = percentile(run["per"], q), percentile(copy, q)
        rows.append(Row(SECTION, f"record() {stat}, {label}", v * 1e3, "ms/step", f"copy_ {stat}", c * 1e3,
                        ratio=v / c, ratio_means=f"record {stat} / copy {stat}", target=target, params=params))
    frac = run["blocked"] / run["loop"]
    rows.append(Row(SECTION, f"blocked on backpressure, {label}", 100 * frac, "% of loop", ratio=frac,
                    ratio_means="blocked / loop time", target=("<=", 0.01),
                    note=f"producer {wl.step_bytes / period / GB:.2f} GB/s; peak Dirty: "
                    f"{(run['dirty'].peak or 0) / 2**20:.0f} MiB", params=params))
    return rows


def cpu_side(wl: Workload, fast_dir: Path, *, nbytes: int) -> list[Row]:
    """rollrec recording into ``fast_dir`` (a memory file system) against writing the same bytes there."""
    if not fast_dir.is_dir() or not os.access(fast_dir, os.W_OK):
        return [skipped(SECTION, "CPU side (memory file system)", f"{fast_dir} is not a writable folder")]
    steps = max(2, nbytes // wl.step_bytes)
    total = steps * wl.step_bytes
    d = Path(tempfile.mkdtemp(prefix="rollrec-cpu-", dir=fast_dir))
    try:
        limits, runs = [], []
        for _ in range(2):  # interleaved: the memory's own rate moves with the machine's load
            limits.append(direct_write(d / "limit.bin", total) or float("nan"))
            runs.append(record_run(wl, d / "fast.npz", steps))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    limit = total / median(limits)
    rate = total / median([r["seconds"] for r in runs])
    how = "direct I/O" if runs[0]["direct"] else "buffered"
    params = {"N": wl.num_envs, "steps": steps, "GB": total / GB, "dir": str(fast_dir)}
    return [Row(SECTION, f"CPU side: rollrec into {fast_dir} (tmpfs), {total / GB:.1f} GB", rate / GB, "GB/s",
                "write of the same bytes there", limit / GB, ratio=paired_ratio(limits, [r["seconds"] for r in runs]),
                ratio_means="rollrec / memory file system's rate", target=(">=", 0.8),
                note=f"{how}; the 'device' is a memory copy: what rollrec's threads cost on a disk this fast",
                params=params)]


__all__ = ["SECTION", "cpu_side", "record_run", "sustained"]
