"""Format v1 as a user sees it: what `save_rollout` puts in the file, checked against the spec."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

import rollrec
from rollrec.format.meta import FORMAT_VERSION

EXTRAS = {"img": ((2, 3), np.uint8), "contact": ((4,), np.bool_), "torque": ((2,), np.float16), "count": ((), np.int64)}
SHAPES = [(7, 3), (7, 1), (1, 3), (1, 1)]


@pytest.fixture(params=SHAPES, ids=[f"T{t}-N{n}" for t, n in SHAPES])
def full_fields(request, make_fields):
    T, N = request.param
    return make_fields(T, N, L=4, extras=EXTRAS)


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
def test_every_field_round_trips(tmp_path, full_fields, compress):
    path = rollrec.save(tmp_path / "r.npz", full_fields, dt=0.02, env_name="synthetic", compress=compress)
    T, N = full_fields["obs"].shape[:2]
    with rollrec.load(path) as r:
        assert (r.T, r.N) == (T, N)
        for key, value in full_fields.items():
            expected = np.asarray(value)
            got = r[key]
            assert got.shape == expected.shape, key
            if key in ("rew_term_names", "link_names"):
                assert got.dtype.kind == "U", key
                assert got.tolist() == list(value)
            else:
                assert got.dtype == expected.dtype, key
                np.testing.assert_array_equal(got, expected, err_msg=key)
        assert r.reward_term_names == full_fields["rew_term_names"]
        assert r.link_names == full_fields["link_names"]
        assert sorted(r.step_keys) == sorted(k for k in full_fields if not k.endswith("_names"))


def test_meta_holds_what_the_spec_promises(tmp_path, make_fields):
    path = rollrec.save(
        tmp_path / "r.npz", make_fields(5, 2, extras=EXTRAS), dt=0.025, env_name="synthetic",
        meta={"link_parents": [-1, 0], "note": "hello"},
    )
    with np.load(path, allow_pickle=False) as npz:
        raw = npz["meta"]
        assert raw.shape == () and raw.dtype.kind == "U"
        meta = json.loads(str(raw))
    assert meta["format"] == "rollrec"
    assert meta["format_version"] == 1 and FORMAT_VERSION == 3  # a file every reader of v1 reads; v3 (cameras) is the newest
    assert (meta["num_steps"], meta["num_envs"]) == (5, 2)
    assert meta["dt"] == 0.025
    assert meta["env_name"] == "synthetic"
    assert meta["quat_order"] == "wxyz"
    assert meta["rollrec_version"] == rollrec.__version__
    assert meta["extras"] == sorted(EXTRAS)
    assert meta["link_parents"] == [-1, 0] and meta["note"] == "hello"
    created = dt.datetime.fromisoformat(meta["created"])
    assert created.tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
def test_plain_numpy_reads_every_member_without_pickle(tmp_path, full_fields, compress):
    path = rollrec.save(tmp_path / "r.npz", full_fields, dt=0.02, compress=compress)
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(full_fields) | {"meta"}
        for key, value in full_fields.items():
            np.testing.assert_array_equal(npz[key], np.asarray(value), err_msg=key)
            assert not npz[key].dtype.hasobject


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
def test_files_are_valid_zip_archives(tmp_path, make_fields, compress):
    path = rollrec.save(tmp_path / "r.npz", make_fields(9, 4, L=3, extras=EXTRAS), dt=0.02, compress=compress)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        kinds = {i.compress_type for i in zf.infolist()}
    assert kinds == ({zipfile.ZIP_DEFLATED} if compress else {zipfile.ZIP_STORED})
    if shutil.which("unzip"):
        result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No errors detected" in result.stdout


@pytest.mark.parametrize("T, N", SHAPES)
def test_stored_member_data_is_64_byte_aligned(tmp_path, make_fields, member_data_offsets, T, N):
    fields = make_fields(T, N, L=2, extras=EXTRAS)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    offsets = member_data_offsets(path)
    assert set(offsets) == set(fields) | {"meta"}
    misaligned = {name: off for name, off in offsets.items() if off % 64}
    assert not misaligned


def test_stored_members_open_as_memory_maps(tmp_path, make_fields):
    fields = make_fields(6, 3, L=2, extras=EXTRAS)
    stored = rollrec.save(tmp_path / "stored.npz", fields, dt=0.02)
    deflated = rollrec.save(tmp_path / "deflated.npz", fields, dt=0.02, compress=True)
    with rollrec.load(stored) as r:
        for key in r.step_keys:
            assert isinstance(r[key], np.memmap), key
            assert not r[key].flags.writeable
    with rollrec.load(deflated) as r:
        assert not isinstance(r["obs"], np.memmap)
        np.testing.assert_array_equal(r["obs"], fields["obs"])


def test_compression_shrinks_compressible_data(tmp_path, make_fields):
    fields = make_fields(200, 8)
    fields["obs"] = np.zeros_like(fields["obs"])
    stored = rollrec.save(tmp_path / "stored.npz", fields, dt=0.02)
    deflated = rollrec.save(tmp_path / "deflated.npz", fields, dt=0.02, compress=True)
    assert deflated.stat().st_size < stored.stat().st_size
    with zipfile.ZipFile(deflated) as zf:
        obs = zf.getinfo("obs.npy")
    assert obs.compress_size < obs.file_size / 20


def test_link_poses_without_names_get_default_names(tmp_path, make_fields):
    fields = make_fields(4, 2, L=3)
    del fields["link_names"]
    with rollrec.load(rollrec.save(tmp_path / "r.npz", fields, dt=0.02)) as r:
        assert r.has_links
        assert r.link_names == ["link_0", "link_1", "link_2"]
    fields = make_fields(4, 2)
    with rollrec.load(rollrec.save(tmp_path / "r2.npz", fields, dt=0.02)) as r:
        assert not r.has_links and r.link_names is None


def test_walker_recording_is_a_valid_v1_file(walker_rollout):
    from rollrec.envs import WalkerEnv

    with rollrec.load(walker_rollout) as r:
        assert (r.T, r.N) == (100, 8)
        assert r.env_name == WalkerEnv.name
        assert r.dt == pytest.approx(WalkerEnv.dt)
        assert r["obs"].shape == (100, 8, 256) and r["obs"].dtype == np.float32
        assert r["link_pos"].shape == (100, 8, 13, 3)
        assert r.meta["link_parents"] == list(WalkerEnv.link_parents)
        assert r.reward_term_names == list(WalkerEnv.reward_term_names)
        np.testing.assert_allclose(r["rew_terms"][:].sum(-1), r["rew"][:], rtol=1e-5, atol=1e-5)
        assert not (r["truncated"][:] & ~r["done"][:]).any()
        assert r["done"][:].any()
