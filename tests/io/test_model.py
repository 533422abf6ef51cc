"""The robot model in the file: plain members (no pickle), round trips, damaged files, recovery."""

from __future__ import annotations

import json
import os
import textwrap
import zipfile

import numpy as np
import pytest
import torch

import rollrec
from rollrec.format.errors import RolloutFormatError
from rollrec.format.v1 import STATIC_KEYS
from rollrec.format.model import MODEL_KEYS
from rollrec.io.partial import PartialRecording

LINKS = ["base", "thigh", "shin", "foot"]


def _save(tmp_path, make_fields, make_model, name="m.npz", **kwargs):
    fields = make_fields(T=5, N=2, L=len(LINKS))
    fields["link_names"] = LINKS
    return rollrec.save(tmp_path / name, fields, dt=0.02, model=make_model(LINKS), **kwargs)


def test_model_members_are_plain_arrays_and_round_trip(tmp_path, make_fields, make_model):
    path = _save(tmp_path, make_fields, make_model)
    with np.load(path, allow_pickle=False) as z:  # every member, model included, without pickle
        assert set(MODEL_KEYS) <= set(z.files)
        assert all(z[k].dtype.kind in "iuf" for k in MODEL_KEYS)
        meta = json.loads(str(z["meta"][()]))
    assert meta["model"]["source"] == "test" and meta["link_parents"] == [-1, 0, 1, 2]
    with rollrec.load(path) as r:
        assert r.model == make_model(LINKS)
        assert r.model.link_names == LINKS and r.model.info["source"] == "test"
        assert r.model.hfield(0).shape == (3, 4)
        assert not set(MODEL_KEYS) & set(r.step_keys)  # static, not per-step


def test_compressed_file_keeps_the_model(tmp_path, make_fields, make_model):
    path = _save(tmp_path, make_fields, make_model, compress=True)
    with rollrec.load(path) as r:
        assert r.model == make_model(LINKS)


def test_files_without_a_model_still_load(walker_rollout):
    with rollrec.load(walker_rollout) as r:
        assert r.model is None
        assert r.has_links


def test_model_links_are_matched_to_the_recorded_links_by_name(tmp_path, make_fields, make_model):
    fields = make_fields(T=4, N=1, L=2)
    fields["link_names"] = ["shin", "base"]  # a subset, in another order
    path = rollrec.save(tmp_path / "sub.npz", fields, dt=0.02, model=make_model(LINKS))
    with rollrec.load(path) as r:
        m = r.model
    assert m.link_names == ["shin", "base"]
    box = np.flatnonzero(m.geom_type == 6)[0]
    assert m.geom_link[box] == 1  # the box rode on "base", now link 1
    assert m.info["dropped_geoms"] == 3  # the thigh's sphere, the foot's capsule and mesh
    assert m.link_parents == [1, -1]  # shin's parent thigh is not recorded: its nearest kept ancestor


