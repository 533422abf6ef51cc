"""Recording under ``torch.inference_mode()``, closing outside it (item 4 of issue 20).

Tensors allocated inside inference mode are inference tensors: an in-place update of one
outside inference mode raises. `RolloutRecorder` records inside ``torch.inference_mode()`` and
closes outside it, so every buffer the recorder owns must be a normal tensor.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec.envs import GaitPolicy, WalkerEnv

N = 5


@pytest.mark.parametrize("options", [{"every": 3}, {"capture": "terminated", "window": 2}, {"envs": [0, 3], "every": 2},
                                     {}], ids=["every", "capture", "envs-every", "plain"])
def test_rollout_recorder_records_in_inference_mode_and_closes_outside(tmp_path, options):
    path = rollrec.RolloutRecorder(WalkerEnv(N, seed=0, max_episode_steps=4), max_steps=10, progress=False,
                                   **options).run(GaitPolicy(), tmp_path)
    with rollrec.load(path) as r:
        assert r.meta["recorded_steps" if options else "num_steps"] == 10


def test_recording_in_inference_mode_writes_the_reference_file(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(13, N, seed=1, burst=(5,))  # the last kept row holds 1 of its 2 steps
    options = {"every": 2, "capture": "terminated", "window": 3}
    rec = Recorder(tmp_path / "r.npz", N, segment_steps=3, **options)
    with torch.inference_mode():
        for s in steps:
            rec.record(**s)
    rec.close()  # outside inference mode: ends the last episodes in place
    expected = expected_file(steps, N, **options)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        for name in (k for k in expected if not k.startswith("_")):
            np.testing.assert_array_equal(npz[name], expected[name], err_msg=name)
