"""pytest-benchmark: TorchRL's replay buffer next to rollrec (skipped without torchrl)."""

from __future__ import annotations

import pytest
import torch

from rollrec.bench.end_to_end import rollrec_e2e, torchrl_available, torchrl_e2e
from rollrec.bench.workload import Workload

pytestmark = pytest.mark.skipif(not torchrl_available(), reason="torchrl not installed")
N = 4096
STEPS = 64


@pytest.fixture(scope="module")
def wl() -> Workload:
    torch.set_num_threads(1)
    return Workload(N)


@pytest.mark.benchmark(group="end to end vs TorchRL: 64 steps")
def test_torchrl_extend_dumps(benchmark, wl, tmp_path):
    benchmark.pedantic(lambda: sum(torchrl_e2e(wl, tmp_path / "trl", STEPS)), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="end to end vs TorchRL: 64 steps")
def test_rollrec(benchmark, wl, tmp_path):
    benchmark.pedantic(rollrec_e2e, args=(wl, tmp_path / "r.npz", STEPS), rounds=3, warmup_rounds=1)
