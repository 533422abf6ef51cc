"""`record()` against the copy limit, and the main loop's stall while segments flush.

* The copy limit is a preallocated, already-touched ``copy_`` of the same tensors into a ring of
  the same capacity, through slot views built beforehand: what any recorder must pay per step.
* `record()` is timed over one segment with no flush in flight (its own cost), then per step over
  a long rollout in the default configuration, where the writer thread flushes segments while the
  loop records: tight (the loop outruns the disk, so it must wait: backpressure) and paced at
  half the device's limit (each step starts on a fixed schedule, the CPU idle in between, as
  with a GPU env). The device's limit is the same bytes written with ``O_DIRECT`` in the same
  run (`disk.direct_write`); where the file system refuses that, the tight loop's rate stands in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from rollrec.bench.disk import direct_write
from rollrec.bench.measure import GB, Row, median, paired_ratio, percentile, remove
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

SECTION_RECORD = "1 record() vs copy"
SECTION_STALL = "3 stall while flushing"


def sync_device(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class CopyLimit:
    """Per-tensor ``copy_`` of a step into slot views of a zero-filled ring of ``capacity`` steps."""

    def __init__(self, wl: Workload, capacity: int):
        self.wl = wl
        self.capacity = capacity
        first = wl.tensors(0)
        rings = [torch.zeros((capacity, *t.shape), dtype=t.dtype, device=t.device) for t in first]
        self.slots = [[r[i] for r in rings] for i in range(capacity)]

    def step(self, t: int) -> None:
        for dst, src in zip(self.slots[t % self.capacity], self.wl.tensors(t)):
            dst.copy_(src)


def record_vs_copy(wl: Workload, out_dir: Path, *, steps: int, repeats: int) -> list[Row]:
    """Seconds per step of `record()` (one segment, nothing flushing) and of the copy limit."""
    device = torch.device(wl.device)
    limit = CopyLimit(wl, 2 * steps)
    copy_s, rec_s = [], []
    for rep in range(repeats):
        order = (0, 1) if rep % 2 == 0 else (1, 0)
        for which in order:
            if which == 0:
                limit.step(0)
                sync_device(device)
                t0 = time.perf_counter()
                for t in range(1, steps):
                    limit.step(t)
                sync_device(device)
                copy_s.append((time.perf_counter() - t0) / (steps - 1))
            else:
                path = out_dir / f"rec-{rep}.npz"
                rec = Recorder(
                    path, wl.num_envs, max_steps=steps, segment_steps=steps, max_segment_bytes=None
                )
                rec.record(**wl.step(0))  # lays the file out and allocates the ring: not per-step cost
                sync_device(device)
                t0 = time.perf_counter()
                for t in range(1, steps - 1):  # the last step of the segment hands it to the writer
                    rec.record(**wl.step(t))
                sync_device(device)
                rec_s.append((time.perf_counter() - t0) / (steps - 2))
                rec.record(**wl.step(steps - 1))
                rec.close()
                remove(path)
    del limit
    params = {"N": wl.num_envs, "steps": steps, "repeats": repeats, "step_MB": wl.step_bytes / 1e6}
    return [
        Row(
            SECTION_RECORD,
            f"record() N={wl.num_envs}",
            median(rec_s) * 1e3,
            "ms/step",
            "copy_ limit",
            median(copy_s) * 1e3,
            ratio=paired_ratio(rec_s, copy_s),
            ratio_means="record / copy",
            target=("<=", 1.5),
            params=params,
        )
    ]


class BlockedTimer:
    """Wraps the recorder's segment acquisition to add up the time the loop waits for the writer."""

    def __init__(self, rec: Recorder):
        self.seconds = 0.0
        pipeline = getattr(rec, "_pipeline", None)
        self.ok = pipeline is not None and hasattr(pipeline, "acquire")
        if self.ok:
            inner = pipeline.acquire

            def acquire(segment: int) -> None:
                t0 = time.perf_counter()
                inner(segment)
                self.seconds += time.perf_counter() - t0

            pipeline.acquire = acquire


