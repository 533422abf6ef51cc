"""Reader: time to open a multi-GB rollout and to read one env's slice, against `np.load`.

The file is written by `Recorder` and read back while it is still in the page cache (hot cache:
no cache is dropped on a shared machine). `rollrec.load` memory-maps the stored members and
``Rollout.env(e)`` touches one strided column per member; `np.load` of the same ``.npz`` reads
each member whole before it can be indexed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rollrec.bench.measure import GB, Row, median, remove
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder
from rollrec.io import load

SECTION = "5 reader"


def reader(wl: Workload, out_dir: Path, *, steps: int, repeats: int, baseline_repeats: int = 1) -> list[Row]:
    path = out_dir / "reader.npz"
    with Recorder(path, wl.num_envs, max_steps=steps) as rec:
        for t in range(steps):
            rec.record(**wl.step(t))
    size = path.stat().st_size
    envs = np.random.default_rng(0).integers(0, wl.num_envs, size=repeats)
    open_s, read_s, np_open_s, np_read_s = [], [], [], []
    try:
        for e in envs:
            t0 = time.perf_counter()
            r = load(path)
            t1 = time.perf_counter()
            got = r.env(int(e))
            t2 = time.perf_counter()
            r.close()
            open_s.append(t1 - t0)
            read_s.append(t2 - t1)
        keys = list(got)
        for e in envs[:baseline_repeats]:
            t0 = time.perf_counter()
            npz = np.load(path)
            t1 = time.perf_counter()
            ref = {k: np.array(npz[k][:, int(e)]) for k in keys}
            t2 = time.perf_counter()
            npz.close()
            np_open_s.append(t1 - t0)
            np_read_s.append(t2 - t1)
            assert all(np.array_equal(ref[k], load(path).env(int(e))[k]) for k in keys)
    finally:
        remove(path)
    params = {"N": wl.num_envs, "T": steps, "file_GB": size / GB, "repeats": repeats}
    note = f"{size / GB:.2f} GB file, T={steps}, N={wl.num_envs}, hot page cache"
    return [
        Row(
            SECTION,
            "open (rollrec.load)",
            median(open_s) * 1e3,
            "ms",
            "np.load",
            median(np_open_s) * 1e3,
            ratio=median(np_open_s) / median(open_s),
            ratio_means="np.load / rollrec (speed-up)",
            note=note,
            params=params,
        ),
        Row(
            SECTION,
            "read one env, every per-step field",
            median(read_s) * 1e3,
            "ms",
            "np.load + index",
            median(np_read_s) * 1e3,
            ratio=median(np_read_s) / median(read_s),
            ratio_means="np.load / rollrec (speed-up)",
            note=note,
            params=params,
        ),
    ]
