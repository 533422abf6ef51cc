"""CUDA: host time per `record()`, synchronisations, device-to-host flush rate, step-loop slowdown.

Skipped without a CUDA device. Syncs are counted with ``torch.cuda.set_sync_debug_mode("warn")``
(every synchronising call on the main thread raises a warning; the writer thread is the only
place the engine waits on the device). The flush rate is the end-to-end rate of a recording
(device ring -> pinned staging on a side stream -> file), against a plain pinned
``copy_(non_blocking=True)`` of the same bytes. The step loop runs a synthetic env step of about
1 ms of GPU time (``torch.cuda._sleep``) with recording on and off.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch

from rollrec.bench.measure import GB, Row, median, percentile, remove, skipped
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

SECTION = "6 CUDA"


def _sleep_cycles_per_ms() -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cycles = 1_000_000
    torch.cuda._sleep(cycles)  # warm
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return cycles / max(start.elapsed_time(end), 1e-6)


def cuda_rows(num_envs: int, out_dir: Path, *, steps: int, repeats: int) -> list[Row]:
    if not torch.cuda.is_available():
        return [skipped(SECTION, "CUDA figures", "no CUDA device")]
    wl = Workload(num_envs, device="cuda")
    N, nbytes = wl.num_envs, steps * wl.step_bytes
    params = {"N": N, "steps": steps, "repeats": repeats, "device": torch.cuda.get_device_name()}
    rows = []

    # Host time per record() and syncs on the main thread.
    host, syncs, e2e = [], 0, []
    for rep in range(repeats):
        path = out_dir / f"cuda-{rep}.npz"
        torch.cuda.synchronize()
        t_start = time.perf_counter()
        rec = Recorder(path, N, max_steps=steps)
        rec.record(**wl.step(0))  # allocates the ring and staging (may sync)
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for t in range(1, steps):
                    t0 = time.perf_counter()
                    rec.record(**wl.step(t))
                    host.append(time.perf_counter() - t0)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        syncs += sum("synchroniz" in str(w.message).lower() for w in caught)
        rec.close()
        e2e.append(time.perf_counter() - t_start)
        remove(path)
    rows.append(
        Row(
            SECTION,
            f"host time per record(), N={N}",
            median(host) * 1e6,
            "us",
            ratio=median(host) / 50e-6,
            ratio_means="host time / 50 us",
            target=("<=", 1.0),
            note=f"p99 {percentile(host, 99) * 1e6:.0f} us",
            params=params,
        )
    )
    rows.append(
        Row(
            SECTION,
            "synchronisations in record()",
            float(syncs),
            "count",
            ratio=float(syncs),
            ratio_means="syncs",
            target=("<=", 0.0),
            params=params,
        )
    )

    # Plain pinned copy of the same bytes, ring-sized chunks.
    src = torch.empty(min(nbytes, 256 << 20), dtype=torch.uint8, device="cuda").fill_(1)
    dst = torch.empty(src.numel(), dtype=torch.uint8, pin_memory=True)
    copy_s = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        done = 0
        while done < nbytes:
            n = min(src.numel(), nbytes - done)
            dst[:n].copy_(src[:n], non_blocking=True)
            done += n
        torch.cuda.synchronize()
        copy_s.append(time.perf_counter() - t0)
    del src, dst
    rows.append(
        Row(
            SECTION,
            f"flush rate (record + D2H + file), N={N}",
            nbytes / median(e2e) / GB,
            "GB/s",
            "pinned copy_",
            nbytes / median(copy_s) / GB,
            ratio=median(copy_s) / median(e2e),
            ratio_means="rollrec / pinned copy rate",
            target=(">=", 0.7),
            note="includes the page-cache write of the file",
            params=params,
        )
    )

    # Step loop with a ~1 ms GPU env step, recording on vs off.
    cycles = int(_sleep_cycles_per_ms())
    on, off = [], []
    for rep in range(repeats):
        for record in (False, True) if rep % 2 == 0 else (True, False):
            path = out_dir / f"loop-{rep}.npz"
            rec = Recorder(path, N, max_steps=steps) if record else None
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for t in range(steps):
                torch.cuda._sleep(cycles)
                if rec is not None:
                    rec.record(**wl.step(t))
            torch.cuda.synchronize()
            (on if record else off).append(time.perf_counter() - t0)
            if rec is not None:
                rec.close()
                remove(path)
    slowdown = median([a / b for a, b in zip(on, off)]) - 1.0
    rows.append(
        Row(
            SECTION,
            f"step loop slowdown, 1 ms env step, N={N}",
            100 * slowdown,
            "%",
            "recording off",
            median(off) / steps * 1e3,
            reference_unit="ms/step",
            ratio=slowdown,
            ratio_means="on / off - 1",
            target=("<=", 0.05),
            params=params,
        )
    )
    return rows
