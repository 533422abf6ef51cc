"""pytest-benchmark entry points for video: ``pytest benchmarks/test_video_benchmark.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bench_video import SIZE, record_walker

FRAMES = 100


@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    return record_walker(tmp_path_factory.mktemp("bench") / "walker.npz", steps=FRAMES)


def test_render_rollout_640x480(benchmark, walker, tmp_path):
    from rollrec.video import render_rollout

    benchmark.extra_info["frames"] = FRAMES
    benchmark.pedantic(
        render_rollout, args=(walker, tmp_path / "r.mp4"), kwargs={"size": SIZE, "progress": False}, rounds=3
    )
    fps = FRAMES / benchmark.stats.stats.mean
    benchmark.extra_info["fps"] = fps
    assert fps >= 30


def test_encode_only_640x480(benchmark, tmp_path):
    from rollrec.media.writer import save_video

    frames = [np.full((SIZE[1], SIZE[0], 3), t % 256, np.uint8) for t in range(FRAMES)]
    benchmark.pedantic(save_video, args=(frames, tmp_path / "e.mp4"), rounds=3)
    benchmark.extra_info["fps"] = FRAMES / benchmark.stats.stats.mean
