"""``rollrec compare`` benchmark: the whole verdict of 2 runs x 4096 envs x 1000 steps, vs a per-env loop.

Run ``python benchmarks/test_compare_benchmark.py [--envs 4096] [--steps 1000] [--repeats 5]`` (alone on
the machine: other jobs skew the figures) or ``pytest benchmarks/test_compare_benchmark.py``
(``ROLLREC_BENCH_COMPARE_ENVS`` sets the envs; 4096 by default, the target's size). Two synthetic
runs (episodes of ~60 steps, time-outs at 200, 8 reward terms: about 68k episodes each), page cache
warm. Both sides read the same files and give the same numbers (checked: every figure, every
interval end):

* ``vectorised``: `rollrec.compare` (paired), from opening the files to the last interval: episodes
  by env blocks and the segmentation kernel, 2000 bootstrap replicates as matrix products, the IQM
  of every replicate by cuts of the sorted episodes, Newcombe's interval;
* ``per_env_loop``: the straightforward way: each env's episodes through the `Rollout` API
  (``episode_bounds``, ``episode_returns``, each episode's term sums), then one replicate at a time
  (the same replicates: each env's episodes weighted by its draw count; means, a weighted sort for
  the IQM), the same percentiles and Newcombe interval.

Prints the median seconds of each and the ratio (per-env loop / vectorised). Target: the vectorised
verdict under 1 s at 2 x 4096 x 1000.
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

from test_overview_benchmark import N_TERMS, build_rollout

TARGET_S = 1.0
RESAMPLES = 2000


def episodes_per_env_loop(rollout) -> dict[str, np.ndarray]:
    """Every completed episode, one env at a time through the `Rollout` API."""
    cols: dict[str, list] = {k: [] for k in ("env", "ret", "length", "terminated", "terms")}
    unfinished = 0
    for n in range(rollout.N):
        done = np.asarray(rollout["done"][:, n], bool)
        truncated = np.asarray(rollout["truncated"][:, n], bool)
        terms = np.asarray(rollout["rew_terms"][:, n], np.float64)
        for (start, stop), ret in zip(rollout.episode_bounds(n), rollout.episode_returns(n)):
            if not done[stop - 1]:
                unfinished += 1
                continue
            for k, v in zip(cols, (n, ret, stop - start, not truncated[stop - 1], terms[start:stop].sum(axis=0))):
                cols[k].append(v)
    out = {k: np.asarray(v) for k, v in cols.items()}
    out["unfinished"] = np.asarray(unfinished)
    return out


def _weighted_iqm(sorted_values: np.ndarray, weights: np.ndarray) -> float:
    total = weights.sum()
    start = np.cumsum(weights) - weights

    def integral(x: float) -> float:
        return float((sorted_values * np.clip(x - start, 0.0, weights)).sum())

    return (integral(0.75 * total) - integral(0.25 * total)) / (0.5 * total)


def verdict_per_env_loop(path_a: str | os.PathLike, path_b: str | os.PathLike, level: float = 0.95) -> dict:
    """The paired verdict of B against A, read env by env and bootstrapped one replicate at a time."""
    from rollrec.io.opening import load
    from rollrec.stats.bootstrap import SEED, resample_counts
    from rollrec.stats.rates import cluster_rate, rate_difference

    runs = []
    for path in (path_a, path_b):
        with load(path) as r:
            runs.append(episodes_per_env_loop(r))
            N = r.N
    W = resample_counts(N, RESAMPLES, np.random.default_rng(SEED)).astype(np.float64)  # the library's replicates
    out: dict = {"runs": []}
    reps = []
    for e in runs:
        order = np.argsort(e["ret"], kind="stable")
        values = np.column_stack([e["ret"], e["length"], e["terms"]])
        rows = []
        for b in range(RESAMPLES):
            w = W[b, e["env"]]
            means = (w[:, None] * values).sum(axis=0) / w.sum()
            rows.append([means[0], _weighted_iqm(e["ret"][order], w[order]), *means[1:]])
        reps.append(np.asarray(rows))
        ones = np.ones(len(e["ret"]))
        means = values.mean(axis=0)
        out["runs"].append({"mean": means[0], "iqm": _weighted_iqm(e["ret"][order], ones), "length": means[1],
                            "terms": means[2:], "completed": len(e["ret"]), "unfinished": int(e["unfinished"])})
    diff = reps[1] - reps[0]  # [B, metrics]: mean, iqm, length, terms...
    a = (1 - level) / 2
    out["low"], out["high"] = np.quantile(diff, [a, 1 - a], axis=0)
    rates = [cluster_rate(np.bincount(e["env"], weights=e["terminated"], minlength=N),
                          np.bincount(e["env"], minlength=N)) for e in runs]
    out["termination"] = rate_difference(rates[0], rates[1], level, paired=True)
    return out


def check_equal(fast: dict, slow: dict) -> None:
    """Every figure and interval end of `rollrec.compare` equals the per-env loop's."""
    for run, ref in zip(fast["runs"], slow["runs"]):
        assert run["episodes"]["completed"] == ref["completed"] and run["episodes"]["unfinished"] == ref["unfinished"]
        np.testing.assert_allclose([run["return"]["mean"], run["return"]["iqm"], run["length"]["steps"]],
                                   [ref["mean"], ref["iqm"], ref["length"]], rtol=1e-9)
        np.testing.assert_allclose(list(run["terms"].values()), ref["terms"], rtol=1e-9, atol=1e-9)
    rows = {m["metric"]: m for m in fast["comparisons"][0]["metrics"]}
    keys = ["mean", "iqm", "length", *(f"term:term_{k}" for k in range(N_TERMS))]
    np.testing.assert_allclose([rows[k]["low"] for k in keys], slow["low"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([rows[k]["high"] for k in keys], slow["high"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([rows["termination"]["low"], rows["termination"]["high"]], slow["termination"],
                               rtol=1e-12)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_benchmark(path_a: str | os.PathLike, path_b: str | os.PathLike, repeats: int = 5) -> dict[str, float]:
    """Median seconds of both ways (checked equal first) and their ratio."""
    from rollrec.stats.compare import compare

    def fast() -> dict:
        return compare(path_a, path_b, paired=True)

    result, reference = fast(), verdict_per_env_loop(path_a, path_b)  # also warms the page cache
    check_equal(result, reference)
    vec = _median_time(fast, repeats)
    loop = _median_time(lambda: verdict_per_env_loop(path_a, path_b), 1)
    runs = result["runs"]
    return {"N": runs[0]["envs"], "episodes": sum(r["episodes"]["completed"] + r["episodes"]["unfinished"] for r in runs),
            "vectorised_s": vec, "per_env_loop_s": loop, "ratio": loop / vec}


def format_result(res: dict[str, float], steps: int) -> str:
    return (f"verdict of 2 runs x {res['N']} envs x {steps} steps ({res['episodes']:,} episodes, {RESAMPLES} "
            f"bootstrap replicates, paired):\n"
            f"  vectorised (rollrec.compare)  {res['vectorised_s']:.3f} s  (target < {TARGET_S:g} s at 4096 x 1000: "
            f"{'pass' if res['vectorised_s'] < TARGET_S else 'MISS'})\n"
            f"  per-env loop                  {res['per_env_loop_s']:.3f} s\n"
            f"  ratio                         {res['ratio']:.1f}x (per-env loop / vectorised)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time rollrec compare's verdict against a per-env loop.")
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the scratch rollouts go (default: the temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        a = build_rollout(Path(tmp) / "a.npz", args.envs, args.steps, seed=0)
        b = build_rollout(Path(tmp) / "b.npz", args.envs, args.steps, seed=1)
        print(format_result(compare_benchmark(a, b, args.repeats), args.steps))
    return 0


# ---- pytest ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    envs = int(os.environ.get("ROLLREC_BENCH_COMPARE_ENVS", "4096"))
    d = tmp_path_factory.mktemp("bench_compare")
    return build_rollout(d / "a.npz", envs, 1000, seed=0), build_rollout(d / "b.npz", envs, 1000, seed=1)


def test_compare_vs_per_env_loop(two_runs, report):
    """Both ways give the same numbers; the per-env loop's time over `rollrec.compare`'s, in one run."""
    res = compare_benchmark(*two_runs, repeats=5)
    report(format_result(res, 1000))
    assert res["ratio"] > 0


if __name__ == "__main__":
    raise SystemExit(main())
