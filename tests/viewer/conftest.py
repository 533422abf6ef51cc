"""Fixtures for the viewer tests: small rollouts recorded from the built-in walker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec.envs import GaitPolicy, WalkerEnv

REPO = Path(__file__).resolve().parents[2]
LEGACY_DIR = REPO.parent / "shared" / "data"


def record_walker(path: Path, *, steps: int = 200, num_envs: int = 8, seed: int = 0, links: bool = True) -> Path:
    """Record ``steps`` x ``num_envs`` of `WalkerEnv` with `GaitPolicy` into a v1 file at ``path``.

    Base and link poses are taken before each step, so they describe the state ``obs`` describes.
    """
    import torch

    env = WalkerEnv(num_envs, seed=seed, max_episode_steps=60)
    policy = GaitPolicy()
    obs = env.reset()
    rec: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat",
                                             "rew_terms", "link_pos", "link_quat")}
    with torch.no_grad():
        for _ in range(steps):
            rec["obs"].append(obs.numpy())
            rec["base_pos"].append(env.base_pos.numpy().copy())
            rec["base_quat"].append(env.base_quat.numpy())
            lp, lq = env.link_poses()
            rec["link_pos"].append(lp.numpy())
            rec["link_quat"].append(lq.numpy())
            act = policy(obs)
            obs, rew, term, trunc, info = env.step(act)
            rec["act"].append(act.numpy())
            rec["rew"].append(rew.numpy())
            rec["done"].append((term | trunc).numpy())
            rec["truncated"].append(trunc.numpy())
            rec["rew_terms"].append(torch.stack(list(info["reward_terms"].values()), -1).numpy())
    fields = {k: np.stack(v) for k, v in rec.items()}
    fields["rew_term_names"] = list(WalkerEnv.reward_term_names)
    meta = {}
    if links:
        fields["link_names"] = list(WalkerEnv.link_names)
        meta["link_parents"] = list(WalkerEnv.link_parents)
    else:
        del fields["link_pos"], fields["link_quat"]
    rollrec.save_rollout(path, fields, dt=env.dt, env_name=WalkerEnv.name, meta=meta)
    return path


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
