"""Bad volume options are refused with a message naming the option, before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec.engine import recorder as recorder_module

N = 4


def step(**extra):
    return dict(obs=torch.zeros(N, 2), act=torch.zeros(N, 1), rew=torch.zeros(N), done=torch.zeros(N, dtype=torch.bool),
                **extra)


@pytest.mark.parametrize("options, message", [
    ({"envs": [0, 4]}, r"envs: env 4 out of range \(0\.\.3\)"),
    ({"envs": [1, 1]}, "envs: env 1 is given twice"),
    ({"envs": [True, False]}, r"a bool mask must have shape \(4,\)"),
    ({"envs": [0.5]}, "envs must be a list or range of env ids or a bool mask"),
    ({"every": 0}, "every must be an integer >= 1"),
    ({"every": 1.5}, "every must be an integer >= 1"),
    ({"capture": "terminated"}, "capture= needs window=W"),
    ({"window": 3}, "window= is the length kept of each captured episode: give capture= too"),
    ({"capture": "failed", "window": 3}, "capture='failed': give 'terminated', a return threshold"),
    ({"capture": float("nan"), "window": 3}, "a return threshold must be a finite number"),
    ({"capture": "terminated", "window": 0}, "window must be an integer >= 1"),
    ({"capture": "terminated", "window": 2, "envs": [1]}, "envs= and capture= cannot be combined"),
    ({"all_env_fields": ("rew",)}, "all_env_fields= says what the envs without detail keep: give envs= or capture="),
    ({"fields": "obs"}, "fields takes a list of field names, got the string 'obs'"),
    ({"dtypes": {"obs": torch.bfloat16}}, "has no numpy equivalent"),
    ({"dtypes": {"obs": "nonsense"}}, "is not a dtype"),
])
def test_bad_options_are_refused_at_construction(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        Recorder(tmp_path / "r.npz", N, **options)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, message", [
    ({"fields": ("obs", "velocity")}, r"fields: no field named 'velocity'; the first step gave \["),
    ({"envs": [1], "all_env_fields": ("rew", "links")}, "all_env_fields: no field named 'links'"),
    ({"dtypes": {"done": torch.uint8}}, r"dtypes\['done'\]: done is stored as bool"),
    ({"dtypes": {"rew": torch.int32}}, r"dtypes\['rew'\]: rew must stay a float"),
    ({"dtypes": {"base_pos": torch.float16}}, "base_pos was not given to record"),
])
def test_names_the_first_step_does_not_give_are_refused_at_the_first_record(tmp_path, options, message):
    rec = Recorder(tmp_path / "r.npz", N, **options)
    with pytest.raises(ValueError, match=message):
        rec.record(**step())
    assert not (tmp_path / "r.npz.partial").exists()


def test_a_capture_callable_that_returns_the_wrong_shape_is_named(tmp_path):
    rec = Recorder(tmp_path / "r.npz", N, capture=lambda ends: ends.returns[:2] > 0, window=2)
    with pytest.raises(ValueError, match=r"capture callable must return a \[4\] tensor on cpu, got Tensor \(2,\)"):
        rec.record(**step())


def test_sharded_recordings_refuse_envs_every_and_capture_before_any_collective(tmp_path, monkeypatch):
    monkeypatch.setattr(recorder_module.dist_meta, "world", lambda: (0, 2))
    for options in ({"envs": [0]}, {"every": 2}, {"capture": "terminated", "window": 2}):
        with pytest.raises(ValueError, match="not supported for a recording sharded across torch.distributed ranks"):
            Recorder(tmp_path / "r.npz", N, **options)
    Recorder(tmp_path / "r.npz", N, every=2, distributed=False)  # a plain file per rank is fine


def test_recorder_memory_holds_the_window_ring(tmp_path):
    """The trigger's one large cost: (W - 1 + ring rows) x N x the window fields' bytes, on the device."""
    obs_dim, W = 64, 20
    with Recorder(tmp_path / "r.npz", N, segment_steps=8, capture="terminated", window=W) as rec:
        rec.record(obs=torch.zeros(N, obs_dim), act=torch.zeros(N, 2), rew=torch.zeros(N), done=torch.zeros(N, dtype=torch.bool))
        ring_rows = rec.segment_length * rec.ring_segments
        window_bytes = (W - 1 + ring_rows) * N * (obs_dim + 2) * 4
        light_bytes = ring_rows * N * (4 + 1 + 1 + 12 + 16)  # rew, done, truncated, base pose (constant) + ...
        episode_bytes = ring_rows * N * 11 + N * 16
        assert window_bytes <= rec.ring_bytes <= window_bytes + light_bytes + episode_bytes + 1024
    with rollrec.load(tmp_path / "r.npz") as r:
        assert r.T == 1 and np.asarray(r.stored("obs")).shape == (0, obs_dim)
