"""make_policy loads TorchScript, torch.export and state-dict checkpoints."""

from __future__ import annotations

import pytest
import torch

from rollrec.loop.policy import make_policy
from rollrec.envs import GaitPolicy, WalkerEnv


@pytest.fixture
def obs():
    return WalkerEnv(5, seed=0).reset()


def test_torchscript(tmp_path, obs):
    torch.jit.save(torch.jit.script(GaitPolicy(amplitude=0.5)), tmp_path / "p.pt")
    policy = make_policy(tmp_path / "p.pt")
    torch.testing.assert_close(policy(obs), GaitPolicy(amplitude=0.5)(obs))
    assert policy(obs).requires_grad is False


def test_torch_export(tmp_path, obs):
    program = torch.export.export(GaitPolicy(knee_lift=0.4), (obs,))
    torch.export.save(program, tmp_path / "p.pt2")
    torch.testing.assert_close(make_policy(tmp_path / "p.pt2")(obs), GaitPolicy(knee_lift=0.4)(obs))


def test_state_dict_needs_module(tmp_path, obs):
    torch.save(GaitPolicy(amplitude=0.3).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ValueError, match="module="):
        make_policy(tmp_path / "sd.pt")
    policy = make_policy(tmp_path / "sd.pt", module=GaitPolicy())
    torch.testing.assert_close(policy(obs), GaitPolicy(amplitude=0.3)(obs))


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError):
        make_policy(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a TorchScript"):
        make_policy(tmp_path / "junk.pt")
