"""`run`: every section of the benchmark with one `BenchConfig`, in one process."""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rollrec.bench.cuda import cuda_rows
from rollrec.bench.end_to_end import end_to_end, torchrl_version
from rollrec.bench.camera import camera_rows
from rollrec.bench.memory import rss_vs_length
from rollrec.bench.reader import reader
from rollrec.bench.record import record_vs_copy, stall
from rollrec.bench.sharded import scale_out
from rollrec.bench.sustained import cpu_side, sustained
from rollrec.bench.volume import volume_rows
from rollrec.bench.measure import Row, scratch_dir
from rollrec.bench.sections import SECTIONS
from rollrec.bench.workload import Workload


@dataclass(frozen=True)
class BenchConfig:
    """What to run and how long: sizes are per section; ``main_envs`` is the headline N."""

    envs: tuple[int, ...] = (256, 4096, 16384)
    main_envs: int = 4096
    e2e_bytes: int = 1 << 30  # bytes per end-to-end file (T = this / step bytes)
    e2e_repeats: int = 5
    compressed_bytes: int = 60 << 20  # np.savez_compressed runs ~30x slower: fewer bytes, one repeat
    record_steps: int = 24
    record_repeats: int = 7
    stall_steps: int = 400
    stall_repeats: int = 2
    rss_envs: int = 1024
    rss_steps: tuple[int, int] = (100, 1000)
    reader_bytes: int = 3 << 30
    reader_repeats: int = 5
    cuda_steps: int = 200
    cuda_repeats: int = 3
    dist_envs: int = 4096  # one rollout of this many envs, split over each number of ranks
    dist_steps: int = 200
    dist_worlds: tuple[int, ...] = (1, 2, 4)
    dist_repeats: int = 5
    volume_steps: int = 240  # steps per recording of each volume configuration (5 MB each at N=4096)
    volume_repeats: int = 3
    camera_steps: int = 1000  # 64 detail envs of main_envs with a 128x128 RGB camera
    camera_repeats: int = 2
    camera_rss_steps: tuple[int, int] | None = (200, 1000)
    sustained_bytes: int = 10 * 10**9  # one rollout recorded end to end (8-12 GB: past any page cache)
    sustained_load_bytes: int = 4 * 10**9  # recorded with the producer at 50% of the device limit
    cpu_bytes: int = 2 * 10**9  # recorded into a memory file system (the CPU side on its own)
    fast_scratch: str | None = "/dev/shm"  # that memory file system (None: skip the CPU-side row)
    torch_threads: int = 1
    sections: tuple[str, ...] = SECTIONS
    scratch: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> BenchConfig:
        return dataclasses.replace(self, **changes)


FULL = BenchConfig()
QUICK = BenchConfig(
    envs=(4096,),
    e2e_bytes=400 << 20,
    e2e_repeats=3,
    compressed_bytes=15 << 20,
    record_steps=16,
    record_repeats=3,
    stall_steps=96,
    stall_repeats=1,
    rss_envs=1024,
    rss_steps=(100, 500),
    reader_bytes=240 << 20,
    reader_repeats=3,
    cuda_steps=64,
    cuda_repeats=2,
    dist_steps=60,
    dist_repeats=1,
    volume_steps=64,
    volume_repeats=1,
    camera_steps=200,
    camera_repeats=1,
    camera_rss_steps=None,
    sustained_bytes=2 * 10**9,
    sustained_load_bytes=1 * 10**9,
    cpu_bytes=500 * 10**6,
)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "cuda": torch.cuda.is_available(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            info["mem_GiB"] = round(
                int(next(line for line in f if line.startswith("MemTotal")).split()[1]) / 2**20, 1
            )
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        import isal

        info["isal"] = isal.__version__
    except ImportError:
        info["isal"] = None
    info["torchrl"] = torchrl_version()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _steps(nbytes: int, wl: Workload, minimum: int = 2) -> int:
    return max(minimum, nbytes // wl.step_bytes)


def run(config: BenchConfig = FULL, progress: Callable[[str], None] | None = None) -> list[Row]:
    """Run the sections in ``config.sections`` and return their rows (in table order)."""
    say = progress or (lambda msg: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:
        return _run(config, say)
    finally:
        torch.set_num_threads(threads)


def _run(config: BenchConfig, say: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    t_all = time.perf_counter()
    with scratch_dir(config.scratch) as d:
        workloads = {n: Workload(n) for n in sorted(set(config.envs) | {config.main_envs})}
        main = workloads[config.main_envs]
        if "record" in config.sections:
            for n in config.envs:
                say(f"record() vs copy, N={n}")
                rows += record_vs_copy(
                    workloads[n], d, steps=config.record_steps, repeats=config.record_repeats
                )
        if "e2e" in config.sections:
            for n in config.envs:
                wl = workloads[n]
                say(f"end to end, N={n}")
                rows += end_to_end(
                    wl,
                    d,
                    steps=_steps(config.e2e_bytes, wl),
                    repeats=config.e2e_repeats,
                    compressed_steps=_steps(config.compressed_bytes, wl, 1) if n == config.main_envs else 0,
                    growth=n == config.main_envs,
                )
        if "stall" in config.sections:
            say(f"stall while flushing, N={config.main_envs}")
            rows += stall(main, d, steps=config.stall_steps, repeats=config.stall_repeats)
        if "rss" in config.sections:
            say(f"peak RSS, N={config.rss_envs}")
            rows += rss_vs_length(
                d, num_envs=config.rss_envs, short=config.rss_steps[0], long=config.rss_steps[1]
            )
        if "reader" in config.sections:
            say("reader")
            rows += reader(
                main, d, steps=_steps(config.reader_bytes, main), repeats=config.reader_repeats
            )
        if "cuda" in config.sections:
            say("CUDA")
            rows += cuda_rows(config.main_envs, d, steps=config.cuda_steps, repeats=config.cuda_repeats)
        if "volume" in config.sections:
            say(f"volume control, N={config.main_envs}")
            rows += volume_rows(main, d, steps=config.volume_steps, repeats=config.volume_repeats)
        if "camera" in config.sections:
            say(f"camera images, 64 of N={config.main_envs} envs, 128x128 RGB, {config.camera_steps} steps")
            rows += camera_rows(main, d, steps=config.camera_steps, repeats=config.camera_repeats,
                                rss_steps=config.camera_rss_steps)
        if "sustained" in config.sections:
            say(f"sustained, N={config.main_envs}, {config.sustained_bytes / 1e9:.0f} GB")
            rows += sustained(main, d, nbytes=config.sustained_bytes, load_bytes=config.sustained_load_bytes)
            if config.fast_scratch:
                say(f"CPU side, N={config.main_envs}, into {config.fast_scratch}")
                rows += cpu_side(main, Path(config.fast_scratch), nbytes=config.cpu_bytes)
        if "dist" in config.sections:
            rows += scale_out(d, total_envs=config.dist_envs, steps=config.dist_steps,
                                      worlds=config.dist_worlds, repeats=config.dist_repeats, say=say)
        del workloads
    say(f"done in {time.perf_counter() - t_all:.0f} s")
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run(QUICK, progress=lambda m: print(m, file=sys.stderr)):
        print(r)
