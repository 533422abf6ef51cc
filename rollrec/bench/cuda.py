"""CUDA: host time per `record()`, synchronisations, flush rate against the disk, step-loop slowdown.

Skipped without a CUDA device (``device="cpu"`` runs the same code on the CPU, for a smoke test:
no sync counting there). Every timed loop covers steps 1..T: the first `record()` allocates the
ring, the pinned staging and lays out the file, once per recording, and is timed by no row.

- Host time per `record()`: each call of steps 1..T, median and p99, against 50 us.
- Syncs: ``torch.cuda.set_sync_debug_mode("warn")`` is on for steps 1..T and ``close()``: every
  synchronising call (on any thread: the mode is process-wide) raises a warning. It does not see
  ``Event.synchronize`` or waits on queues; `scripts/gpu_check.py` checks that the host runs
  ahead of the device.
- Flush rate: the bytes of the recording over the time from the end of its first `record()` to
  the end of `close()` (device ring -> pinned staging on a side stream -> file, committed),
  against an ``O_DIRECT`` write of the same bytes to the same disk, measured in the same repeat
  (`rollrec.bench.disk.direct_write`): the disk is what a flush can reach.
- Step loop: a synthetic env step of about 1 ms of GPU time (``torch.cuda._sleep``), steps 1..T
  with recording on and off, in alternating order.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path

import torch

from rollrec.bench.disk import direct_write
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


def _synchronize(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


@contextlib.contextmanager
def _counting_syncs(cuda: bool, found: list[str]):
    """Collect the messages of synchronising calls into ``found`` (CUDA; nothing on CPU)."""
    if not cuda:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(0)
    found += [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]


def cuda_rows(num_envs: int, out_dir: Path, *, steps: int, repeats: int, device: str = "cuda") -> list[Row]:
    cuda = torch.device(device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        return [skipped(SECTION, "CUDA figures", "no CUDA device")]
    steps = max(int(steps), 2)
    wl = Workload(num_envs, device=device)
    N, nbytes = wl.num_envs, steps * wl.step_bytes
    params = {"N": N, "steps": steps, "repeats": repeats,
              "device": torch.cuda.get_device_name() if cuda else "cpu (smoke run, not a CUDA figure)"}
    rows = []

    # Host time per record() and syncs (steps 1..T); the flush rate against the disk, same repeat.
    host, syncs, e2e, disk = [], [], [], []
    for rep in range(repeats):
        path = out_dir / f"cuda-{rep}.npz"
        rec = Recorder(path, N, max_steps=steps)
        rec.record(**wl.step(0))  # allocates the ring and the staging, lays out the file
        _synchronize(cuda)
        t_start = time.perf_counter()
        with _counting_syncs(cuda, syncs):
            for t in range(1, steps):
                t0 = time.perf_counter()
                rec.record(**wl.step(t))
                host.append(time.perf_counter() - t0)
            rec.close()
        e2e.append(time.perf_counter() - t_start)
        remove(path)
        seconds = direct_write(out_dir / f"disk-{rep}.bin", nbytes)
        if seconds is not None:
            disk.append(seconds)
    rows.append(Row(
        SECTION, f"host time per record(), N={N}", median(host) * 1e6, "us",
        ratio=median(host) / 50e-6, ratio_means="host time / 50 us", target=("<=", 1.0),
        note=f"p99 {percentile(host, 99) * 1e6:.0f} us; steps 1..T (the first call allocates)", params=params,
    ))
    if cuda:
        rows.append(Row(
            SECTION, "synchronisations in record() and close()", float(len(syncs)), "count",
            ratio=float(len(syncs)), ratio_means="syncs", target=("<=", 0.0),
            note=syncs[0][:120] if syncs else "sync debug mode, every thread", params=params,
        ))
    rate = nbytes / median(e2e) / GB
    if disk:
        rows.append(Row(
            SECTION, f"flush rate (D2H + file, committed), N={N}", rate, "GB/s",
            "O_DIRECT write, same disk", nbytes / median(disk) / GB,
            ratio=median(disk) / median(e2e), ratio_means="rollrec / disk O_DIRECT rate", target=(">=", 0.8),
            note="from the end of the first record() to the end of close()", params=params,
        ))
    else:
        rows.append(Row(SECTION, f"flush rate (D2H + file, committed), N={N}", rate, "GB/s",
                        note="no O_DIRECT reference: this file system refuses direct I/O", params=params))

    # Step loop with a ~1 ms GPU env step (CPU: a 1 ms host sleep), recording on vs off, steps 1..T.
    cycles = int(_sleep_cycles_per_ms()) if cuda else 0

    def env_step() -> None:
        if cuda:
            torch.cuda._sleep(cycles)
        else:
            time.sleep(1e-3)

    on, off = [], []
    for rep in range(repeats):
        for record in (False, True) if rep % 2 == 0 else (True, False):
            path = out_dir / f"loop-{rep}.npz"
            rec = Recorder(path, N, max_steps=steps) if record else None
            env_step()
            if rec is not None:
                rec.record(**wl.step(0))
            _synchronize(cuda)
            t0 = time.perf_counter()
            for t in range(1, steps):
                env_step()
                if rec is not None:
                    rec.record(**wl.step(t))
            _synchronize(cuda)
            (on if record else off).append(time.perf_counter() - t0)
            if rec is not None:
                rec.close()
                remove(path)
    slowdown = median([a / b for a, b in zip(on, off)]) - 1.0
    rows.append(Row(
        SECTION, f"step loop slowdown, 1 ms env step, N={N}", 100 * slowdown, "%",
        "recording off", median(off) / (steps - 1) * 1e3, reference_unit="ms/step",
        ratio=slowdown, ratio_means="on / off - 1", target=("<=", 0.05), params=params,
    ))
    return rows
