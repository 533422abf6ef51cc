"""The files beside a rollout being written: never clobbered, never followed, never left behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec._npz import faults
from rollrec.io.partial import partial_paths

N = 3


def record(path, steps: int = 5, extra=None, **kwargs):
    with Recorder(path, N, segment_steps=2, **kwargs) as rec:
        for t in range(steps):
            rec.record(obs=torch.full((N, 2), float(t)), act=torch.zeros(N, 1), rew=torch.full((N,), float(t)),
                       done=torch.zeros(N, dtype=torch.bool), **(extra(t) if extra else {}))
    return rollrec.load(path)


def interrupted(path, steps: int = 4):
    """Leave an unrecovered recording of ``path``, as a killed process does."""
    rec = Recorder(path, N, segment_steps=2)
    for t in range(steps):
        rec.record(obs=torch.full((N, 2), float(t)), act=torch.zeros(N, 1), rew=torch.full((N,), float(t)),
                   done=torch.zeros(N, dtype=torch.bool))
    rec._pipeline.close()  # the writer has committed every step; then the process "dies"
    rec._stream.close()
    rec._partial._drop_lease()  # as the kernel drops a dead process's lock
    rec._finalizer.detach()  # ... and no finaliser runs in a dead process


def test_an_unrecovered_recording_is_never_clobbered(tmp_path):
    path = tmp_path / "run.npz"
    interrupted(path, steps=4)
    with pytest.raises(FileExistsError, match=r"interrupted recording .* run `rollrec recover .*run.npz` .* overwrite=True"):
        Recorder(path, N)
    with pytest.raises(FileExistsError, match="rollrec recover"):
        rollrec.save(path, {}, dt=0.1)
    assert rollrec.recover(path) == path  # still there to recover
    assert rollrec.load(path).T == 4


def test_overwrite_discards_an_unrecovered_recording(tmp_path):
    path = tmp_path / "run.npz"
    interrupted(path, steps=4)
    r = record(path, steps=3, overwrite=True)
    assert r.T == 3 and not r.meta.get("recovered")
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_a_partial_file_without_sidecar_is_replaced(tmp_path):
    path = tmp_path / "run.npz"
    data, _ = partial_paths(path)
    with open(data, "wb") as f:  # a one-shot save_rollout that was killed: nothing can recover it
        f.write(b"junk")
    assert record(path).T == 5
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
@pytest.mark.parametrize(
    "planted", [".partial", ".partial.json", ".partial.json.tmp", ".partial.tmp", ".partial.model.npz.tmp",
                ".partial.lock"],
)
def test_a_planted_symlink_is_never_followed(tmp_path, planted, make_model):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "out" / "run.npz"
    path.parent.mkdir()
    os.symlink(victim, str(path) + planted)
    if planted == ".partial.json":  # looks like an unrecovered recording: refused, unless overwrite
        with pytest.raises(FileExistsError, match="rollrec recover"):
            record(path)
        r = record(path, overwrite=True)
    elif planted == ".partial.lock":  # the lease's file: refused (never written through), then removed by hand
        with pytest.raises(OSError):
            record(path)
        os.unlink(str(path) + planted)
        r = record(path)
    elif planted == ".partial.model.npz.tmp":  # the robot model kept for recovery
        r = record(path, model=make_model(["a", "b", "c"]), link_names=["a", "b", "c"],
                   extra=lambda t: {"link_pos": torch.zeros(N, 3, 3), "link_quat": torch.ones(N, 3, 4)})
        assert r.model is not None
    else:
        r = record(path, compress=planted == ".partial.tmp")  # compressing writes a .partial.tmp copy
    assert r.T == 5
    assert victim.read_text() == "precious"
    assert sorted(os.listdir(path.parent)) == ["run.npz"]


@pytest.mark.parametrize("stale", [".partial.json.tmp", ".partial.tmp"])
def test_recover_leaves_no_temporary_file(tmp_path, stale):
    path = tmp_path / "run.npz"
    interrupted(path, steps=4)
    with open(str(path) + stale, "wb") as f:  # what a process killed while writing it leaves
        f.write(b"half written")
    rollrec.recover(path)
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_recover_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    interrupted(path, steps=4)

    def disk_full(name: str) -> None:
        if name in ("compact.copied", "finalize.tail"):
            raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(faults, "hook", disk_full)
    with pytest.raises(OSError, match="No space left"):
        rollrec.recover(path)
    assert sorted(os.listdir(tmp_path)) == ["run.npz.partial", "run.npz.partial.json"]
    monkeypatch.setattr(faults, "hook", None)
    assert rollrec.recover(path) == path


def test_a_failing_final_rename_strands_nothing(tmp_path):
    path = tmp_path / "run.npz"
    path.mkdir()  # the final name is taken by a folder: the rename fails
    (path / "keep").write_text("x")
    with pytest.raises(RuntimeError, match=r"IsADirectoryError.*the 5 steps committed .*rollrec recover"):
        record(path)
    assert sorted(os.listdir(tmp_path)) == ["run.npz", "run.npz.partial", "run.npz.partial.json"]
    (path / "keep").unlink()
    path.rmdir()
    rollrec.recover(path)
    with rollrec.load(path) as r:
        np.testing.assert_array_equal(np.asarray(r["rew"])[:, 0], np.arange(5))


def test_recover_after_the_final_rename_only_tidies(tmp_path):
    path = tmp_path / "run.npz"
    record(path)
    with open(partial_paths(path)[1], "w") as f:  # killed after the rename, before removing the sidecar
        f.write("{}")
    assert rollrec.recover(path) == path
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]
    assert rollrec.load(path).T == 5
