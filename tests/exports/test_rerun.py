"""Rerun export, read back with Rerun's dataframe API (``rerun.chunk.RrdReader`` -> ``ChunkStore.reader``,
a DataFusion query of the ``.rrd``) and compared with the rollout step by step."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec

from .conftest import smooth_frames

rr = pytest.importorskip("rerun")
pytest.importorskip("datafusion")


def _table(path, index="step"):
    return rr.chunk.RrdReader(str(path)).stream().collect().reader(index=index).to_arrow_table()


def _series(table, column: str) -> tuple[np.ndarray, list]:
    """``(steps, values)`` of the rows where ``column`` was logged (each value the row's one instance)."""
    steps = table.column("step").to_numpy()
    values = table.column(column).to_pylist()
    rows = [i for i, v in enumerate(values) if v is not None]
    return steps[rows], [values[i][0] if isinstance(values[i], list) and len(values[i]) == 1 else values[i] for i in rows]


@pytest.fixture
def modelled(tmp_path, make_fields, make_model):
    """A rollout with link poses, a stored model and a camera; env 1 lost its base at step 4."""
    fields = make_fields(30, 3, L=3, done_every=12)
    fields["base_pos"][4, 1] = np.nan


    fields["front"] = smooth_frames(30, 3, H=16, W=24)
    return rollrec.save(tmp_path / "m.npz", fields, dt=0.05, env_name="modelled", model=make_model(fields["link_names"]))


def test_poses_rewards_and_frames_of_each_step(modelled, reference, tmp_path):
    ref = reference(modelled)
    out = rollrec.export(modelled, tmp_path / "r.rrd", to="rerun", envs=[0, 1])
    table = _table(out)
    f = ref.fields
    T = f["rew"].shape[0]
    for env in (0, 1):
        steps, pos = _series(table, f"/envs/{env}/base:Transform3D:translation")
        ok = np.isfinite(f["base_pos"][:, env]).all(1)
        np.testing.assert_array_equal(steps, np.flatnonzero(ok))  # a missing pose is left out
        np.testing.assert_allclose(np.array(pos), f["base_pos"][ok, env], rtol=1e-6)
        _, quat = _series(table, f"/envs/{env}/base:Transform3D:quaternion")
        np.testing.assert_allclose(np.array(quat), f["base_quat"][ok, env][:, [1, 2, 3, 0]], rtol=1e-6)  # xyzw
        for i, link in enumerate(["link_0", "link_1", "link_2"]):
            steps, pos = _series(table, f"/envs/{env}/links/{link}:Transform3D:translation")
            np.testing.assert_array_equal(steps, np.arange(T))
            np.testing.assert_allclose(np.array(pos), f["link_pos"][:, env, i], rtol=1e-6)
        steps, total = _series(table, f"/envs/{env}/reward/total:Scalars:scalars")
        np.testing.assert_array_equal(steps, np.arange(T))
        np.testing.assert_array_equal(np.array(total), f["rew"][:, env].astype(np.float64))
        for k in range(3):
            _, term = _series(table, f"/envs/{env}/reward/term_{k}:Scalars:scalars")
            np.testing.assert_array_equal(np.array(term), f["rew_terms"][:, env, k].astype(np.float64))
        steps, images = _series(table, f"/envs/{env}/cameras/front:Image:buffer")
        np.testing.assert_array_equal(steps, np.arange(T))
        for t, buf in zip(steps, images):
            np.testing.assert_array_equal(np.asarray(buf, np.uint8).reshape(16, 24, 3), f["front"][t, env])
        starts, logs = _series(table, f"/envs/{env}/episodes:TextLog:text")
        assert list(starts) == [e[1] for e in ref.of(envs=[env])]
        assert all(e[3] in text for text, e in zip(logs, ref.of(envs=[env])))
        _, trails = _series(table, f"/envs/{env}/trail:LineStrips3D:strips")
        first = ref.of(envs=[env])[0]
        np.testing.assert_allclose(np.array(trails[0]), f["base_pos"][first[1] : first[2], env][
            np.isfinite(f["base_pos"][first[1] : first[2], env]).all(1)], rtol=1e-6)
    assert not any(c.startswith("/envs/2/") for c in table.column_names)  # only the envs asked for
    static = _table(out, index=None)
    meshes = [c for c in static.column_names if c.endswith(":Mesh3D:vertex_positions")]
    assert any(c.startswith("/envs/0/links/") for c in meshes) and any(c.startswith("/world/terrain/") for c in meshes)


def test_episode_filter_logs_only_those_steps(modelled, reference, tmp_path):
    ref = reference(modelled)
    wanted = ref.of(envs=[0], end="terminated")
    assert wanted
    out = rollrec.export(modelled, tmp_path / "r.rrd", to="rerun", episodes="terminated")
    steps, _ = _series(_table(out), "/envs/0/reward/total:Scalars:scalars")
    np.testing.assert_array_equal(steps, np.concatenate([np.arange(e[1], e[2]) for e in wanted]))
