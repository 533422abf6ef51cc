"""Viewer overview benchmark: every episode of 4096 envs x 1000 steps, vectorised vs a per-env loop.

Run ``python benchmarks/test_overview_benchmark.py [--envs 4096] [--steps 1000] [--repeats 5]`` (alone on
the machine: other jobs skew the figures) or ``pytest benchmarks/test_overview_benchmark.py``.
Both sides read the same file (memory-mapped, page cache warm after the first pass) and
produce the same table (checked):

* ``vectorised``: `rollrec.viewer.overview.compute_overview`, blocks of env columns;
* ``per_env_loop``: the same table the straightforward way, one env at a time through the
  `Rollout` API (``episode_bounds``, ``episode_returns``), then a sum of the reward terms
  per episode.

Prints the median seconds of each and the ratio (per-env loop / vectorised). The target is
under 1 s for the vectorised pass at 4096 x 1000.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

N_TERMS = 8
TARGET_S = 1.0


def build_rollout(path: str | os.PathLike, num_envs: int = 4096, steps: int = 1000, seed: int = 0) -> Path:
    """A synthetic v1 rollout with episodes of ~60 steps, time-outs at 200, 8 reward terms
    (obs and act are 4 wide: this benchmark reads neither). Written 100 steps at a time."""
    from rollrec.format.meta import make_meta
    from rollrec._npz.stream import MemberSpec, NpzStreamWriter
    from rollrec.io.partial import finish, partial_paths, static_members

    rows = {"obs": ((4,), np.float32), "act": ((4,), np.float32), "rew": ((), np.float32), "done": ((), np.bool_),
            "truncated": ((), np.bool_), "base_pos": ((3,), np.float32), "base_quat": ((4,), np.float32),
            "rew_terms": ((N_TERMS,), np.float32)}
    specs = [MemberSpec(k, np.dtype(dt).str, (num_envs, *shape), steps) for k, (shape, dt) in rows.items()]
    data_path, _ = partial_paths(os.fspath(path))
    writer = NpzStreamWriter(data_path, specs)
    rng = np.random.default_rng(seed)
    age = np.zeros(num_envs, np.int64)
    try:
        for start in range(0, steps, 100):
            n = min(100, steps - start)
            done = np.zeros((n, num_envs), bool)
            truncated = np.zeros((n, num_envs), bool)
            for t in range(n):
                age += 1
                timeout = age >= 200
                done[t] = (rng.random(num_envs) < 1 / 60) | timeout
                truncated[t] = timeout
                age[done[t]] = 0
            terms = rng.standard_normal((n, num_envs, N_TERMS), dtype=np.float32)
            chunk = {"rew": terms.sum(axis=2), "done": done, "truncated": truncated, "rew_terms": terms}
            for name, (shape, dt) in rows.items():
                writer.append(name, chunk[name] if name in chunk else np.zeros((n, num_envs, *shape), dt))
        meta = make_meta(num_steps=steps, num_envs=num_envs, dt=0.02, env_name="bench-overview")
        names = [f"term_{k}" for k in range(N_TERMS)]
        return finish(writer, static_members(meta, names), steps, os.fspath(path), compress=False)
    except BaseException:
        writer.abort()
        raise


def overview_per_env_loop(rollout) -> dict[str, np.ndarray]:
    """The overview's table the straightforward way: for each env, its episodes from the
    `Rollout` API (``episode_bounds``, ``episode_returns``), then each episode's term sums."""
    cols: dict[str, list] = {k: [] for k in ("env", "start", "stop", "ret", "ended", "worst_term")}
    for n in range(rollout.N):
        bounds = rollout.episode_bounds(n)
        returns = rollout.episode_returns(n)
        done = np.asarray(rollout["done"][:, n], bool)
        truncated = np.asarray(rollout["truncated"][:, n], bool)
        terms = np.asarray(rollout["rew_terms"][:, n], np.float64)  # [T, K]
        for (start, stop), ret in zip(bounds, returns):
            sums = terms[start:stop].sum(axis=0)
            worst = int(np.argmin(sums))
            last = stop - 1
            for k, v in zip(cols, (n, start, stop, ret, (2 if truncated[last] else 1) if done[last] else 0,
                                   worst if sums[worst] < 0 else -1)):
                cols[k].append(v)
    return {k: np.asarray(v) for k, v in cols.items()}


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def overview_benchmark(path: str | os.PathLike, repeats: int = 5) -> dict[str, float]:
    """Median seconds of both approaches on ``path`` (checked equal first) and their ratio."""
    from rollrec.io.opening import load
    from rollrec.viewer.overview import compute_overview

    with load(path) as r:
        fast, slow = compute_overview(r), overview_per_env_loop(r)  # also warms the page cache
        for key in ("env", "start", "stop", "ended"):
            np.testing.assert_array_equal(getattr(fast, key), slow[key])
        np.testing.assert_array_equal(fast.worst_term, slow["worst_term"])
        np.testing.assert_allclose(fast.ret, slow["ret"], rtol=1e-9, atol=1e-6)
        vec = _median_time(lambda: compute_overview(r), repeats)
        loop = _median_time(lambda: overview_per_env_loop(r), max(1, repeats // 2))
        return {"T": r.T, "N": r.N, "episodes": len(fast), "vectorised_s": vec, "per_env_loop_s": loop,
                "ratio": loop / vec}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the viewer's overview of every episode of every env.")
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the scratch rollout goes (default: the temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = build_rollout(Path(tmp) / "overview.npz", args.envs, args.steps)
        size = os.path.getsize(path)
        res = overview_benchmark(path, args.repeats)
    print(format_result(res, size))
    return 0


def format_result(res: dict[str, float], size: int) -> str:
    """The figures of `overview_benchmark` on a file of ``size`` bytes, with their ratio and the target."""
    return (f"overview of {res['N']} envs x {res['T']} steps ({res['episodes']:,} episodes, file {size / 1e6:.0f} MB):\n"
            f"  vectorised     {res['vectorised_s']:.3f} s  (target < {TARGET_S:g} s at 4096 x 1000: "
            f"{'pass' if res['vectorised_s'] < TARGET_S else 'MISS'})\n"
            f"  per-env loop   {res['per_env_loop_s']:.3f} s\n"
            f"  ratio          {res['ratio']:.1f}x (per-env loop / vectorised)")


# ---- pytest ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rollout_1024(tmp_path_factory) -> Path:
    """1024 envs x 1000 steps (``ROLLREC_BENCH_OVERVIEW_ENVS`` sets the envs: 4096 for the target's size)."""
    envs = int(os.environ.get("ROLLREC_BENCH_OVERVIEW_ENVS", "1024"))
    return build_rollout(tmp_path_factory.mktemp("bench") / "overview.npz", envs, 1000)


@pytest.mark.benchmark(group="overview of every episode")
def test_overview_vectorised(benchmark, rollout_1024):
    """pytest-benchmark: the vectorised overview."""
    from rollrec.io.opening import load
    from rollrec.viewer.overview import compute_overview

    with load(rollout_1024) as r:
        result = benchmark(compute_overview, r)
        assert result.num_envs == r.N


@pytest.mark.benchmark(group="overview of every episode")
def test_overview_per_env_loop(benchmark, rollout_1024):
    """pytest-benchmark: the same table one env at a time through the `Rollout` API (the reference)."""
    from rollrec.io.opening import load

    with load(rollout_1024) as r:
        result = benchmark.pedantic(overview_per_env_loop, args=(r,), rounds=2)
        assert len(result["env"]) > r.N


def test_overview_vs_per_env_loop(rollout_1024, report):
    """Both tables equal, and the per-env loop's time over the vectorised pass's, in one run."""
    res = overview_benchmark(rollout_1024, repeats=3)
    report(format_result(res, os.path.getsize(rollout_1024)))
    assert res["ratio"] > 0


if __name__ == "__main__":
    raise SystemExit(main())
