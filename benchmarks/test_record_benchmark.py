"""pytest-benchmark micro-benchmarks of the recording path: ``pytest benchmarks/``.

Each benchmark has its reference beside it (the same ``group``), so pytest-benchmark's table
shows them side by side: `record()` against the copy limit, and a whole recording against
`np.save` of the same bytes. The headline comparisons are ``rollrec bench``.
"""

from __future__ import annotations

import numpy as np
import pytest

from rollrec.bench.end_to_end import np_save, original_record, rollrec_e2e
from rollrec.bench.record import CopyLimit
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 4096
STEPS = 32


@pytest.fixture(scope="module")
def wl() -> Workload:
    return Workload(N)


@pytest.mark.benchmark(group="per step: record vs copy")
def test_copy_limit(benchmark, wl):
    limit = CopyLimit(wl, 2 * STEPS)
    t = iter(range(1 << 30))
    benchmark(lambda: limit.step(next(t)))


@pytest.mark.benchmark(group="per step: record vs copy")
def test_record(benchmark, wl, tmp_path):
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=STEPS, ring_segments=2)
    t = iter(range(1 << 30))
    benchmark(lambda: rec.record(**wl.step(next(t))))
    rec.close()


@pytest.mark.benchmark(group="end to end: 64 steps to a file")
def test_np_save(benchmark, wl, tmp_path):
    data = wl.flat_bytes(64)
    benchmark.pedantic(np_save, args=(data, tmp_path / "x.npy"), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="end to end: 64 steps to a file")
def test_rollrec_known_length(benchmark, wl, tmp_path):
    benchmark.pedantic(rollrec_e2e, args=(wl, tmp_path / "r.npz", 64), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="end to end: 64 steps to a file")
def test_rollrec_growing(benchmark, wl, tmp_path):
    benchmark.pedantic(rollrec_e2e, args=(wl, tmp_path / "g.npz", 64, False), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="end to end: 64 steps to a file")
def test_original_savez(benchmark, wl, tmp_path):
    def run():
        np.savez(tmp_path / "o.npz", **original_record(wl, 64))
        (tmp_path / "o.npz").unlink()

    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
