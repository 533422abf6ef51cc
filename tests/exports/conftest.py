"""Fixtures for the export tests: rollouts to export, and what they hold, read with numpy alone.

`reference(path)` reads a plain (v1) rollout file with ``np.load`` (not rollrec's reader) and
segments it into episodes from its ``done``/``truncated`` members: the oracle the exports are
compared with, value by value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import rollrec

#: An obs layout naming the 5 columns of `make_fields`' obs.
OBS_LAYOUT = [{"name": "joint_pos", "start": 0, "stop": 3, "shape": [3]},
              {"name": "phase", "start": 3, "stop": 5, "shape": [2]}]


@dataclass
class Reference:
    """A plain rollout as numpy reads it: ``fields[key]`` ``[T, N, ...]`` and every episode
    ``(env, start, stop, end, return)``, by env then start."""

    fields: dict[str, np.ndarray]
    meta: dict
    episodes: list[tuple[int, int, int, str, float]]

    def of(self, *, envs=None, end=None, min_return=None) -> list[tuple[int, int, int, str, float]]:
        return [e for e in self.episodes if (envs is None or e[0] in envs) and (end is None or e[3] == end)
                and (min_return is None or e[4] >= min_return)]


def read_reference(path: Path) -> Reference:
    with np.load(path, allow_pickle=False) as f:
        fields = {k: f[k] for k in f.files}
    meta = json.loads(str(fields.pop("meta")))
    done, truncated, rew = fields["done"], fields["truncated"], fields["rew"].astype(np.float64)
    T, N = done.shape
    episodes = []
    for env in range(N):
        start = 0
        for t in range(T):
            if done[t, env] or t == T - 1:
                end = ("truncated" if truncated[t, env] else "terminated") if done[t, env] else "unfinished"
                episodes.append((env, start, t + 1, end, float(rew[start : t + 1, env].sum())))
                start = t + 1
    return Reference(fields, meta, episodes)


@pytest.fixture
def reference():
    return read_reference


def smooth_frames(T: int, N: int, H: int = 32, W: int = 48, seed: int = 0) -> np.ndarray:
    """``[T, N, H, W, 3]`` uint8 RGB pictures that change every step and env: soft gradients and a
    moving square (lossy video keeps them close), distinct per (step, env)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    out = np.empty((T, N, H, W, 3), np.uint8)
    for t in range(T):
        for n in range(N):
            base = rng.integers(40, 200, 3)
            img = np.stack([base[0] + 40 * x / W, base[1] + 40 * y / H, np.full((H, W), base[2])], -1)
            side = max(1, min(8, H // 3, W // 3))
            cx, cy = (3 * t + 7 * n) % (W - side), (2 * t + 5 * n) % (H - side)
            img[cy : cy + side, cx : cx + side] = 250
            out[t, n] = np.clip(img, 0, 255).astype(np.uint8)
    return out


@pytest.fixture
def camera_rollout(tmp_path, make_fields) -> Path:
    """40 steps x 3 envs with link poses, a named obs, an int extra and a raw camera ``front``
    ``[T, N, 32, 48, 3]`` uint8; episodes end every 15 steps (staggered), some truncated."""
    fields = make_fields(40, 3, L=2, done_every=15, extras={"contacts": ((2, 2), np.int16)})
    fields["front"] = smooth_frames(40, 3)
    return rollrec.save(tmp_path / "cam.npz", fields, dt=0.02, env_name="cam-test", meta={"obs_layout": OBS_LAYOUT})


@pytest.fixture
def walker(record_walker, tmp_path) -> Path:
    """The built-in walker, 100 steps x 8 envs with link poses (terminations and time limits)."""
    return record_walker(tmp_path / "walker.npz", steps=100, num_envs=8, max_episode_steps=40)
