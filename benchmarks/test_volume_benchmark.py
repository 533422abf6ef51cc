"""pytest-benchmark of `record()` with each volume option, beside the copy limit: ``pytest benchmarks/``.

The same configurations as ``rollrec bench --only volume`` (`rollrec.bench.volume`),
one group: the copy of the same tensors and `record()` per step with each set of options. The
bytes each configuration writes for ``STEPS`` steps are in each benchmark's ``extra_info``.
"""

from __future__ import annotations

import zipfile

import pytest
import torch

from rollrec.bench.record import CopyLimit
from rollrec.bench.volume import Episodes, configs
from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 4096
STEPS = 96
CONFIGS = configs(N)


@pytest.fixture(scope="module")
def wl() -> Workload:
    return Workload(N)


@pytest.fixture(scope="module")
def eps() -> Episodes:
    return Episodes(N, STEPS, torch.device("cpu"))


@pytest.mark.benchmark(group="per step: record() with volume options vs copy")
def test_copy_of_the_same_tensors(benchmark, wl):
    limit = CopyLimit(wl, 64)
    t = iter(range(1 << 30))
    benchmark(lambda: limit.step(next(t)))
    benchmark.extra_info["bytes"] = STEPS * wl.step_bytes


@pytest.mark.benchmark(group="per step: record() with volume options vs copy")
@pytest.mark.parametrize("name", list(CONFIGS))
def test_record_with(benchmark, wl, eps, tmp_path, name):
    rec = Recorder(tmp_path / "r.npz", N, max_steps=STEPS, flush_interval_s=None, **CONFIGS[name])
    rec.record(**eps.step(wl, 0))
    t = iter(range(1, STEPS))
    benchmark.pedantic(lambda: rec.record(**eps.step(wl, next(t))), rounds=STEPS - 1, iterations=1)
    rec.close()
    with zipfile.ZipFile(tmp_path / "r.npz") as zf:
        benchmark.extra_info["bytes"] = sum(i.compress_size for i in zf.infolist())