def paced_loop(
    step_fn: Callable[[int], None], steps: int, period_s: float, device: torch.device | None = None, *, first: int = 0
) -> tuple[list[float], float]:
    """Per-call seconds of ``step_fn(t)`` for t in ``first .. steps - 1`` and the loop's total; each
    call starts ``period_s`` after the last was due (at once when late; 0: flat out). With
    ``device``, the total includes waiting for the work queued on it."""
    per = []
    t_start = due = time.perf_counter()
    for t in range(first, steps):
        if period_s:
            due += period_s
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        step_fn(t)
        per.append(time.perf_counter() - t0)
    if device is not None:
        sync_device(device)
    return per, time.perf_counter() - t_start


def _stall_run(wl: Workload, out_dir: Path, steps: int, period_s: float, repeats: int) -> dict:
    device = torch.device(wl.device)
    rec_per: list[float] = []
    copy_per: list[float] = []
    blocked, totals, close_s, rates = [], [], [], []
    seg = 0
    for rep in range(repeats):
        path = out_dir / f"stall-{rep}.npz"
        rec = Recorder(path, wl.num_envs, max_steps=steps)
        rec.record(**wl.step(0))
        seg = rec.segment_length
        timer = BlockedTimer(rec)
        limit = CopyLimit(wl, rec.segment_length * rec.ring_segments)
        per, _ = paced_loop(limit.step, steps, period_s, device)
        copy_per += per[1:]
        del limit
        t0 = time.perf_counter()
        per, total = paced_loop(lambda t, rec=rec: rec.record(**wl.step(t + 1)), steps - 1, period_s, device)
        tc = time.perf_counter()
        rec.close()
        close_s.append(time.perf_counter() - tc)
        rates.append((steps - 1) * wl.step_bytes / (time.perf_counter() - t0))
        rec_per += per
        blocked.append(timer.seconds if timer.ok else float("nan"))
        totals.append(total)
        remove(path)
    return {
        "rec": rec_per,
        "copy": copy_per,
        "blocked": sum(blocked),
        "total": sum(totals),
        "segment_steps": seg,
        "close_s": median(close_s),
        "rate": median(rates),
        "blocked_measured": not any(math.isnan(b) for b in blocked),
    }


def stall(wl: Workload, out_dir: Path, *, steps: int, repeats: int) -> list[Row]:
    """Per-step `record()` times while segments flush: tight loop, then paced at half the device's limit."""
    rows = []
    tight = _stall_run(wl, out_dir, steps, 0.0, repeats)
    limit_s = direct_write(out_dir / "limit.bin", steps * wl.step_bytes)
    if limit_s is not None:
        limit, limit_name = steps * wl.step_bytes / limit_s, "device limit (O_DIRECT)"
    else:  # in the tight loop the producer waits for the writer, so recording runs at its pace
        limit, limit_name = tight["rate"], "writer rate (O_DIRECT refused here)"
    period = wl.step_bytes / (0.5 * limit)
    paced = _stall_run(wl, out_dir, steps, period, repeats)
    for label, run in (("tight loop", tight), (f"50% of device limit ({period * 1e3:.1f} ms a step)", paced)):
        params = {"N": wl.num_envs, "steps": steps, "repeats": repeats, "segment_steps": run["segment_steps"]}
        p50_copy = median(run["copy"])
        for stat, q in (("p50", 50), ("p99", 99), ("max", 100)):
            v = percentile(run["rec"], q)
            rows.append(
                Row(
                    SECTION_STALL,
                    f"record() {stat}, {label}",
                    v * 1e3,
                    "ms/step",
                    f"copy_ {stat}",
                    percentile(run["copy"], q) * 1e3,
                    ratio=v / p50_copy,
                    ratio_means=f"record {stat} / copy p50",
                    params=params,
                )
            )
        frac = run["blocked"] / run["total"] if run["blocked_measured"] else None
        rows.append(
            Row(
                SECTION_STALL,
                f"blocked on backpressure, {label}",
                None if frac is None else 100 * frac,
                "% of loop",
                ratio=frac,
                ratio_means="blocked / loop time",
                target=("<=", 0.01) if run is paced else None,
                note=f"{limit_name} {limit / GB:.2f} GB/s; recorded at {run['rate'] / GB:.2f} GB/s"
                + ("" if run["blocked_measured"] else "; not measurable (engine internals changed)"),
                params=params,
            )
        )
    return rows
