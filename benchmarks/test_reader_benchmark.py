"""Reader benchmark: opening a >1 GB rollout and reading one env, against numpy reading one member.

Run ``python benchmarks/test_reader_benchmark.py [--size-gb 1.1] [--dir DIR]``, call `reader_benchmark`
(``rollrec bench``), or ``pytest benchmarks/test_reader_benchmark.py`` (pytest-benchmark). Every figure
comes from the same run, on the same file:

* ``open``: `rollrec.load` (zip directory + npy headers, memory maps; no data read);
* ``env_slice``: ``r.env(k)``, every per-step member of one env read into memory (strided reads);
* ``np_load_obs``: ``np.load(path)["obs"]``, numpy reading its largest member whole;

each as seconds, as a ratio to ``np_load_obs``, and against the file size. Before each cold
measurement the file is evicted from the page cache: ``/proc/sys/vm/drop_caches`` where writable,
else ``posix_fadvise(DONTNEED)`` on the file (works unprivileged for clean pages); where neither
works the figures are warm-cache and say so (``cache``).

The file is built once, in chunks (RAM stays ~100 MB), with `NpzStreamWriter` as the recorder
does; set ``ROLLREC_BENCH_ROLLOUT=/path/file.npz`` to keep and reuse it between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

N_ENVS = 4096
OBS_DIM, ACT_DIM, N_TERMS = 32, 8, 4
ROW_BYTES = 4 * (OBS_DIM + ACT_DIM + 1 + 3 + 4 + N_TERMS) + 2  # one (step, env): floats + done + truncated
CHUNK_STEPS = 64
ENV_VAR = "ROLLREC_BENCH_ROLLOUT"


def _shape_for(size_gb: float) -> tuple[int, int]:
    """``(T, N)`` whose file is about ``size_gb`` GB (1e9 bytes)."""
    return max(1, round(size_gb * 1e9 / (N_ENVS * ROW_BYTES))), N_ENVS


def build_rollout(path: str | os.PathLike, size_gb: float = 1.1, seed: int = 0) -> Path:
    """Write a synthetic v1 rollout of about ``size_gb`` GB at ``path``, ``CHUNK_STEPS`` steps at a time."""
    from rollrec.format.meta import make_meta
    from rollrec._npz.stream import MemberSpec, NpzStreamWriter
    from rollrec.io.partial import finish, partial_paths, static_members

    path = os.fspath(path)
    T, N = _shape_for(size_gb)
    rows = {  # name: (trailing shape, dtype)
        "obs": ((OBS_DIM,), np.float32),
        "act": ((ACT_DIM,), np.float32),
        "rew": ((), np.float32),
        "done": ((), np.bool_),
        "truncated": ((), np.bool_),
        "base_pos": ((3,), np.float32),
        "base_quat": ((4,), np.float32),
        "rew_terms": ((N_TERMS,), np.float32),
    }
    specs = [MemberSpec(k, np.dtype(dt).str, (N, *shape), T) for k, (shape, dt) in rows.items()]
    data_path, _ = partial_paths(path)
    writer = NpzStreamWriter(data_path, specs)
    rng = np.random.default_rng(seed)
    try:
        for start in range(0, T, CHUNK_STEPS):
            n = min(CHUNK_STEPS, T - start)
            for name, (shape, dt) in rows.items():
                if dt == np.bool_:
                    chunk = rng.random((n, N), dtype=np.float32) < 0.004  # episodes of ~250 steps
                else:
                    chunk = rng.standard_normal((n, N, *shape), dtype=np.float32)
                writer.append(name, chunk)
        meta = make_meta(num_steps=T, num_envs=N, dt=0.02, env_name="bench-synthetic")
        return finish(writer, static_members(meta, [f"term_{k}" for k in range(N_TERMS)]), T, path, compress=False)
    except BaseException:
        writer.abort()
        raise


def evict(path: str | os.PathLike) -> str:
    """Drop ``path`` from the page cache; returns how (``"drop_caches"``, ``"fadvise"``) or ``"warm"``."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "drop_caches"
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return "fadvise"
    except (OSError, AttributeError):
        return "warm"


def _timed(fn, repeat: int, cold: bool, path: str) -> tuple[float, str]:
    """Median seconds of ``fn()`` over ``repeat`` runs, each after an eviction when ``cold``."""
    times, how = [], "warm"
    for _ in range(repeat):
        if cold:
            how = evict(path)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), how


