"""`adapt`: real classes before duck typing, forcing by name, and the error when nothing fits."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from rollrec.adapters import ADAPTERS, AdapterNotFoundError, GymVectorAdapter, MjlabAdapter, Step, adapt
from rollrec.adapters.base import as_field_dict, loaded_class
from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs import WalkerEnv


def test_error_says_what_was_found():
    class Mystery:
        num_envs = 4

        def step(self, action):
            return None

    with pytest.raises(AdapterNotFoundError) as info:
        adapt(Mystery())
    msg = str(info.value)
    assert "no adapter for Mystery" in msg and "<locals>.Mystery" in msg
    assert "protomotions: get_obs, simulator, reset_buf, terminate_buf" in msg
    assert "it has ['num_envs', 'step']" in msg and "adapter=<" in msg


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown adapter 'isaacgym'"):
        adapt(WalkerEnv(2), "isaacgym")


def test_forcing_a_name_skips_detection():
    """A Gymnasium-looking env forced to mjlab fails with mjlab's own message, not Gymnasium's adapter."""
    with pytest.raises(TypeError, match="holds no manager-based RL env"):
        RolloutRecorder(types.SimpleNamespace(num_envs=2, single_action_space=None, step=None, reset=None), adapter="mjlab")
    assert sorted(ADAPTERS) == ["genesis", "gymnasium", "isaaclab", "isaaclab_direct", "mjlab", "protomotions", "protomotions_genesis", "walker"]


def test_loaded_class_never_imports():
    assert "isaaclab" not in sys.modules
    assert loaded_class("isaaclab.envs.manager_based_rl_env", "ManagerBasedRLEnv") is None
    assert "isaaclab" not in sys.modules


def test_real_gymnasium_class_beats_other_duck_typing():
    gym = pytest.importorskip("gymnasium")

    class Vec(gym.vector.VectorEnv):
        num_envs = 2
        # also has what a ProtoMotions env looks like
        get_obs = simulator = reset_buf = terminate_buf = None

    assert GymVectorAdapter.is_instance(Vec())
    assert not MjlabAdapter.is_instance(Vec())


def test_custom_adapter_pose_is_copied(tmp_path):
    """An adapter of the user's own whose pose() is a view the step overwrites still records the right pose."""
    import rollrec

    class ViewAdapter:
        num_envs, dt, name, quat_order, link_names, meta = 2, 0.1, "views", "wxyz", None, {}

        def __init__(self):
            self.pos = torch.zeros(2, 3)

        def reset(self):
            return torch.zeros(2, 1)

        def pose(self):
            return {"base_pos": self.pos}  # a view of the simulator's state

        def step(self, action):
            self.pos += 1.0  # in place, as simulators do
            return Step(self.pos[:, :1].clone(), torch.ones(2), torch.zeros(2, dtype=torch.bool),
                        torch.zeros(2, dtype=torch.bool))

    path = RolloutRecorder(ViewAdapter(), max_steps=3, progress=False).run(lambda o: torch.zeros(2, 1), tmp_path)
    assert rollrec.load(path)["base_pos"][:, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_tensordict_like_obs_become_a_dict():
    class TD(dict):
        batch_size = (3,)

    class Flat:  # mapping-like without being a Mapping
        batch_size = (3,)

        def __init__(self, d):
            self.d = d

        def items(self):
            return self.d.items()

    obs = Flat({"policy": torch.zeros(3, 2), "extra": Flat({"a": torch.ones(3)})})
    assert list(as_field_dict(obs)) == ["policy", "extra/a"]
    assert list(as_field_dict({"actor": torch.zeros(3, 1), "nested": {"x": torch.ones(3)}})) == ["actor", "nested/x"]
    plain = torch.zeros(3, 2)
    assert as_field_dict(plain) is plain
