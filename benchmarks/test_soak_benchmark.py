"""Soak: record ~10 GB at N=4096 through `Recorder`, report peak RSS, verify every value.

    python benchmarks/test_soak_benchmark.py [--size-gb 10] [--num-envs 4096] [--unknown-length] [--dir DIR] [--keep]

(``pytest benchmarks/test_soak_benchmark.py`` runs it at 0.3 GB, ``ROLLREC_BENCH_SOAK_GB``.)

Run it under alone on the machine (other jobs skew the figures). Each step holds the benchmark
workload's fields (``obs [N, 256]``, ``act [N, 32]``, ..., 8 reward terms; ~5 MB at N=4096),
whose values are a fixed random base plus the step number (``done``/``truncated`` a step and
env pattern), so the file can be checked against exactly what was recorded without keeping it.

Printed, all from this run: the bytes recorded and the recording rate; ``close()`` time; the
file's size and the disk it occupies (they differ where the writer left holes); the process's
peak RSS (``VmHWM``, read before verification, whose memory maps would count) against the ring
and staging buffers the recorder holds (``peak RSS / ring`` and ``peak RSS - baseline``);
and the verification: every value of every step compared, plus numpy's own ``np.load`` of one
member.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rollrec.bench.workload import ACT_DIM, OBS_DIM, REWARD_TERMS, step_bytes_per_env


def vm_hwm() -> int | None:
    """Peak resident set size of this process in bytes (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Steps:
    """Step ``t`` of every field: a fixed random base plus ``t`` (bools: a (t, env) pattern)."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.n = n
        self.base = {
            "obs": torch.randn(n, OBS_DIM, generator=g),
            "act": torch.randn(n, ACT_DIM, generator=g),
            "rew": torch.randn(n, generator=g),
            "base_pos": torch.randn(n, 3, generator=g),
            "base_quat": torch.randn(n, 4, generator=g),
        }
        self.terms = {k: torch.randn(n, generator=g) for k in REWARD_TERMS}
        self.env = torch.arange(n)

    def torch_step(self, t: int) -> dict:
        step = {k: v + float(t) for k, v in self.base.items()}
        step["done"] = (self.env + t) % 97 == 0
        step["truncated"] = (self.env + 3 * t) % 389 == 0
        step["reward_terms"] = {k: v + float(t) for k, v in self.terms.items()}
        return step

    def expected(self, key: str, a: int, b: int) -> np.ndarray:
        """What the file must hold for steps ``[a, b)`` of member ``key``."""
        t = np.arange(a, b)
        env = np.arange(self.n)
        if key == "done":
            return (env[None] + t[:, None]) % 97 == 0
        if key == "truncated":
            return (env[None] + 3 * t[:, None]) % 389 == 0
        if key == "rew_terms":
            base = np.stack([v.numpy() for v in self.terms.values()], -1)
        else:
            base = self.base[key].numpy()
        return base[None] + t.reshape(-1, *([1] * base.ndim)).astype(np.float32)


def verify(path: Path, steps: Steps, T: int, chunk: int = 64) -> dict:
    import rollrec

    start = time.perf_counter()
    with rollrec.load(path) as r:
        assert r.T == T, f"the file holds {r.T} steps, {T} were recorded"
        for key in ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms"):
            for a in range(0, T, chunk):
                b = min(T, a + chunk)
                got = np.asarray(r[key][a:b])
                if not np.array_equal(got, steps.expected(key, a, b)):
                    bad = np.argwhere(got != steps.expected(key, a, b))[0]
                    raise AssertionError(f"{key!r}: step {a + bad[0]} env {bad[1]} differs from what was recorded")
    with np.load(path, allow_pickle=False) as npz:  # numpy's own reader agrees on one member
        assert np.array_equal(npz["rew"], steps.expected("rew", 0, T))
    return {"verified_steps": T, "verify_s": round(time.perf_counter() - start, 1)}


def soak(size_gb: float = 10.0, num_envs: int = 4096, unknown_length: bool = False, scratch: str | None = None,
         keep: bool = False, say=print) -> dict:
    """Record ``size_gb`` GB at ``num_envs`` envs, then verify every value; returns the figures
    (the module docstring), also given to ``say`` as JSON once recorded and once verified."""
    from rollrec.engine import Recorder

    n = num_envs
    step_bytes = n * step_bytes_per_env()
    T = int(size_gb * 1e9 // step_bytes)
    steps = Steps(n)
    path = Path(scratch or os.environ.get("ROLLREC_BENCH_DIR") or tempfile.gettempdir()) / f"rollrec-soak-{os.getpid()}.npz"
    baseline = vm_hwm()
    figures: dict = {"N": n, "T": T, "step_MB": round(step_bytes / 1e6, 3), "max_steps": None if unknown_length else T}
    try:
        rec = Recorder(path, n, max_steps=None if unknown_length else T)
        start = time.perf_counter()
        for t in range(T):
            rec.record(**steps.torch_step(t))
        recorded = time.perf_counter()
        rec.close()
        done = time.perf_counter()
        peak = vm_hwm()
        st = os.stat(path)
        figures.update(
            GB=round(T * step_bytes / 1e9, 2),
            record_s=round(recorded - start, 1),
            close_s=round(done - recorded, 1),
            rate_GBps=round(T * step_bytes / 1e9 / (done - start), 3),
            file_GB=round(st.st_size / 1e9, 3),
            on_disk_GB=round(st.st_blocks * 512 / 1e9, 3),
            ring_MB=round(rec.ring_bytes / 1e6, 1),
            baseline_rss_MB=None if baseline is None else round(baseline / 1e6, 1),
            peak_rss_MB=None if peak is None else round(peak / 1e6, 1),
        )
        if peak is not None and baseline is not None:
            figures["peak_rss_over_ring"] = round(peak / rec.ring_bytes, 2)
            figures["peak_rss_minus_baseline_MB"] = round((peak - baseline) / 1e6, 1)
        say(json.dumps(figures))
        figures.update(verify(path, steps, T))
        say(json.dumps(figures))
    finally:
        if not keep:
            for p in (path, Path(str(path) + ".partial"), Path(str(path) + ".partial.json")):
                p.unlink(missing_ok=True)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gb", type=float, default=10.0)
    ap.add_argument("--num-envs", type=int, default=4096)
    ap.add_argument("--unknown-length", action="store_true", help="no max_steps: the layout grows, then is compacted")
    ap.add_argument("--dir", default=os.environ.get("ROLLREC_BENCH_DIR") or tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true", help="keep the file (deleted by default)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    figures = soak(args.size_gb, args.num_envs, args.unknown_length, args.dir, args.keep,
                   say=lambda line: print(line, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


@pytest.mark.parametrize("unknown_length", [False, True], ids=["max_steps known", "grows"])
def test_soak(report, tmp_path, unknown_length):
    """The soak at a small size (``ROLLREC_BENCH_SOAK_GB``, default 0.3 GB) in a process of its own
    (its peak RSS is the recorder's, not the test session's): every value verified, peak RSS
    against the recorder's ring."""
    size = os.environ.get("ROLLREC_BENCH_SOAK_GB", "0.3")
    out = tmp_path / "soak.json"
    cmd = [sys.executable, __file__, "--size-gb", size, "--dir", str(tmp_path), "--json", str(out)]
    subprocess.run(cmd + (["--unknown-length"] if unknown_length else []), check=True, capture_output=True)
    figures = json.loads(out.read_text())
    report(json.dumps(figures))
    assert figures["verified_steps"] == figures["T"]


if __name__ == "__main__":
    raise SystemExit(main())
