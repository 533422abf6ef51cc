"""`save_rollout` (whole arrays) and `recover` (a recording whose process died)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec import RolloutFormatError
from rollrec.format.meta import make_meta
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec.io.partial import partial_paths

STEP_KEYS = ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms", "link_pos", "link_quat")


# ---- save_rollout ---------------------------------------------------------------------------
def test_save_leaves_only_the_final_file(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(), dt=0.02)
    assert path == tmp_path / "r.npz"
    assert sorted(os.listdir(tmp_path)) == ["r.npz"]
    rollrec.save(tmp_path / "c.npz", make_fields(), dt=0.02, compress=True)
    assert sorted(os.listdir(tmp_path)) == ["c.npz", "r.npz"]


def test_save_overwrites_an_existing_file(tmp_path, make_fields):
    rollrec.save(tmp_path / "r.npz", make_fields(T=3), dt=0.02)
    rollrec.save(tmp_path / "r.npz", make_fields(T=5), dt=0.02)
    with rollrec.load(tmp_path / "r.npz") as r:
        assert r.T == 5


def test_invalid_fields_write_nothing(tmp_path, make_fields):
    fields = make_fields()
    fields["done"] = fields["done"].astype(np.float32)
    with pytest.raises(RolloutFormatError, match="'done' must be bool, got float32"):
        rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    fields = make_fields()
    del fields["rew_term_names"]
    with pytest.raises(RolloutFormatError, match="'rew_term_names' must have shape"):
        rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    assert os.listdir(tmp_path) == []


def test_failure_while_writing_removes_the_partial_file(tmp_path, make_fields, monkeypatch):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(NpzStreamWriter, "finalize", broken)
    with pytest.raises(OSError, match="disk full"):
        rollrec.save(tmp_path / "r.npz", make_fields(), dt=0.02)
    assert os.listdir(tmp_path) == []


def test_torch_tensors_and_strided_arrays_are_accepted(tmp_path, make_fields):
    import torch

    fields = make_fields(T=5, N=4)
    obs_t = np.ascontiguousarray(fields["obs"].transpose(1, 0, 2)).transpose(1, 0, 2)  # same values, not C order
    assert not obs_t.flags.c_contiguous
    fields["obs"] = obs_t
    fields["act"] = torch.from_numpy(fields["act"])
    with rollrec.load(rollrec.save(tmp_path / "r.npz", fields, dt=0.02)) as r:
        np.testing.assert_array_equal(r["obs"], obs_t)
        np.testing.assert_array_equal(r["act"], fields["act"].numpy())


# ---- recover --------------------------------------------------------------------------------
def _start_recording(final, fields, *, capacity=8, info_extra=None, with_meta=True):
    """A writer as the recording engine sets it up: partial file, sidecar, recovery info."""
    data_path, layout_path = partial_paths(final)
    N = fields["obs"].shape[1]
    info = {"rew_term_names": list(fields["rew_term_names"]), "link_names": list(fields["link_names"])}
    if with_meta:
        info["meta"] = make_meta(num_steps=0, num_envs=N, dt=0.02, env_name="crashy", link_parents=[-1, 0])
    info.update(info_extra or {})
    members = [MemberSpec(k, fields[k].dtype.str, fields[k].shape[1:], capacity) for k in STEP_KEYS]
    return NpzStreamWriter(data_path, members, layout_path=layout_path, recovery_info=info)


def _die(writer):
    """The process ends without finalising: its file descriptors close (and its I/O threads end; every
    append here waited for its writes), nothing else happens."""
    writer._out.close()
    os.close(writer._fd)


@pytest.fixture
def crashed(tmp_path, make_fields):
    """A recording of 20 steps x 3 envs that died after committing 12 rows and writing 4 more."""
    fields = make_fields(20, 3, L=2)
    final = tmp_path / "run.npz"
    w = _start_recording(final, fields)
    for a, b in ((0, 5), (5, 12)):
        for k in STEP_KEYS:
            w.append(k, fields[k][a:b])
        w.commit(b)
    for k in STEP_KEYS[:4]:  # died mid-segment: some members got rows 12..16, none committed
        w.append(k, fields[k][12:16])
    _die(w)
    return final, fields


@pytest.mark.parametrize("name", ["run.npz", "run.npz.partial", "run.npz.partial.json"])
def test_recover_keeps_the_committed_rows(crashed, name):
    final, fields = crashed
    assert not final.exists()
    with pytest.raises(FileNotFoundError, match="rollrec recover"):
        rollrec.load(final)
    path = rollrec.recover(final.parent / name)
    assert path == final
    assert sorted(os.listdir(final.parent)) == ["run.npz"]
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    with rollrec.load(path) as r:
        assert (r.T, r.N) == (12, 3)
        assert r.meta["recovered"] is True
        assert r.meta["num_steps"] == 12
        assert r.meta["env_name"] == "crashy" and r.meta["link_parents"] == [-1, 0]
        assert r.reward_term_names == fields["rew_term_names"]
        assert r.link_names == fields["link_names"]
        for k in STEP_KEYS:
            assert isinstance(r[k], np.memmap)
            np.testing.assert_array_equal(r[k], fields[k][:12], err_msg=k)


def test_recover_compresses_when_the_recording_asked_for_it(tmp_path, make_fields):
    fields = make_fields(6, 2, L=2)
    final = tmp_path / "run.npz"
    w = _start_recording(final, fields, info_extra={"compress": True})
    for k in STEP_KEYS:
        w.append(k, fields[k])
    w.commit(6)
    _die(w)
    rollrec.recover(final)
    with zipfile.ZipFile(final) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    with rollrec.load(final) as r:
        np.testing.assert_array_equal(r["obs"], fields["obs"])


def test_recover_before_the_first_commit_gives_an_empty_rollout(tmp_path, make_fields):
    fields = make_fields(6, 2, L=2)
    final = tmp_path / "run.npz"
    w = _start_recording(final, fields)
    for k in STEP_KEYS:
        w.append(k, fields[k][:3])
    _die(w)
    rollrec.recover(final)
    with rollrec.load(final) as r:
        assert (r.T, r.N) == (0, 2)
        assert r["obs"].shape == (0, 2, fields["obs"].shape[2])


def test_recover_without_a_recording(tmp_path):
    with pytest.raises(FileNotFoundError, match="no interrupted recording to recover"):
        rollrec.recover(tmp_path / "run.npz")


def test_recover_before_meta_was_known(tmp_path, make_fields):
    fields = make_fields(4, 2, L=2)
    _die(_start_recording(tmp_path / "run.npz", fields, with_meta=False))
    with pytest.raises(RolloutFormatError, match="holds no meta; nothing to recover"):
        rollrec.recover(tmp_path / "run.npz")


def _die_after_committing_all(final: Path, fields: dict) -> tuple[str, str]:
    """A recording of every row of ``fields``, all committed, then dead; its partial file and sidecar."""
    T = len(fields["obs"])
    w = _start_recording(final, fields, capacity=T)
    for k in STEP_KEYS:
        w.append(k, fields[k])
    w.commit(T)
    _die(w)
    return partial_paths(final)


def test_recover_a_file_shorter_than_its_committed_rows(tmp_path, make_fields):
    fields = make_fields(10, 2, L=2)
    final = tmp_path / "run.npz"
    data_path, layout_path = _die_after_committing_all(final, fields)
    last = json.loads(Path(layout_path).read_text())["members"][-1]
    end = last["data_offset"] + 10 * fields[last["name"]][0].nbytes
    os.truncate(data_path, end - 100)  # the last rows never reached the disk
    with pytest.raises(RolloutFormatError, match=r"shorter \(\d+ bytes\) than its 10 committed rows"):
        rollrec.recover(final)
    assert sorted(os.listdir(tmp_path)) == ["run.npz.partial", "run.npz.partial.json"]  # untouched, no temporaries


def test_recover_refuses_rows_that_differ_from_what_was_committed(tmp_path, make_fields):
    fields = make_fields(10, 2, L=2)
    final = tmp_path / "run.npz"
    data_path, layout_path = _die_after_committing_all(final, fields)
    act = next(m for m in json.loads(Path(layout_path).read_text())["members"] if m["name"] == "act")
    with open(data_path, "r+b") as f:  # what a disk that lost a write would hand back
        f.seek(act["data_offset"] + 8)
        f.write(b"\0" * 8)
    with pytest.raises(RolloutFormatError, match="member 'act': the 10 committed rows do not match the CRC-32"):
        rollrec.recover(final)
    assert not final.exists()
