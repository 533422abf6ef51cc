"""Does preallocating the file (``posix_fallocate`` of every member's capacity) still pay with direct I/O?

    python benchmarks/test_prealloc_benchmark.py [--size-gb 4] [--repeats 2] [--dir DIR]

Records ``--size-gb`` at N=4096 (``max_steps`` known, the loop flat out, default `Recorder`)
with the writer as it is (``fallocate``: the file's blocks reserved when it is created, written
as unwritten extents that the file system converts as rows land) and with the reservation left
out (``none``: the direct writes extend the file as they go). One torch thread, as `rollrec bench`. The two alternate, ``--repeats``
times each, and the O_DIRECT write of the same bytes (`disk.direct_write`) runs between them as
the device's limit. Prints each run's GB/s and the medians' ratio. Every file is deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path
from unittest import mock

import torch

from rollrec.bench.disk import direct_write
from rollrec.bench.sustained import record_run
from rollrec.bench.workload import Workload
from rollrec.io.npz_stream import NpzStreamWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--dir", default=None, help="scratch folder (default: the temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `rollrec bench` runs (steadier on a shared 2-core machine)
    wl = Workload(args.num_envs)
    nbytes = int(args.size_gb * 1e9)
    steps = max(2, nbytes // wl.step_bytes)
    total = steps * wl.step_bytes
    rates: dict[str, list[float]] = {"fallocate": [], "none": [], "O_DIRECT limit": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        out = Path(d)
        for rep in range(args.repeats):
            for mode in ("fallocate", "none") if rep % 2 == 0 else ("none", "fallocate"):
                patch = mock.patch.object(NpzStreamWriter, "_allocate", lambda self: None) if mode == "none" else contextlib.nullcontext()
                with patch:
                    run = record_run(wl, out / f"{mode}.npz", steps)
                rates[mode].append(total / run["seconds"])
                print(f"{mode:>10}: {total / run['seconds'] / 1e9:.2f} GB/s  (direct I/O: {run['direct']}, "
                      f"blocked {100 * run['blocked'] / run['loop']:.0f}%, peak Dirty {(run['dirty'].peak or 0) >> 20} MiB)", flush=True)
                limit_s = direct_write(out / "limit.bin", total)
                if limit_s is not None:
                    rates["O_DIRECT limit"].append(total / limit_s)
                    print(f"    O_DIRECT limit: {total / limit_s / 1e9:.2f} GB/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items() if v}
    print(f"\n{total / 1e9:.1f} GB at N={args.num_envs}, {args.repeats} runs each, medians:")
    for k, v in med.items():
        print(f"  {k:>15}: {v / 1e9:.2f} GB/s")
    print(f"  fallocate / none: {med['fallocate'] / med['none']:.2f}")


if __name__ == "__main__":
    main()
