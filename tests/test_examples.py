"""The numbered examples run end to end (small sizes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import imageio.v3 as iio

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


def test_mujoco_robot_example(tmp_path):
    import pytest

    pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
    path, video = load_example("05_mujoco_robot").main(str(tmp_path), num_envs=2, steps=20)
    with rollrec.load(path) as r:
        assert r.model is not None and r.model.num_geoms == 14
    assert sum(1 for _ in iio.imiter(video)) == 20
