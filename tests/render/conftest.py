"""Rollouts to render: a recorded WalkerEnv run and a synthetic base moving along +x."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rollrec
from rollrec.envs.walker import GaitPolicy, WalkerEnv


def record_walker(path, steps: int = 120, num_envs: int = 4):
    """Record ``steps`` x ``num_envs`` of WalkerEnv + GaitPolicy as a v1 file (poses before each step)."""
    env, policy = WalkerEnv(num_envs, seed=0), GaitPolicy()
    obs = env.reset()
    cols: dict[str, list] = {
        k: []
        for k in [
            "obs",
            "act",
            "rew",
            "done",
            "truncated",
            "base_pos",
            "base_quat",
            "rew_terms",
            "link_pos",
            "link_quat",
        ]
    }
    with torch.no_grad():
        for _ in range(steps):
            link_pos, link_quat = env.link_poses()
            act = policy(obs)
            cols["obs"].append(obs)
            cols["act"].append(act)
            cols["base_pos"].append(env.base_pos.clone())
            cols["base_quat"].append(env.base_quat)
            cols["link_pos"].append(link_pos)
            cols["link_quat"].append(link_quat)
            obs, rew, terminated, truncated, info = env.step(act)
            cols["rew"].append(rew)
            cols["done"].append(terminated | truncated)
            cols["truncated"].append(truncated)
            cols["rew_terms"].append(
                torch.stack([info["reward_terms"][n] for n in env.reward_term_names], -1)
            )
    fields = {k: torch.stack(v).numpy() for k, v in cols.items()}
    fields["rew_term_names"] = list(env.reward_term_names)
    fields["link_names"] = list(env.link_names)
    return rollrec.save_rollout(
        path, fields, dt=env.dt, env_name=env.name, meta={"link_parents": list(env.link_parents)}
    )


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
    return rollrec.save_rollout(path, moving_base_fields(), dt=0.05)


@pytest.fixture
def moving_fields():
    """`moving_base_fields`, to build variants of the synthetic rollout."""
    return moving_base_fields
