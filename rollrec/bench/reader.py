"""Reader: opening a multi-GB rollout, reading one env, and numpy-style slices, cold and warm.

The file is written by `Recorder` (``obs`` is 1 KiB per env and step, ``rew`` 4 bytes).

* ``open`` and ``read one env`` (`Rollout.env`, every per-step field) against `np.load` of the
  same ``.npz`` (which reads each member whole before it can be indexed), hot page cache.
* Slices, ``r[key][index]``, each against the best ``env()``-style read of the same bytes, in
  the same repeat: ``r.env(k, ["obs"])`` for one env's column (and once per env for a few envs),
  ``r.read`` for a block, and ``os.pread`` of exactly the selected cells (8 threads when cold,
  as ``env()`` reads) for strided steps. Target: within 1.5x, cold and warm. Each row's note
  gives the same slice through the memory map, as indexing read before issue 25.
* A full scan of a light field (``r["rew"][:]``) against zarr (v3, its default chunks and
  codecs, written beside it from the same array), target: no slower; skipped without zarr.

Cold: the files are dropped from the page cache (``posix_fadvise(DONTNEED)``: clean pages,
unprivileged) before each read, candidate and reference alike; warm: read once before timing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rollrec.bench.measure import GB, Row, median, paired_ratio, remove, skipped
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder
from rollrec.io import load

SECTION = "5 reader"
SLICE_TARGET = ("<=", 1.5)


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
        rows = _opening_rows(wl, steps, size, repeats, open_s, read_s, np_open_s, np_read_s)
        rows += slice_rows(path, repeats=max(3, repeats), out_dir=out_dir)
    finally:
        remove(path)
    return rows


def _opening_rows(wl, steps, size, repeats, open_s, read_s, np_open_s, np_read_s) -> list[Row]:
    params = {"N": wl.num_envs, "T": steps, "file_GB": size / GB, "repeats": repeats}
    note = f"{size / GB:.2f} GB file, T={steps}, N={wl.num_envs}, hot page cache"
    return [
        Row(SECTION, "open (rollrec.load)", median(open_s) * 1e3, "ms", "np.load", median(np_open_s) * 1e3,
            ratio=median(np_open_s) / median(open_s), ratio_means="np.load / rollrec (speed-up)", note=note, params=params),
        Row(SECTION, "read one env, every per-step field", median(read_s) * 1e3, "ms", "np.load + index",
            median(np_read_s) * 1e3, ratio=median(np_read_s) / median(read_s), ratio_means="np.load / rollrec (speed-up)",
            note=note, params=params),
    ]


# ---- slices ------------------------------------------------------------------------------------
def evict(*paths: Path) -> None:
    """Drop ``paths`` (files, or every file under a folder) from the page cache (clean pages)."""
    for p in paths:
        files = [p] if p.is_file() else [Path(d) / f for d, _, names in os.walk(p) for f in names]
        for f in files:
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def pread_cells(archive, key: str, steps: np.ndarray, env: int) -> np.ndarray:
    """``r[key][steps, env]`` read the ``env()`` way from an open `NpzArchive`: one ``os.pread``
    per cell, from 8 threads when the bytes are not cached."""
    m = archive.members[key]
    T, N = m.shape[:2]
    cell = m.header.nbytes // (T * N)
    offsets = [m.data_offset + (int(t) * N + env) * cell for t in steps]
    fd = archive.fileno()

    def read(chunk: list[int]) -> bytes:
        return b"".join([os.pread(fd, cell, off) for off in chunk])

    if archive.cached(key, env):
        data = read(offsets)
    else:
        per = max(1, -(-len(offsets) // 8))
        with ThreadPoolExecutor(8) as pool:
            data = b"".join(pool.map(read, [offsets[i : i + per] for i in range(0, len(offsets), per)]))
    return np.frombuffer(data, m.dtype).reshape(len(steps), *m.shape[2:])


def _zarr_copy(path: Path, key: str, out_dir: Path) -> Path | None:
    """``key`` of the rollout at ``path`` as a zarr v3 array (default chunks and codecs), or None without zarr."""
    try:
        import zarr
    except Exception:  # noqa: BLE001 - optional
        return None
    store = out_dir / f"{key}.zarr"
    with load(path) as r:
        data = r.read(key)
    z = zarr.create_array(store=str(store), shape=data.shape, dtype=data.dtype)
    z[:] = data
    for d, _, names in os.walk(store):
        for f in names:
            fd = os.open(Path(d) / f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return store


def _zarr_read(store: Path) -> np.ndarray:
    import zarr

    return zarr.open_array(str(store), mode="r")[:]


def _time(path: Path, fn: Callable, cold: bool, files: list[Path] | None = None) -> float:
    """Seconds of ``fn(r)`` on the rollout at ``path``, opened first (not timed); evicted first when ``cold``."""
    with load(path) as r:
        if cold:
            evict(*(files or [path]))
        else:
            fn(r)
        t0 = time.perf_counter()
        fn(r)
        return time.perf_counter() - t0


def slice_rows(path: Path, *, repeats: int, out_dir: Path) -> list[Row]:
    """Rows of numpy-style slices against the ``env()``-style reads of the same bytes (module docstring)."""
    with load(path) as r:
        T, N = r.T, r.N
    rng = np.random.default_rng(1)
    k = int(rng.integers(0, N))
    few = sorted(int(x) for x in rng.choice(N, size=min(8, N), replace=False))
    t0, a = T // 4, N // 3
    t1, b = min(T, t0 + 64), min(N, a + 256)
    every = np.arange(0, T, 4)
    with load(path) as r:
        checks = {
            "one": (r["obs"][:, k], r.env(k, ["obs"])["obs"]),
            "few": (r["obs"][:, few], np.stack([r.env(e, ["obs"])["obs"] for e in few], 1)),
            "block": (r["obs"][t0:t1, a:b], r.read("obs", (t0, t1), (a, b))),
            "strided": (r["obs"][::4, k], pread_cells(r._file, "obs", every, k)),
            "scan": (r["rew"][:], r.read("rew")),
        }
    for name, (got, want) in checks.items():
        assert np.array_equal(got, want), name

    cases = [  # name, slice, reference, reference's name, mapped (before)
        (f"r['obs'][:, k] (one env, T={T})", lambda r: r["obs"][:, k], lambda r: r.env(k, ["obs"]),
         "r.env(k, ['obs'])", lambda r: np.array(np.asarray(r["obs"])[:, k])),
        (f"r['obs'][:, {len(few)} envs] (fancy)", lambda r: r["obs"][:, few],
         lambda r: [r.env(e, ["obs"]) for e in few], f"{len(few)} x r.env(k, ['obs'])",
         lambda r: np.asarray(r["obs"])[:, few]),
        (f"r['obs'][{t1 - t0} steps, {b - a} envs] (block)", lambda r: r["obs"][t0:t1, a:b],
         lambda r: r.read("obs", (t0, t1), (a, b)), "r.read(...)", lambda r: np.array(np.asarray(r["obs"])[t0:t1, a:b])),
        ("r['obs'][::4, k] (strided steps)", lambda r: r["obs"][::4, k], lambda r: pread_cells(r._file, "obs", every, k),
         "pread of each cell",
         lambda r: np.array(np.asarray(r["obs"])[::4, k])),
        (f"r['rew'][:] (full scan, {T * N * 4 / 1e6:.0f} MB)", lambda r: r["rew"][:], lambda r: r.read("rew"),
         "r.read('rew')", lambda r: np.array(np.asarray(r["rew"]))),
    ]
    rows: list[Row] = []
    params = {"T": T, "N": N, "repeats": repeats}
    for cold in (True, False):
        label = "cold" if cold else "warm"
        for name, candidate, reference, ref_name, mapped in cases:
            cand, ref, before = [], [], []
            for _ in range(repeats):
                cand.append(_time(path, candidate, cold))
                ref.append(_time(path, reference, cold))
                before.append(_time(path, mapped, cold))
            rows.append(Row(SECTION, f"{name}, {label}", median(cand) * 1e3, "ms", ref_name, median(ref) * 1e3,
                            ratio=paired_ratio(cand, ref), ratio_means="slice / env()-style read", target=SLICE_TARGET,
                            note=f"through the memory map (before): {median(before) * 1e3:.1f} ms", params=params))
    rows += _zarr_rows(path, out_dir, repeats, params)
    return rows


def _zarr_rows(path: Path, out_dir: Path, repeats: int, params: dict) -> list[Row]:
    store = _zarr_copy(path, "rew", out_dir)
    if store is None:
        return [skipped(SECTION, "r['rew'][:] against zarr", "zarr not installed (pip install zarr)")]
    import zarr

    rows = []
    try:
        for cold in (True, False):
            cand, ref = [], []
            for _ in range(repeats):
                cand.append(_time(path, lambda r: r["rew"][:], cold))
                ref.append(_time(path, lambda r: _zarr_read(store), cold, [store]))
            label = "cold" if cold else "warm"
            rows.append(Row(SECTION, f"r['rew'][:] against zarr, {label}", median(cand) * 1e3, "ms",
                            f"zarr {zarr.__version__} [:]", median(ref) * 1e3, ratio=paired_ratio(cand, ref),
                            ratio_means="rollrec / zarr", target=("<=", 1.0),
                            note="zarr v3 array of the same values, its default chunks and codecs; zarr's time includes "
                            "opening the array (rollrec's: the rollout opened before)", params=params))
    finally:
        remove(store)
    return rows


__all__ = ["SECTION", "evict", "pread_cells", "reader", "slice_rows"]
