"""Rollouts to render: a recorded WalkerEnv run and a synthetic base moving along +x."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs.walker import GaitPolicy, WalkerEnv


def record_walker(path, steps: int = 120, num_envs: int = 4):
    """Record ``steps`` x ``num_envs`` of WalkerEnv + GaitPolicy as a v1 file (poses before each step)."""
    env = WalkerEnv(num_envs, seed=0)
    return RolloutRecorder(env, max_steps=steps, progress=False).run(GaitPolicy(), path.parent, filename=path.name)


def moving_base_fields(steps: int = 40, num_envs: int = 2) -> dict:
    """Env 0's base slides from x=-1 to x=+1 (y=0, z=0.4); env 1 slides along +y. No links."""
    s = np.linspace(-1.0, 1.0, steps, dtype=np.float32)
    base_pos = np.zeros((steps, num_envs, 3), np.float32)
    base_pos[..., 2] = 0.4
    base_pos[:, 0, 0] = s
    base_pos[:, 1 % num_envs, 1] = s
    quat = np.zeros((steps, num_envs, 4), np.float32)
    quat[..., 0] = 1.0
    return {
        "obs": np.zeros((steps, num_envs, 3), np.float32),
        "act": np.zeros((steps, num_envs, 1), np.float32),
        "rew": np.ones((steps, num_envs), np.float32),
        "done": np.zeros((steps, num_envs), bool),
        "truncated": np.zeros((steps, num_envs), bool),
        "base_pos": base_pos,
        "base_quat": quat,
        "rew_terms": np.stack([np.full((steps, num_envs), 0.7), np.full((steps, num_envs), 0.3)], -1).astype(
            np.float32
        ),
        "rew_term_names": ["progress", "alive"],
    }


@pytest.fixture(scope="session")
def walker_file(tmp_path_factory):
    return record_walker(tmp_path_factory.mktemp("walker") / "walker.npz")


@pytest.fixture(scope="session")
def moving_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("moving") / "moving.npz"
    return rollrec.save(path, moving_base_fields(), dt=0.05)


@pytest.fixture
def moving_fields():
    """`moving_base_fields`, to build variants of the synthetic rollout."""
    return moving_base_fields
