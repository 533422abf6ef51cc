"""Fixtures for the viewer tests: small rollouts recorded from the built-in walker."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollrec.engine.rollout import RolloutRecorder
from rollrec.envs import GaitPolicy, WalkerEnv

REPO = Path(__file__).resolve().parents[2]
LEGACY_DIR = REPO.parent / "shared" / "data"


def record_walker(path: Path, *, steps: int = 200, num_envs: int = 8, seed: int = 0) -> Path:
    """Record ``steps`` x ``num_envs`` of `WalkerEnv` with `GaitPolicy` into a v1 file at ``path``."""
    env = WalkerEnv(num_envs, seed=seed, max_episode_steps=60)
    return RolloutRecorder(env, max_steps=steps, progress=False).run(GaitPolicy(), path.parent, filename=path.name)


@pytest.fixture(scope="session")
def walker_file(tmp_path_factory) -> Path:
    """A 200-step, 8-env walker rollout with link poses (shared by the session: do not modify)."""
    return record_walker(tmp_path_factory.mktemp("walker") / "walker.npz")


@pytest.fixture(scope="session")
def legacy_file() -> Path:
    path = LEGACY_DIR / "legacy_rollout_n2.npz"
    if not path.exists():
        pytest.skip(f"legacy samples not present ({LEGACY_DIR})")
    return path


@pytest.fixture(scope="session")
def walker_file_b(tmp_path_factory) -> Path:
    """The same task as `walker_file` (8 envs, 200 steps) with another policy: a second checkpoint."""
    path = tmp_path_factory.mktemp("walker_b") / "walker_b.npz"
    env = WalkerEnv(8, seed=0, max_episode_steps=60)
    return RolloutRecorder(env, max_steps=200, progress=False).run(GaitPolicy(amplitude=0.5), path.parent,
                                                                   filename=path.name)
