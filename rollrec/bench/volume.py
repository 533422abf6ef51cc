"""Volume control: bytes written and `record()` host time per option, against a plain copy.

Each configuration records the same tensors (the benchmark workload, `Workload`, with an
episode schedule: every env's episodes end by time limit after `EPISODE_STEPS` steps, staggered
across envs, and 1% of them fail earlier, by termination) with one set of `Recorder` options:

- everything (no option: format v1);
- 64 detail envs (``envs=``, spread over 0..N-1, so the selection is an ``index_select``; N/16
  when N < 1024);
- ``every=4``;
- ``dtypes={"obs": torch.float16}``;
- the trigger: ``capture="terminated", window=50``, every env's light fields every step.

Figures, per configuration, measured back to back in each repeat:

- ``record()`` host time per step: the mean over the steps (with ``every=4``, one copy and three
  folds), less the time spent waiting for the writer to free a segment (backpressure: the disk's
  speed, not `record`'s; measured as in the stall section), the first call (which lays the file
  out) not counted; against a ``copy_`` of the same tensors into a preallocated ring (the copy
  limit of `rollrec.bench.record`), mean per step. The writer thread runs meanwhile
  (it shares the machine's cores and memory bandwidth with `record`), so the everything row
  sits above section 1's (one segment, nothing flushing): the rows compare the options;
- bytes written (the members of the finished file, as the zip directory counts them) against
  the bytes of a plain copy of the same tensors, ``steps x step bytes``.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import torch

from rollrec.bench.measure import Row, median, paired_ratio, remove
from rollrec.bench.record import BlockedTimer, CopyLimit, sync_device
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

SECTION = "8 volume control"
EPISODE_STEPS = 200  # the time limit
FAIL_RATE = 0.01  # episodes that end by termination before it
WINDOW = 50
DETAIL_ENVS = 64


def configs(num_envs: int) -> dict[str, dict[str, Any]]:
    """The `Recorder` options of each configuration, by name."""
    count = min(DETAIL_ENVS, max(1, num_envs // 16))  # 64 at N=4096; fewer for small test runs
    stride = num_envs // count
    return {
        "everything": {},
        f"{count} detail envs": {"envs": list(range(0, num_envs, stride))[:count]},
        "every=4": {"every": 4},
        "float16 obs": {"dtypes": {"obs": torch.float16}},
        "trigger, 1% failing": {"capture": "terminated", "window": WINDOW},
    }


class Episodes:
    """``done``/``truncated`` ``[steps, N]`` on the workload's device: time limits, staggered, and 1% failures."""

    def __init__(self, num_envs: int, steps: int, device: torch.device, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(steps)[:, None]
        phase = torch.randint(0, EPISODE_STEPS, (num_envs,), generator=g)
        truncated = (t + phase) % EPISODE_STEPS == EPISODE_STEPS - 1
        episode = (t + phase) // EPISODE_STEPS  # which episode of its env step t is in
        fails = torch.rand(int(episode.max()) + 1, num_envs, generator=g) < FAIL_RATE
        at = torch.randint(0, EPISODE_STEPS - 1, (int(episode.max()) + 1, num_envs), generator=g)
        terminated = fails[episode, torch.arange(num_envs)] & ((t + phase) % EPISODE_STEPS == at[episode, torch.arange(num_envs)])
        # A failed episode ends there; the env resets and its next episode keeps the same time limit.
        self.done = (truncated | terminated).to(device)
        self.truncated = (truncated & ~terminated).to(device)

    def step(self, wl: Workload, t: int) -> dict[str, Any]:
        return {**wl.step(t), "done": self.done[t], "truncated": self.truncated[t]}


def _written(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(info.compress_size for info in zf.infolist())


def _record(wl: Workload, eps: Episodes, path: Path, steps: int, options: dict[str, Any]) -> tuple[float, int]:
    """Mean host seconds per `record()` (waits for the writer left out) and the bytes of the file's members."""
    device = torch.device(wl.device)
    rec = Recorder(path, wl.num_envs, max_steps=steps, flush_interval_s=None, **options)
    rec.record(**eps.step(wl, 0))  # lays the file out and allocates the rings: not per-step cost
    blocked = BlockedTimer(rec)
    total = 0.0
    for t in range(1, steps):
        step = eps.step(wl, t)
        t0 = time.perf_counter()
        rec.record(**step)
        total += time.perf_counter() - t0
    sync_device(device)
    rec.close()
    written = _written(path)
    remove(path)
    return (total - blocked.seconds) / (steps - 1), written


def _copy(wl: Workload, eps: Episodes, steps: int) -> float:
    """Mean host seconds per step of the copy limit over the same tensors."""
    limit = CopyLimit(wl, min(steps, 64))  # its ring: one tensor per `Workload.tensors`, in that order
    total = 0.0
    for t in range(steps):
        step = eps.step(wl, t)
        tensors = [v for k, v in step.items() if k != "reward_terms"] + list(step["reward_terms"].values())
        t0 = time.perf_counter()
        for dst, src in zip(limit.slots[t % limit.capacity], tensors):
            dst.copy_(src)
        if t:  # the first pass over a slot is not counted, as for record()
            total += time.perf_counter() - t0
    sync_device(torch.device(wl.device))
    return total / (steps - 1)


def volume_rows(wl: Workload, out_dir: Path, *, steps: int, repeats: int) -> list[Row]:
    """One pair of rows (host time, bytes) per configuration."""
    eps = Episodes(wl.num_envs, steps, torch.device(wl.device))
    plain = steps * wl.step_bytes
    failed = int((eps.done & ~eps.truncated).sum())
    rows = []
    for name, options in configs(wl.num_envs).items():
        rec_s, copy_s, written = [], [], []
        for rep in range(repeats):
            order = (0, 1) if rep % 2 == 0 else (1, 0)
            for which in order:
                if which == 0:
                    copy_s.append(_copy(wl, eps, steps))
                else:
                    seconds, nbytes = _record(wl, eps, out_dir / f"volume-{rep}.npz", steps, options)
                    rec_s.append(seconds)
                    written.append(nbytes)
        params = {"N": wl.num_envs, "steps": steps, "repeats": repeats, "options": {k: str(v) for k, v in options.items()}}
        note = f"{failed} episodes failed in {steps} steps" if "capture" in options else ""
        rows.append(Row(SECTION, f"record() host time, {name}", median(rec_s) * 1e3, "ms/step",
                        "copy_ of the same tensors", median(copy_s) * 1e3, ratio=paired_ratio(rec_s, copy_s),
                        ratio_means="record / copy", note=note, params=params))
        rows.append(Row(SECTION, f"bytes written, {name}", median(written) / 1e6, "MB",
                        "plain copy of the same tensors", plain / 1e6, ratio=median(written) / plain,
                        ratio_means="written / plain", params=params))
    return rows


__all__ = ["SECTION", "Episodes", "configs", "volume_rows"]
