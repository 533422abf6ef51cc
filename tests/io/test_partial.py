"""`PartialRecording`: the one owner of the files beside a rollout being written, and their states."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import rollrec
from rollrec._npz.stream import MemberSpec
from rollrec.io.partial import PartialRecording, RecordingState, static_members


def _steps(rec, steps):
    for t in range(steps):
        rec.record(obs=torch.full((2, 3), float(t)), act=torch.zeros(2, 1), rew=torch.full((2,), float(t)),
                   done=torch.zeros(2, dtype=torch.bool))


def test_a_path_goes_from_absent_to_live_to_finished(tmp_path):
    path = tmp_path / "run.npz"
    assert PartialRecording.state_of(path) is RecordingState.ABSENT
    rec = rollrec.Recorder(path, 2, segment_steps=2)
    _steps(rec, 3)
    for name in ("run.npz", "run.npz.partial", "run.npz.partial.json", "run.npz.partial.tmp", "run.npz.partial.lock"):
        assert PartialRecording.state_of(tmp_path / name) is RecordingState.LIVE, name  # the recorder holds the lease
    rec.close()
    assert PartialRecording.state_of(path) is RecordingState.FINISHED
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_the_recorder_asks_its_partial_recording_and_recover_finishes_it(tmp_path):
    path = tmp_path / "run.npz"
    rec = rollrec.Recorder(path, 2, segment_steps=2)
    _steps(rec, 4)
    rec._pipeline.close()  # every step committed; then the process "dies"
    rec._stream.close()
    rec._partial._drop_lease()  # as the kernel drops a dead process's lock
    rec._finalizer.detach()  # ... and no finaliser runs in a dead process
    recording = PartialRecording.of(str(path) + ".partial")
    assert recording.path == str(path) and recording.state() is RecordingState.INTERRUPTED
    with pytest.raises(FileExistsError, match="rollrec recover"):
        recording.check_not_interrupted()
    recording.check_not_interrupted(overwrite=True)  # the caller chose to discard it
    assert recording.recover() == path
    assert recording.state() is RecordingState.FINISHED
    with rollrec.load(path) as r:
        assert r.T == 4 and r.meta["recovered"]
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], np.arange(4))


def test_begin_finish_and_the_failure_message(tmp_path):
    recording = PartialRecording(tmp_path / "sub" / "r.npz")  # the folder is made
    info = PartialRecording.recovery_info({"format": "rollrec"}, ["a"], None, False)
    stream = recording.begin([MemberSpec("x", "<f4", (2,), 4)], info=info)
    stream.append("x", np.ones((3, 2), np.float32))
    stream.commit(3)
    assert recording.committed_rows == 3
    message = recording.failure_message(OSError(28, "No space left on device"))
    assert "the 3 steps committed to r.npz.partial" in message and "rollrec recover" in message
    small = static_members({"format": "rollrec"}, ["a"])
    assert recording.finish(small, 3, compress=False) == tmp_path / "sub" / "r.npz"
    recording.release()
    assert sorted(os.listdir(tmp_path / "sub")) == ["r.npz"]
    assert recording.failure_message(OSError(5, "I/O error")).endswith("no partial file is left")


def test_the_model_is_kept_for_recovery_and_dropped_on_request(tmp_path, make_model):
    from rollrec.io.model import model_members

    path = tmp_path / "run.npz"
    recording = PartialRecording(path)
    members, meta = model_members(make_model(["a", "b"]), ["a", "b"])
    recording.keep_model(members, meta)
    kept = recording.kept_model()
    assert kept is not None and set(kept[0]) == set(members) and kept[1] == meta
    assert sorted(os.listdir(tmp_path)) == ["run.npz.partial.model.npz"]  # no temporary file left
    recording.keep_model(None)
    assert recording.kept_model() is None and os.listdir(tmp_path) == []
