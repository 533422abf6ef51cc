"""A recording with an episode trigger killed with SIGKILL: the recovered file is consistent and exact.

The child records the reference's steps (`tests/volume_reference.py`, same seed) with
``capture=``, ``window=`` and ``every=``; after `rollrec recover`, the rows, the index entries and
their windows equal the reference computed over the recovered steps (the episodes still running
at the kill are not in the index: the recorder lists those at close).
"""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

import rollrec
from rollrec.cli import main

N, K, W, SEED = 5, 2, 3, 31
CHILD = textwrap.dedent(
    f"""
    import importlib.util, sys, time
    from rollrec.engine import Recorder
    spec = importlib.util.spec_from_file_location("ref", sys.argv[2])
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    steps = ref.make_steps(400, {N}, seed={SEED}, p_done=0.2, burst=(7,))
    rec = Recorder(sys.argv[1], {N}, segment_steps=4, capture="terminated", window={W}, every={K})
    for t, step in enumerate(steps):
        rec.record(**step)
        if t == 61:  # 7 segments of 4 rows (56 steps) handed to the writer
            time.sleep(0.5)  # let the writer commit them
            print("ready", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.slow
def test_a_killed_trigger_recording_recovers_consistent_rows_index_and_windows(tmp_path, volume_reference, kill_when_ready):
    expected_file, make_steps = volume_reference
    reference = os.path.join(os.path.dirname(__file__), os.pardir, "volume_reference.py")
    path = tmp_path / "killed.npz"
    kill_when_ready(CHILD, str(path), reference)
    assert main(["recover", str(path)]) == 0
    with np.load(path, allow_pickle=False) as npz:
        got = {k: npz[k] for k in npz.files}
        meta = json.loads(str(npz["meta"]))
    rows = meta["num_steps"]
    assert rows >= 28 and meta["recovered"] is True and meta["format_version"] == 2
    steps = make_steps(400, N, seed=SEED, p_done=0.2, burst=(7,))[: rows * K]
    expected = expected_file(steps, N, capture="terminated", window=W, every=K)
    finished = expected["episodes"][:, 3] != 0
    np.testing.assert_array_equal(got["episodes"], expected["episodes"][finished])
    np.testing.assert_array_equal(got["episode_return"], expected["episode_return"][finished])
    for name in ("obs", "act", "rew", "done", "base_quat"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    with rollrec.load(path) as r:  # the reader's checks of the index hold
        assert len(r.episodes()) == int(finished.sum())
