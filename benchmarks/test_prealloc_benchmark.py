"""Does preallocating the file (``posix_fallocate`` of every member's capacity) still pay with direct I/O?

    python benchmarks/test_prealloc_benchmark.py [--size-gb 4] [--repeats 2] [--dir DIR]

Records ``--size-gb`` at N=4096 (``max_steps`` known, the loop flat out, default `Recorder`)
with the writer as it is (``fallocate``: the file's blocks reserved when it is created, written
as unwritten extents that the file system converts as rows land) and with the reservation left
out (``none``: the direct writes extend the file as they go). One torch thread, as `rollrec bench`. The two alternate, ``--repeats``
times each, and the O_DIRECT write of the same bytes (`disk.direct_write`) runs between them as
the device's limit. Prints each run's GB/s and the medians' ratio. Every file is deleted.
``pytest benchmarks/test_prealloc_benchmark.py`` runs it once at 0.25 GB (``ROLLREC_BENCH_PREALLOC_GB``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from pathlib import Path
from unittest import mock

import torch

from rollrec.bench.disk import direct_write
from rollrec.bench.sustained import record_run
from rollrec.bench.workload import Workload
from rollrec._npz.stream import NpzStreamWriter


def prealloc_benchmark(size_gb: float = 4.0, repeats: int = 2, num_envs: int = 4096,
                       scratch: str | None = None, say=print) -> dict[str, list[float]]:
    """Bytes per second of each run: ``{"fallocate": [...], "none": [...], "O_DIRECT limit": [...]}``
    (see the module docstring); ``say`` gets a line per run."""
    wl = Workload(num_envs)
    nbytes = int(size_gb * 1e9)
    steps = max(2, nbytes // wl.step_bytes)
    total = steps * wl.step_bytes
    rates: dict[str, list[float]] = {"fallocate": [], "none": [], "O_DIRECT limit": []}
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        out = Path(d)
        for rep in range(repeats):
            for mode in ("fallocate", "none") if rep % 2 == 0 else ("none", "fallocate"):
                patch = mock.patch.object(NpzStreamWriter, "_allocate", lambda self: None) if mode == "none" else contextlib.nullcontext()
                with patch:
                    run = record_run(wl, out / f"{mode}.npz", steps)
                rates[mode].append(total / run["seconds"])
                say(f"{mode:>10}: {total / run['seconds'] / 1e9:.2f} GB/s  (direct I/O: {run['direct']}, "
                    f"blocked {100 * run['blocked'] / run['loop']:.0f}%, peak Dirty {(run['dirty'].peak or 0) >> 20} MiB)")
                limit_s = direct_write(out / "limit.bin", total)
                if limit_s is not None:
                    rates["O_DIRECT limit"].append(total / limit_s)
                    say(f"    O_DIRECT limit: {total / limit_s / 1e9:.2f} GB/s")
    rates["bytes"] = [float(total)]
    return rates


def format_result(rates: dict[str, list[float]], num_envs: int, repeats: int) -> str:
    """The medians of each mode and their ratios (to ``fallocate``, and to the device's limit)."""
    med = {k: statistics.median(v) for k, v in rates.items() if v and k != "bytes"}
    lines = [f"{rates['bytes'][0] / 1e9:.1f} GB at N={num_envs}, {repeats} runs each, medians:"]
    for k, v in med.items():
        lines.append(f"  {k:>15}: {v / 1e9:.2f} GB/s")
    lines.append(f"  none / fallocate: {med['none'] / med['fallocate']:.2f}x")
    if "O_DIRECT limit" in med:
        lines.append(f"  fallocate / O_DIRECT limit: {med['fallocate'] / med['O_DIRECT limit']:.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--dir", default=None, help="scratch folder (default: the temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `rollrec bench` runs (steadier on a shared 2-core machine)
    rates = prealloc_benchmark(args.size_gb, args.repeats, args.num_envs, args.dir,
                               say=lambda line: print(line, flush=True))
    print()
    print(format_result(rates, args.num_envs, args.repeats))


def test_prealloc_vs_none(one_torch_thread, report):
    """The same check at a small size (``ROLLREC_BENCH_PREALLOC_GB``, default 0.25 GB), one run each."""
    size = float(os.environ.get("ROLLREC_BENCH_PREALLOC_GB", "0.25"))
    rates = prealloc_benchmark(size, repeats=1, say=lambda line: None)
    report(format_result(rates, 4096, 1))
    assert all(r > 0 for r in rates["fallocate"] + rates["none"])


if __name__ == "__main__":
    main()