def _rewrite(src, dst, change):
    """Copy the npz ``src`` to ``dst`` with members changed by ``change(name, array) -> array | None``."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    out = {}
    for k, a in arrays.items():
        new = change(k, a)
        if new is not None:
            out[k] = new
    np.savez(dst, **out)
    return dst


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda k, a: None if k == "model_mesh_face" else a, "'model_mesh_face' is missing"),
        (lambda k, a: np.where(a == 0, 7, a) if k == "model_geom_link" else a, "geom_link: value 7 outside -1..3"),
        (lambda k, a: a + 100 if k == "model_mesh_face" else a, "mesh_face of mesh 0"),
        (lambda k, a: a + 1000 if k == "model_hfield_adr" else a, "hfield_data: an address range"),
        (lambda k, a: a.astype(np.float32) if k == "model_geom_type" else a, "'model_geom_type' must be int8-like"),
        (lambda k, a: a[:-1] if k == "model_geom_rgba" else a, "geom_rgba has shape"),
        (lambda k, a: np.full_like(a, np.nan) if k == "model_geom_pos" else a, "geom_pos holds NaN"),
        # stored in a wider type, values a cast would wrap: 256 + a box would read as a box
        (lambda k, a: a.astype(np.int64) + 256 if k == "model_geom_type" else a,
         r"'model_geom_type' holds 2\d\d, outside the range of its type int8 \(-128\.\.127\)"),
        (lambda k, a: a.astype(np.int64) + 2**32 if k == "model_mesh_face" else a,
         r"'model_mesh_face' holds 42949672\d\d, outside the range of its type int32"),
        (lambda k, a: a.astype(np.uint64) + 2**63 if k == "model_geom_link" else a, r"'model_geom_link' holds 9223"),
    ],
)
def test_a_damaged_model_is_refused_with_the_member_named(tmp_path, make_fields, make_model, change, message):
    good = _save(tmp_path, make_fields, make_model)
    bad = _rewrite(good, tmp_path / "bad.npz", change)
    with rollrec.load(bad) as r:  # the rest of the file stays readable
        assert r.T == 5
        with pytest.raises(RolloutFormatError, match=message) as err:
            _ = r.model
    assert "bad.npz" in str(err.value)


def test_recorder_stores_the_model(tmp_path, make_model):
    model = make_model(LINKS)

    def step(rec, t):
        rec.record(obs=torch.zeros(2, 3), act=torch.zeros(2, 1), rew=torch.zeros(2), done=torch.zeros(2, dtype=torch.bool),
                   base_pos=torch.zeros(2, 3), base_quat=torch.tensor([[1.0, 0, 0, 0]] * 2),
                   link_pos=torch.full((2, 4, 3), float(t)), link_quat=torch.tensor([[[1.0, 0, 0, 0]] * 4] * 2))

    with rollrec.Recorder(tmp_path / "ok.npz", 2, link_names=LINKS, model=model) as rec:
        step(rec, 0)
        assert rec.path.with_name("ok.npz.partial.model.npz").exists()  # kept beside the partial data
    assert not (tmp_path / "ok.npz.partial.model.npz").exists()
    with rollrec.load(tmp_path / "ok.npz") as r:
        assert r.model == model



CRASHING_CHILD = textwrap.dedent(
    """
    import sys, time, torch
    from rollrec.engine import Recorder
    from rollrec.model import RobotModel
    model = RobotModel(["a", "b"], geom_type=[6, 2], geom_link=[0, -1], geom_size=[[0.1, 0.2, 0.3], [0.5, 0, 0]],
                       geom_pos=[[0, 0, 0]] * 2, geom_quat=[[1, 0, 0, 0]] * 2, geom_rgba=[[1, 0, 0, 1]] * 2,
                       geom_group=[0, 0], geom_dataid=[-1, -1], info={"source": "child"})
    rec = Recorder(sys.argv[1], 2, segment_steps=2, link_names=["a", "b"], model=model)
    for t in range(1000):
        rec.record(obs=torch.zeros(2, 3), act=torch.zeros(2, 1), rew=torch.zeros(2), done=torch.zeros(2, dtype=torch.bool),
                   link_pos=torch.full((2, 2, 3), float(t)), link_quat=torch.tensor([[[1.0, 0, 0, 0]] * 2] * 2))
        if t == 4:
            time.sleep(0.5)  # let the writer commit the two full segments
            print("ready", flush=True)
            time.sleep(60)
    """
)


def test_a_killed_recording_keeps_its_model(tmp_path, kill_when_ready):
    path = tmp_path / "killed.npz"
    kill_when_ready(CRASHING_CHILD, str(path))
    assert os.path.exists(PartialRecording(path).model_path)
    rollrec.recover(path)
    assert not os.path.exists(PartialRecording(path).model_path)
    with rollrec.load(path) as r:
        assert r.meta["recovered"] and r.T == 4
        assert r.model.info["source"] == "child"
        np.testing.assert_allclose(r.model.geom_size[0], [0.1, 0.2, 0.3])


def test_recorder_refuses_a_model_that_is_not_one(tmp_path):
    with pytest.raises(TypeError, match="RobotModel"):
        rollrec.Recorder(tmp_path / "x.npz", 1, model={"geom_type": [1]})


def test_model_keys_are_static_in_the_spec():
    assert set(MODEL_KEYS) <= set(STATIC_KEYS)
    doc = rollrec.format.model.__doc__
    for key in ("model_geom_type", "model_mesh_vert", "model_hfield_data", 'meta["model"]'):
        assert key in doc


def test_model_members_are_64_byte_aligned_like_the_rest(tmp_path, make_fields, make_model, member_data_offsets):
    path = _save(tmp_path, make_fields, make_model)
    offsets = member_data_offsets(path)
    assert all(offsets[k] % 64 == 0 for k in MODEL_KEYS)
    with zipfile.ZipFile(path) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_info_summarises_the_model_in_one_line(tmp_path, make_fields, make_model, capsys):
    from rollrec.cli import main

    path = _save(tmp_path, make_fields, make_model)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "model  RobotModel(4 links, 7 geoms" in out and "model_geom_type" not in out
    assert main(["info", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"]["source"] == "test" and summary["model"]["bytes"] > 0
    assert not any(k.startswith("model_") for k in summary["fields"])


def test_a_sharded_rollout_has_its_ranks_model(tmp_path, make_fields, make_model, write_sharded):
    fields = make_fields(T=5, N=6, L=4)
    model = make_model(fields["link_names"])
    directory = write_sharded(tmp_path / "run", fields, (2, 4), missing=(0,), model=model)
    with pytest.warns(Warning), rollrec.load(directory) as r:  # rank 0's shard is missing
        assert r.N == 6 and r.model == model


def test_a_model_that_cannot_be_extracted_warns_and_the_recording_goes_on(tmp_path):
    from rollrec.adapters import adapt
    from rollrec.envs import GaitPolicy, WalkerEnv

    adapter = adapt(WalkerEnv(2, seed=0))
    adapter.mj_model = object()  # not an MjModel
    with pytest.warns(UserWarning, match="robot model of WalkerAdapter was not stored"):
        path = rollrec.RolloutRecorder(adapter, max_steps=3, progress=False).run(GaitPolicy(), tmp_path)
    with rollrec.load(path) as r:
        assert r.T == 3 and r.model is None


def test_overwriting_an_interrupted_recording_drops_its_model(tmp_path, make_model):
    from rollrec.io.model import model_members

    path = tmp_path / "run.npz"
    stale, _ = model_members(make_model(LINKS), LINKS)
    PartialRecording(path).keep_model(stale, {"model": {"source": "stale"}})  # left by a recording that was never recovered
    (tmp_path / "run.npz.partial.json").write_text("{}")
    rec = rollrec.Recorder(path, 1, segment_steps=1, overwrite=True)  # no model this time
    rec.record(obs=torch.zeros(1, 2), act=torch.zeros(1, 1), rew=torch.zeros(1), done=torch.zeros(1, dtype=torch.bool))
    assert not os.path.exists(PartialRecording(path).model_path)
    rec.close()
    with rollrec.load(path) as r:
        assert r.model is None
