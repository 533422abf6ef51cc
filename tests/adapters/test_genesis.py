"""Genesis (``genesis-world``, ~4 GB: not installed in CI): a double of its example env.

Follows ``examples/locomotion/go2_env.py`` (Genesis-Embodied-AI/Genesis) ``Go2Env``: ``step``
returns ``(obs TensorDict {"policy"}, rew_buf, reset_buf, extras)`` with ``extras["time_outs"]``
(float), resets inside ``step``; ``rew_buf = sum(reward_functions[name]() * reward_scales[name])``
with ``reward_scales`` already multiplied by ``dt``; and ``RigidEntity`` (``genesis/engine/entities/
rigid_entity/rigid_entity.py``): ``get_pos``/``get_quat`` (wxyz) and ``get_links_pos``/
``get_links_quat`` return new tensors, ``links[i].name``. The real package is recorded by
``scripts/record_genesis.py`` (the README says what it checks).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

import rollrec
from rollrec.adapters import GenesisEnvAdapter, GenesisPoses, adapt

Scene = type("Scene", (), {"__module__": "genesis.engine.scene"})


class Entity:
    def __init__(self, n):
        self.links = [SimpleNamespace(name=s) for s in ("base", "FL_calf", "FR_calf")]
        self.pos = torch.zeros(n, 3, 3)
        self.quat = torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 3, 1)

    def get_pos(self):
        return self.pos[:, 0].clone()

    def get_quat(self):
        return self.quat[:, 0].clone()

    def get_links_pos(self, links_idx_local=None):
        return self.pos.clone() if links_idx_local is None else self.pos[:, links_idx_local].clone()

    def get_links_quat(self, links_idx_local=None):
        return self.quat.clone() if links_idx_local is None else self.quat[:, links_idx_local].clone()


class Go2LikeEnv:
    def __init__(self, n=4):
        self.num_envs, self.dt = n, 0.02
        self.scene, self.robot = Scene(), Entity(n)
        self.reward_scales = {"lin_vel": 1.0 * self.dt, "action_rate": -0.005 * self.dt}
        self.reward_functions = {name: getattr(self, "_reward_" + name) for name in self.reward_scales}
        self.rew_buf = torch.zeros(n)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.actions = torch.zeros(n, 2)
        self.extras = {}

    def _reward_lin_vel(self):
        return torch.exp(-self.robot.pos[:, 0, 0])

    def _reward_action_rate(self):
        return self.actions.square().sum(-1)

    def get_observations(self):
        return SimpleNamespace(items=lambda: {"policy": self.robot.pos.reshape(self.num_envs, -1).clone()}.items(),
                               batch_size=[self.num_envs])

    def reset(self):
        self.robot.pos.zero_()
        self.episode_length_buf.zero_()
        return self.get_observations()

    def step(self, actions):
        self.actions = actions
        self.robot.pos += 0.15 * actions[:, None, :1]
        self.episode_length_buf += 1
        self.rew_buf.zero_()
        for name, func in self.reward_functions.items():
            self.rew_buf += func() * self.reward_scales[name]
        self.reset_buf = (self.episode_length_buf > 5) | (self.robot.pos[:, 0, 0] > 0.4)
        self.extras["time_outs"] = (self.episode_length_buf > 5).float()
        self.robot.pos[self.reset_buf] = 0.0
        self.episode_length_buf[self.reset_buf] = 0
        return self.get_observations(), self.rew_buf, self.reset_buf, self.extras


def test_genesis_example_style_env(tmp_path):
    env = Go2LikeEnv()
    assert type(adapt(env)) is GenesisEnvAdapter
    gen = torch.Generator().manual_seed(0)
    path = rollrec.RolloutRecorder(env, max_steps=20, progress=False).run(lambda o: torch.rand(4, 2, generator=gen), tmp_path)
    r = rollrec.load(path)
    assert r.reward_term_names == ["lin_vel", "action_rate"] and r.link_names == ["base", "FL_calf", "FR_calf"]
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), np.asarray(r["rew"]), atol=1e-7)
    done, trunc = np.asarray(r["done"]), np.asarray(r["truncated"])
    assert (done & ~trunc).any() and trunc.any() and not (trunc & ~done).any()
    assert [e["name"] for e in r.meta["obs_layout"]] == ["policy"]


def test_genesis_poses_subset_of_links():
    src = GenesisPoses(Entity(2), links=[0, 2])
    assert src.link_names == ["base", "FR_calf"] and src.quat_order == "wxyz"
    pose = src()
    assert pose["link_pos"].shape == (2, 2, 3) and pose["base_quat"].shape == (2, 4)
