"""The background writer and collect_frames_from_env: steps kept, errors reported, files complete."""

from __future__ import annotations

import os

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from rollrec.media.background import BackgroundVideoWriter
from rollrec.media.collect import RenderFailedError, collect_frames_from_env


def count_frames(path) -> tuple[int, tuple[int, int]]:
    with imageio.get_reader(str(path)) as reader:
        return sum(1 for _ in reader.iter_data()), reader.get_meta_data()["size"]


def test_background_writer_returns_steps_and_owns_copies(tmp_path):
    buf = np.zeros((32, 48, 3), np.uint8)
    with BackgroundVideoWriter(tmp_path / "bg.mp4", fps=20, max_queue=2) as writer:
        for step in range(0, 30, 3):
            buf[...] = step * 8  # the caller reuses its buffer at once
            writer.submit(step, buf)
    assert writer.close() == list(range(0, 30, 3))
    n, size = count_frames(tmp_path / "bg.mp4")
    assert n == 10 and size == (48, 32)
    with imageio.get_reader(str(tmp_path / "bg.mp4")) as reader:
        means = [f.mean() for f in reader.iter_data()]
    assert np.all(np.diff(means) > 10)  # every frame kept its own content


def test_background_writer_reports_a_bad_frame_and_removes_the_file(tmp_path):
    writer = BackgroundVideoWriter(tmp_path / "bad.mp4", max_queue=1)
    writer.submit(0, np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(RuntimeError, match="16x8.*16x16"):
        writer.submit(1, np.zeros((8, 16, 3), np.uint8))
        for step in range(2, 50):
            writer.submit(step, np.zeros((16, 16, 3), np.uint8))
        writer.close()
    writer.abort()
    assert os.listdir(tmp_path) == []


class _RenderingEnv:
    """A batched toy env: the picture brightens with the step; render fails at ``fail_at``."""

    def __init__(self, num_envs: int = 2, fail_at: int | None = None, horizon: int | None = None):
        self.num_envs, self.fail_at, self.horizon, self.t = num_envs, fail_at, horizon, 0

    def reset(self):
        self.t = 0
        return torch.zeros(self.num_envs, 3)

    def step(self, action):
        self.t += 1
        done = torch.full((self.num_envs,), self.horizon is not None and self.t >= self.horizon)
        return torch.zeros(self.num_envs, 3), torch.zeros(self.num_envs), done, torch.zeros_like(done), {}

    def render(self):
        if self.fail_at is not None and self.t == self.fail_at:
            raise RuntimeError("GL context lost")
        return torch.full((self.num_envs, 24, 32, 3), min(1.0, 0.05 * self.t))


def _policy(obs):
    return torch.zeros(obs.shape[0], 1)


def test_collect_frames_in_memory_and_streamed(tmp_path):
    frames = collect_frames_from_env(_RenderingEnv(), _policy, max_steps=6)
    assert len(frames) == 6 and frames[0].shape == (2, 24, 32, 3) and frames[0].dtype == np.uint8
    assert frames[5].mean() > frames[0].mean()
    assert (
        len(collect_frames_from_env(_RenderingEnv(horizon=4), _policy, max_steps=100)) == 4
    )  # stops when all done
    path = collect_frames_from_env(_RenderingEnv(), _policy, max_steps=9, path=tmp_path / "c.mp4", fps=15)
    n, size = count_frames(path)
    assert n == 9 and size == (64, 24)  # 2 envs tiled side by side


def test_collect_frames_reports_render_failures_with_the_step(tmp_path):
    with pytest.raises(RenderFailedError, match="at step 3: RuntimeError: GL context lost") as info:
        collect_frames_from_env(_RenderingEnv(fail_at=3), _policy, max_steps=10, path=tmp_path / "c.mp4")
    assert info.value.step == 3
    assert os.listdir(tmp_path) == []
