"""Export benchmark: a rollout to each target (`rollrec.export`): time, output size, peak RSS, and
peak RSS again for a rollout twice as long (an exporter streams: its memory must stay flat).

Each export runs in a fresh Python process (its peak RSS is that process's ``ru_maxrss``, the
interpreter and imports included); the reference measured in the same run is reading the
rollout's bytes once (sequential 16 MiB reads of the file: what any exporter must at least do),
so ``x read`` is the export's time over that read's.

    pytest benchmarks/test_export_benchmark.py             # synthetic 0.02 and 0.04 GB rollouts, 256 envs
    python benchmarks/test_export_benchmark.py --size-gb 1.83   # 1.83 and 3.66 GB (the demo's size)
    python benchmarks/test_export_benchmark.py --size-gb 0.05 --envs 256   # ~1000 episodes, then ~2000
    python benchmarks/test_export_benchmark.py --rollout demo.npz --rollout-2x demo_600.npz

The synthetic rollout is `test_reader_benchmark.build_rollout` (4096 envs, obs 32, act 8, 4 reward
terms, episodes of ~250 steps); ``rollrec demo --steps 300`` / ``--steps 600`` give the demo's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

TARGETS = {  # target: (output name, export options)
    "lerobot": ("ds", {}),
    "robomimic": ("d.hdf5", {}),
    "rerun": ("r.rrd", {}),  # env 0, the exporter's default
    "viser": ("e.viser", {}),  # one episode
}

_CHILD = """
import json, resource, sys, time
import rollrec
src, out, to, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
t0 = time.perf_counter()
rollrec.export(src, out, to=to, **options)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def read_seconds(path: Path) -> float:
    """Seconds to read ``path``'s bytes once, sequentially (16 MiB reads)."""
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass
    return time.perf_counter() - t0


def export_once(src: Path, to: str, work: Path) -> dict:
    """One export of ``src`` to ``to`` in a fresh process: seconds, peak RSS (MB), output bytes."""
    name, options = TARGETS[to]
    out = work / f"{to}-{src.stem}-{name}"
    run = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(out), to, json.dumps(options)],
                         capture_output=True, text=True, check=False)
    if run.returncode:
        raise RuntimeError(f"export to {to} failed:\n{run.stderr[-2000:]}")
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    figures["out_bytes"] = _size(out)
    shutil.rmtree(out) if out.is_dir() else out.unlink()
    return figures


def measure(src: Path, src_2x: Path, work: Path, targets=tuple(TARGETS)) -> list[str]:
    """The table's lines: per target, figures on ``src`` and peak RSS on ``src_2x``."""
    read = read_seconds(src)  # also warms the page cache for the first export
    lines = [f"rollout {src.name}: {src.stat().st_size / 1e9:.2f} GB, read once in {read:.2f} s; "
             f"twice as long: {src_2x.stat().st_size / 1e9:.2f} GB; load {os.getloadavg()[0]:.2f}"]
    for to in targets:
        one = export_once(src, to, work)
        read_seconds(src_2x)
        two = export_once(src_2x, to, work)
        lines.append(f"{to:9s} {one['seconds']:7.2f} s ({one['seconds'] / read:5.1f}x read)  "
                     f"out {one['out_bytes'] / 1e6:8.1f} MB  peak RSS {one['peak_rss_mb']:6.0f} MB, "
                     f"2x long: {two['peak_rss_mb']:6.0f} MB ({two['peak_rss_mb'] / one['peak_rss_mb']:.2f}x), "
                     f"{two['seconds']:.2f} s")
    return lines


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    """Synthetic rollouts of 256 envs (so that twice as long is twice the episodes, ~400 then ~800)."""
    import test_reader_benchmark
    from test_reader_benchmark import build_rollout

    size = float(os.environ.get("ROLLREC_BENCH_EXPORT_GB", "0.02"))
    work = tmp_path_factory.mktemp("export")
    envs, test_reader_benchmark.N_ENVS = test_reader_benchmark.N_ENVS, 256
    try:
        return build_rollout(work / "one.npz", size_gb=size), build_rollout(work / "two.npz", size_gb=2 * size), work
    finally:
        test_reader_benchmark.N_ENVS = envs


@pytest.mark.parametrize("to", list(TARGETS))
def test_export_streams_in_flat_memory(rollouts, to, report):
    pytest.importorskip({"lerobot": "pyarrow", "robomimic": "h5py", "rerun": "rerun", "viser": "viser"}[to])
    one, two, work = rollouts
    read = read_seconds(one)
    a, b = export_once(one, to, work), export_once(two, to, work)
    report(f"{to}: {a['seconds']:.2f} s for {one.stat().st_size / 1e9:.2f} GB ({a['seconds'] / read:.1f}x a read of "
           f"the file), out {a['out_bytes'] / 1e6:.1f} MB; peak RSS {a['peak_rss_mb']:.0f} MB, twice as long "
           f"{b['peak_rss_mb']:.0f} MB ({b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x); load {os.getloadavg()[0]:.2f}")
    assert b["peak_rss_mb"] < 1.25 * a["peak_rss_mb"] + 64, "peak memory grows with the rollout's length"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.83, help="synthetic rollout size (and twice that)")
    parser.add_argument("--rollout", type=Path, help="a rollout to export instead of a synthetic one")
    parser.add_argument("--rollout-2x", type=Path, help="with --rollout: the same run twice as long")
    parser.add_argument("--envs", type=int, default=None,
                        help="synthetic rollout: envs (default 4096); fewer envs: more steps, so twice as long is twice the episodes")
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--dir", type=Path, default=None, help="where to build and export (default a temp dir)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        if args.rollout is not None:
            if args.rollout_2x is None:
                parser.error("--rollout needs --rollout-2x (the same run twice as long)")
            one, two = args.rollout, args.rollout_2x
        else:
            import test_reader_benchmark
            from test_reader_benchmark import build_rollout

            if args.envs is not None:
                test_reader_benchmark.N_ENVS = args.envs
            one = build_rollout(work / "one.npz", size_gb=args.size_gb)
            two = build_rollout(work / "two.npz", size_gb=2 * args.size_gb)
        for line in measure(one, two, work, args.targets):
            print(line, flush=True)


if __name__ == "__main__":
    main()
