"""Bad input to record(): a ValueError naming the field, and the recording stays intact."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder

N = 4


def good(t: float = 0.0) -> dict:
    t = float(t)
    return dict(
        obs=torch.full((N, 3), t),
        act=torch.zeros(N, 2),
        rew=torch.full((N,), t),
        done=torch.zeros(N, dtype=torch.bool),
        reward_terms={"pose": torch.full((N,), t)},
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("act"), r"'act' is missing"),
        (lambda s: s.update(extra=torch.zeros(N)), r"'extra' is new"),
        (lambda s: s.update(obs=torch.zeros(N - 1, 3)), r"'obs'.*expected N=4 envs, got 3"),
        (lambda s: s.update(obs=torch.zeros(N, 3, 1)), r"'obs'.*expected rank 2.*\(4, 3\).*\(4, 3, 1\)"),
        (lambda s: s.update(obs=torch.zeros(N, 5)), r"'obs'.*expected shape \(4, 3\), got \(4, 5\)"),
        (lambda s: s.update(rew=torch.zeros(N, dtype=torch.float64)), r"'rew'.*expected dtype torch.float32, got torch.float64"),
        (lambda s: s.update(reward_terms={"vel": torch.zeros(N)}), r"'reward_terms'.*missing \['pose'\], new \['vel'\]"),
        (lambda s: s.update(obs={"a": torch.zeros(N, 3)}), r"'obs'"),
    ],
)
def test_bad_step_raises_and_records_nothing(tmp_path, change, message):
    path = tmp_path / "bad.npz"
    with Recorder(path, N, segment_steps=2) as rec:
        rec.record(**good(0))
        rec.record(**good(1))
        bad = good(99)
        change(bad)
        with pytest.raises(ValueError, match=message):
            rec.record(**bad)
        rec.record(**good(2))  # still usable
    r = rollrec.load(path)
    np.testing.assert_array_equal(np.asarray(r["obs"])[:, 0, 0], [0, 1, 2])


def test_first_step_checks(tmp_path):
    rec = Recorder(tmp_path / "x.npz", N)
    with pytest.raises(ValueError, match=r"'rew'.*expected N=4"):
        rec.record(obs=torch.zeros(N, 3), act=torch.zeros(N, 2), rew=torch.zeros(3), done=torch.zeros(N))
    with pytest.raises(ValueError, match=r"'done' is required"):
        rec.record(obs=torch.zeros(N, 3), act=torch.zeros(N, 2), rew=torch.zeros(N))
    with pytest.raises(ValueError, match=r"'base_pos'.*expected shape \(4, 3\)"):
        rec.record(obs=torch.zeros(N, 3), act=torch.zeros(N, 2), rew=torch.zeros(N), done=torch.zeros(N), base_pos=torch.zeros(N, 4))


def test_record_after_close_is_an_error(tmp_path):
    rec = Recorder(tmp_path / "c.npz", N)
    rec.record(**good())
    rec.close()
    assert rec.close() == tmp_path / "c.npz"  # idempotent
    with pytest.raises(RuntimeError, match="after close"):
        rec.record(**good())


def test_close_without_steps_is_an_error_that_does_not_send_you_to_recover(tmp_path):
    rec = Recorder(tmp_path / "empty.npz", N)
    with pytest.raises(ValueError, match="nothing was recorded") as first:
        rec.close()
    with pytest.raises(RuntimeError) as second:  # closing again says the same, not "run rollrec recover"
        rec.close()
    for err in (first.value, second.value):
        assert "no file was written" in str(err) and "recover" not in str(err)
    assert os.listdir(tmp_path) == []


def test_constructor_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="num_envs"):
        Recorder(tmp_path / "a.npz", 0)
    with pytest.raises(ValueError, match="quat_order"):
        Recorder(tmp_path / "a.npz", 1, quat_order="zyxw")
