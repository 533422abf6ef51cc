"""Scale-out: aggregate recording rate of one rollout split over 1, 2 and 4 ranks, and what the
sharding itself costs each rank (the collectives at construction and at ``close()``).

Every run records the same rollout (``total_envs`` envs x ``steps`` steps of `Workload`'s field
set, split as evenly as the ranks allow) and finishes it on disk; the ranks are processes started
with ``spawn`` and joined in a gloo process group (file store), as ``torchrun`` would, and the
process start-up is not timed. One rank records a plain file (world size 1: nothing changes),
several record one shard each plus the manifest. In each repeat the world sizes run back to back,
so ratios compare runs that saw the same machine load. Each rank first records a short untimed
rollout of its own (a fresh process's first recording runs several times slower: page faults,
first calls).

* aggregate rate: bytes of step data of all ranks / (last rank done - first rank started), with
  ``time.monotonic`` (one clock for every process of the machine);
* per-rank cost of the close-time gather: from the moment the last rank has finished its file to
  the moment each rank returns from ``close()`` (reading back its file's facts, the all-gather,
  rank 0's manifest, the barrier); and the construction exchange. Time a rank spends waiting in
  the gather for slower ranks is reported apart (it is the ranks' skew, not the gather's cost).

NCCL is not exercised here: the recorder's exchanges always run on a gloo side group (see
`rollrec.engine.dist_meta`), whatever the training's backend.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from pathlib import Path
from typing import Any

from rollrec.bench.measure import GB, Row, median, remove
from rollrec.bench.workload import step_bytes_per_env

SECTION = "7 scale-out"
_WARMUP_STEPS = 64


def _split(total: int, world: int) -> list[int]:
    base, extra = divmod(total, world)
    return [base + (r < extra) for r in range(world)]


def _rank(rank: int, world: int, store: str, path: str, counts: list[int], steps: int, results: Any) -> None:
    import torch
    import torch.distributed as dist

    from rollrec.bench.workload import Workload
    from rollrec.engine import Recorder

    torch.set_num_threads(1)
    wl = Workload(counts[rank], seed=rank)
    warm = Path(path).with_name(f"warmup-{world}-{rank}.npz")  # first use in a process is slower: not timed
    with Recorder(warm, counts[rank], max_steps=_WARMUP_STEPS, distributed=False) as rec:
        for t in range(_WARMUP_STEPS):
            rec.record(**wl.step(t))
    remove(warm)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        dist.barrier()  # everyone is ready: start the clock together
    t0 = time.monotonic()
    rec = Recorder(path, counts[rank], max_steps=steps)
    for t in range(steps):
        rec.record(**wl.step(t))
    rec.close()
    t1 = time.monotonic()
    timings = rec._shard.timings if rec._shard is not None else {}
    results.put({"rank": rank, "t0": t0, "t1": t1, "bytes": wl.step_bytes * steps, **timings})
    if world > 1:
        dist.destroy_process_group()


def run_world(world: int, scratch: Path, total_envs: int, steps: int) -> list[dict[str, Any]]:
    """Record one rollout with ``world`` ranks; returns each rank's timings (files removed)."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    store = scratch / f"store-{world}-{time.monotonic_ns()}"
    path = scratch / f"run{world}.npz"
    counts = _split(total_envs, world)
    procs = [ctx.Process(target=_rank, args=(r, world, str(store), str(path), counts, steps, results))
             for r in range(world)]
    for p in procs:
        p.start()
    out: list[dict[str, Any]] = []
    try:
        while len(out) < world:
            try:
                out.append(results.get(timeout=1.0))
            except queue.Empty:
                dead = [(r, p.exitcode) for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"benchmark ranks failed (rank, exit code): {dead}") from None
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    remove(path if world == 1 else path.with_suffix(""))
    remove(store)
    return sorted(out, key=lambda d: d["rank"])


def scale_out(scratch: Path, *, total_envs: int = 4096, steps: int = 200, worlds: tuple[int, ...] = (1, 2, 4),
              repeats: int = 3, say=lambda msg: None) -> list[Row]:
    """Rows: aggregate rate per world size (ratio to 1 rank) and the per-rank collective costs."""
    rates: dict[int, list[float]] = {w: [] for w in worlds}
    close: dict[int, list[float]] = {w: [] for w in worlds}  # after the last rank arrived
    wait: dict[int, list[float]] = {w: [] for w in worlds}  # waiting for the last rank
    start: dict[int, list[float]] = {w: [] for w in worlds}
    share: dict[int, list[float]] = {w: [] for w in worlds}
    for rep in range(repeats):
        for w in worlds:
            say(f"scale-out: {w} rank(s), repeat {rep + 1}/{repeats}")
            ranks = run_world(w, scratch, total_envs, steps)
            wall = max(r["t1"] for r in ranks) - min(r["t0"] for r in ranks)
            rates[w].append(sum(r["bytes"] for r in ranks) / wall)
            if w > 1:
                last = max(r["close_from"] for r in ranks)
                for r in ranks:
                    close[w].append(r["close_to"] - last)
                    wait[w].append(last - r["close_from"])
                    start[w].append(r["start"])
                    share[w].append((r["close_to"] - last + r["start"]) / (r["t1"] - r["t0"]))
    base = worlds[0]
    per_env_step = step_bytes_per_env()
    rows = []
    for w in worlds:
        rate = median(rates[w])
        ratios = [a / b for a, b in zip(rates[w], rates[base])]
        spread = f"; per repeat {min(ratios):.2f}-{max(ratios):.2f}x" if w != base and len(ratios) > 1 else ""
        rows.append(Row(
            SECTION, f"aggregate record rate, {w} rank{'s' if w > 1 else ''}", rate / GB, "GB/s",
            reference_name=f"{base} rank", reference=median(rates[base]) / GB,
            ratio=median(ratios), ratio_means=f"(aggregate rate / {base} rank)",
            note=f"N={total_envs} split {_split(total_envs, w)}, T={steps}; {rate / per_env_step / 1e6:.2f} M env-steps/s"
                 + spread,
            params={"world": w, "total_envs": total_envs, "steps": steps, "rates": rates[w]},
        ))
        if close[w]:
            rows.append(Row(
                SECTION, f"close-time gather per rank, {w} ranks", median(close[w]) * 1e3, "ms",
                ratio=median(share[w]), ratio_means="(gather + construction exchange / rank's wall time)",
                note=f"max {max(close[w]) * 1e3:.1f} ms; construction exchange {median(start[w]) * 1e3:.1f} ms; "
                     f"waiting for the slowest rank {median(wait[w]) * 1e3:.0f} ms (skew, not counted)",
                params={"world": w},
            ))
    return rows