def _measure(path: str, repeat: int, cold: bool) -> dict[str, Any]:
    import rollrec

    def open_close():
        rollrec.load(path).close()

    with rollrec.load(path) as r:
        env_k = r.N // 3
        env_bytes = sum(int(np.prod(r[k].shape[:1] + r[k].shape[2:])) * r[k].dtype.itemsize for k in r.step_keys)
        T, N = r.T, r.N

    def env_slice():
        with rollrec.load(path) as r:
            r.env(env_k)

    def np_load_obs():
        with np.load(path) as npz:
            npz["obs"]

    t_open, how = _timed(open_close, repeat, cold, path)
    t_env, _ = _timed(env_slice, repeat, cold, path)
    t_np, _ = _timed(np_load_obs, max(1, repeat // 2), cold, path)
    return {
        "cache": how if cold else "warm",
        "open_s": t_open,
        "env_slice_s": t_env,
        "np_load_obs_s": t_np,
        "open_vs_np_load_obs": t_open / t_np,
        "env_slice_vs_np_load_obs": t_env / t_np,
        "env_slice_bytes": env_bytes,
        "T": T,
        "N": N,
    }


def reader_benchmark(size_gb: float = 1.1, tmpdir: str | os.PathLike | None = None, repeat: int = 5) -> dict:
    """Build (or reuse) a ``size_gb`` GB rollout and time opening it and reading one env.

    ``tmpdir``: where to build the file (default: a temporary directory, removed afterwards);
    the env var ``ROLLREC_BENCH_ROLLOUT`` names a file to reuse (built there if absent).
    Returns the figures (see the module docstring) for a cold and a warm page cache, and prints them.
    """
    keep = os.environ.get(ENV_VAR)
    with tempfile.TemporaryDirectory(dir=tmpdir, prefix="rollrec-bench-") as tmp:
        path = keep or os.path.join(tmp, "large.npz")
        built_s = None
        if not os.path.exists(path):
            start = time.perf_counter()
            build_rollout(path, size_gb)
            built_s = time.perf_counter() - start
        result = reader_figures(path, repeat, built_s)
    print(format_result(result))
    return result


def reader_figures(path: str | os.PathLike, repeat: int = 5, built_s: float | None = None) -> dict:
    """The figures of the module docstring on the rollout at ``path``, cold and warm page cache."""
    path = os.fspath(path)
    with np.load(path) as npz:
        obs_bytes = npz.zip.getinfo("obs.npy").file_size
    return {
        "file": path,
        "file_bytes": os.path.getsize(path),
        "obs_bytes": obs_bytes,
        "build_s": built_s,
        "cold": _measure(path, repeat, cold=True),
        "warm": _measure(path, repeat, cold=False),
    }


def format_result(res: dict) -> str:
    gb = res["file_bytes"] / 1e9
    lines = [
        f"reader benchmark: {gb:.2f} GB rollout, T={res['cold']['T']} x N={res['cold']['N']}, "
        f"obs member {res['obs_bytes'] / 1e9:.2f} GB"
        + (f" (built in {res['build_s']:.1f} s)" if res["build_s"] else ""),
    ]
    for label in ("cold", "warm"):
        m = res[label]
        cache = {"drop_caches": "cold (drop_caches)", "fadvise": "cold (posix_fadvise DONTNEED)"}.get(
            m["cache"], "warm page cache"
        )
        lines += [
            f"  {label}: {cache}",
            (
                f"    rollrec.load        {m['open_s'] * 1e3:9.2f} ms   {m['open_s'] * 1e3 / gb:8.3f} ms/GB   "
                f"{m['open_vs_np_load_obs']:.2e} x np.load obs"
            ),
            (
                f"    r.env(k)            {m['env_slice_s'] * 1e3:9.2f} ms   "
                f"{m['env_slice_bytes'] / 1e3:.0f} kB of one env ({m['env_slice_bytes'] / res['file_bytes']:.1e} "
                f"of the file)   {m['env_slice_vs_np_load_obs']:.2e} x np.load obs"
            ),
            (
                f"    np.load(p)['obs']   {m['np_load_obs_s'] * 1e3:9.2f} ms   "
                f"{res['obs_bytes'] / 1e9 / m['np_load_obs_s']:.2f} GB/s"
            ),
        ]
    return "\n".join(lines)


# ---- pytest-benchmark: the three figures side by side ----------------------------------------
@pytest.mark.benchmark(group="reader: ~1.1 GB rollout")
def test_open_large(benchmark, large_rollout):
    import rollrec

    def open_close():
        rollrec.load(large_rollout).close()

    benchmark(open_close)
    benchmark.extra_info["file_bytes"] = os.path.getsize(large_rollout)


@pytest.mark.benchmark(group="reader: ~1.1 GB rollout")
def test_env_slice_large(benchmark, large_rollout):
    import rollrec

    def open_and_read_env():
        with rollrec.load(large_rollout) as r:
            return r.env(r.N // 3)

    out = benchmark(open_and_read_env)
    assert out["obs"].shape[1:] == (OBS_DIM,)


@pytest.mark.benchmark(group="reader: ~1.1 GB rollout")
def test_np_load_obs_large(benchmark, large_rollout):
    def np_load_obs():
        with np.load(large_rollout) as npz:
            return npz["obs"]

    obs = benchmark.pedantic(np_load_obs, rounds=3)
    assert obs.shape[1:] == (N_ENVS, OBS_DIM)


def test_reader_vs_np_load(large_rollout, report):
    """Opening and reading one env against np.load of the obs member, cold and warm, in one run."""
    res = reader_figures(large_rollout, repeat=3)
    report(format_result(res))
    assert res["warm"]["env_slice_vs_np_load_obs"] > 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.1, help="file size to build (default 1.1)")
    parser.add_argument("--dir", default=None, help="directory for the temporary file (default: system temp)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median; default 5)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    res = reader_benchmark(args.size_gb, args.dir, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
