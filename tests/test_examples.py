"""The numbered examples run end to end (small sizes)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

import rollrec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_record_then_render(tmp_path):
    path = load_example("00_record_rollout").main(str(tmp_path), num_envs=16, steps=40)
    r = rollrec.load(path)
    assert (r.T, r.N) == (40, 16) and r.has_links
    videos = load_example("01_render_video").main(str(path))
    for video in videos:
        assert sum(1 for _ in iio.imiter(video)) == 40


@pytest.mark.slow
def test_record_across_ranks_under_torchrun(tmp_path):
    example = EXAMPLES / "05_record_across_ranks.py"
    code = f"import runpy, sys; sys.argv = ['x']; m = runpy.run_path({str(example)!r}); m['main']({str(tmp_path)!r}, 16, 12)"
    script = tmp_path / "run_example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(script)], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "example_04: 36 envs x 12 steps from 2 rank(s)" in out.stdout
    with rollrec.load(tmp_path / "example_04") as r:
        assert (r.N, r.T) == (36, 12) and [s.entry.num_envs for s in r.shards] == [16, 20]


def test_record_across_ranks_without_torchrun_writes_one_file(tmp_path):
    path = load_example("05_record_across_ranks").main(str(tmp_path), 8, 5)
    assert path == tmp_path / "example_04.npz" and rollrec.load(path).N == 8


def test_mujoco_robot_example(tmp_path):
    import pytest

    pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
    path, video = load_example("06_mujoco_robot").main(str(tmp_path), num_envs=2, steps=20)
    with rollrec.load(path) as r:
        assert r.model is not None and r.model.num_geoms == 14
    assert sum(1 for _ in iio.imiter(video)) == 20


def test_record_a_camera(tmp_path):
    pytest.importorskip("av")
    path, video = load_example("07_record_camera").main(str(tmp_path), num_envs=64, steps=30)
    with rollrec.load(path) as r:
        assert set(r.cameras) == {"chase", "depth"} and len(r.images("chase", 12)) == 30
    assert sum(1 for _ in iio.imiter(video)) == 30
