"""robomimic HDF5 export, read back with h5py against the rollout value by value; and, where a venv
with robomimic exists (``ROLLREC_ROBOMIMIC_PYTHON``, default ``/work/venvs/robomimic/bin/python``:
robomimic 0.3.0, PyPI's latest, beside torch 2.13 CPU; not in CI), by its ``SequenceDataset``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import rollrec

h5py = pytest.importorskip("h5py")
ROBOMIMIC_PYTHON = Path(os.environ.get("ROLLREC_ROBOMIMIC_PYTHON", "/work/venvs/robomimic/bin/python"))


def test_every_demo_matches_its_episode(camera_rollout, reference, tmp_path):
    ref = reference(camera_rollout)
    out = rollrec.export(camera_rollout, tmp_path / "d.hdf5", to="robomimic")
    with h5py.File(out, "r") as f:
        data = f["data"]
        assert data.attrs["total"] == ref.fields["rew"].size
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == "cam-test" and env_args["type"] == 2
        assert sorted(data, key=lambda k: int(k[5:])) == [f"demo_{i}" for i in range(len(ref.episodes))]
        for i, (env, start, stop, end, ret) in enumerate(ref.episodes):
            g = data[f"demo_{i}"]
            n = stop - start
            assert (g.attrs["num_samples"], g.attrs["env"], g.attrs["start"], g.attrs["stop"], g.attrs["end"]) == \
                (n, env, start, stop, end)
            assert g.attrs["return"] == pytest.approx(ret, rel=1e-12)
            f_ = {k: v[start:stop, env] for k, v in ref.fields.items() if v.shape[:2] == ref.fields["rew"].shape}
            np.testing.assert_array_equal(g["actions"][()], f_["act"])
            np.testing.assert_array_equal(g["rewards"][()], f_["rew"])
            np.testing.assert_array_equal(g["dones"][()], f_["done"].astype(np.uint8))
            np.testing.assert_array_equal(g["truncated"][()], f_["truncated"])
            np.testing.assert_array_equal(g["reward_terms"][()], f_["rew_terms"])
            np.testing.assert_array_equal(g["obs/joint_pos"][()], f_["obs"][:, 0:3])  # split by obs_layout
            np.testing.assert_array_equal(g["obs/phase"][()], f_["obs"][:, 3:5])
            np.testing.assert_array_equal(g["obs/link_quat"][()], f_["link_quat"])
            np.testing.assert_array_equal(g["obs/contacts"][()], f_["contacts"])
            np.testing.assert_array_equal(g["obs/front_image"][()], f_["front"])
            for key in ("joint_pos", "base_pos", "front_image"):  # next_obs: one step on, the last repeated
                obs, nxt = g[f"obs/{key}"][()], g[f"next_obs/{key}"][()]
                np.testing.assert_array_equal(nxt[:-1], obs[1:])
                np.testing.assert_array_equal(nxt[-1], obs[-1])
        masks = {k: [d.decode() for d in f[f"mask/{k}"][()]] for k in f["mask"]}
        for kind in ("terminated", "truncated", "unfinished"):
            assert masks[kind] == [f"demo_{i}" for i, e in enumerate(ref.episodes) if e[3] == kind]
        assert masks["captured"] == [f"demo_{i}" for i in range(len(ref.episodes))]  # a v1 file holds them all


def test_small_reads_give_the_same_file(camera_rollout, tmp_path, monkeypatch):
    """Episodes read in pieces (a tiny block budget) give the same demos, next_obs included."""
    from rollrec.exports import reading

    a = rollrec.export(camera_rollout, tmp_path / "a.hdf5", to="robomimic")
    monkeypatch.setattr(reading, "BLOCK_BYTES", 512)
    with rollrec.load(camera_rollout) as r:
        assert reading.BlockReader(r, ["obs", "act", "link_pos"], [0], budget=512).max_rows < r.T
    b = rollrec.export(camera_rollout, tmp_path / "b.hdf5", to="robomimic")
    with h5py.File(a) as fa, h5py.File(b) as fb:
        names = []
        fa.visit(lambda n: names.append(n) if isinstance(fa[n], h5py.Dataset) else None)
        for n in names:
            np.testing.assert_array_equal(fa[n][()], fb[n][()], err_msg=n)


def test_actions_are_required(tmp_path, make_fields):
    from rollrec.engine import Recorder

    fields = make_fields(8, 2)
    path = tmp_path / "noact.npz"
    with Recorder(path, 2, fields=("rew", "done", "truncated", "base_pos", "base_quat", "obs"), dt=0.02) as rec:
        for t in range(8):
            rec.record(obs=fields["obs"][t], act=fields["act"][t], rew=fields["rew"][t], done=fields["done"][t],
                       truncated=fields["truncated"][t], base_pos=fields["base_pos"][t], base_quat=fields["base_quat"][t])
    with pytest.raises(ValueError, match=r"holds no actions \('act'\): a robomimic demo needs them"):
        rollrec.export(path, tmp_path / "d.hdf5", to="robomimic")
    assert not (tmp_path / "d.hdf5").exists() and not list(tmp_path.glob(".d.hdf5*"))


_ROBOMIMIC_CHECK = r'''
import json, sys
import numpy as np
import robomimic.utils.obs_utils as ObsUtils
from robomimic.utils.dataset import SequenceDataset
ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": ["joint_pos", "phase", "base_pos"], "rgb": ["front_image"]}})
ref = np.load(sys.argv[2])
out = {}
for key in (None, "terminated"):
    ds = SequenceDataset(hdf5_path=sys.argv[1], obs_keys=("joint_pos", "phase", "base_pos", "front_image"),
                         dataset_keys=("actions", "rewards", "dones"), load_next_obs=True, filter_by_attribute=key,
                         hdf5_cache_mode="low_dim")
    f = ds.hdf5_file  # the dataset's own handle (robomimic opens the file with SWMR)
    for i in range(len(ds)):
        item = ds[i]
        demo = ds._index_to_demo_id[i]
        g = f["data"][demo]
        env, t = int(g.attrs["env"]), int(g.attrs["start"]) + i - ds._demo_id_to_start_indices[demo]
        assert np.allclose(item["actions"][0], ref["act"][t, env]), (demo, t)
        assert np.allclose(item["rewards"][0], ref["rew"][t, env]), (demo, t)
        assert np.allclose(item["obs"]["joint_pos"][0], ref["obs"][t, env, 0:3])
        assert np.array_equal(item["obs"]["front_image"][0], ref["front"][t, env])
    out[str(key)] = {"demos": len(ds.demos), "samples": len(ds)}
print(json.dumps(out))
'''


@pytest.mark.skipif(not ROBOMIMIC_PYTHON.exists(), reason=f"no venv with robomimic at {ROBOMIMIC_PYTHON}")
def test_robomimic_sequence_dataset_reads_every_sample(camera_rollout, reference, tmp_path):
    ref = reference(camera_rollout)
    out = rollrec.export(camera_rollout, tmp_path / "d.hdf5", to="robomimic")
    run = subprocess.run([str(ROBOMIMIC_PYTHON), "-c", _ROBOMIMIC_CHECK, str(out), str(camera_rollout)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["None"] == {"demos": len(ref.episodes), "samples": ref.fields["rew"].size}
    terminated = ref.of(end="terminated")
    assert result["terminated"] == {"demos": len(terminated), "samples": sum(e[2] - e[1] for e in terminated)}
