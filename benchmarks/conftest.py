"""Fixtures for the benchmarks: torch on one thread, a large rollout built once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def large_rollout(tmp_path_factory) -> Path:
    """A ~1.1 GB synthetic rollout (``ROLLREC_BENCH_ROLLOUT`` names one to reuse, built there if absent)."""
    from test_reader_benchmark import ENV_VAR, build_rollout

    path = Path(os.environ.get(ENV_VAR) or tmp_path_factory.mktemp("bench") / "large.npz")
    if not path.exists():
        build_rollout(path, size_gb=float(os.environ.get("ROLLREC_BENCH_SIZE_GB", "1.1")))
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch runs on one intra-op thread for the module (as `rollrec bench` does), restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
