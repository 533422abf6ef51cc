"""Files of the original recorder: refused without the pickle opt-in, converted to v1 with it.

The samples are written in that recorder's layout by ``tests/conftest.py::write_legacy_rollout``."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.io import LegacyPickleError, RolloutFormatError

SAMPLES = {"legacy_rollout_n1.npz": 1, "legacy_rollout_n2.npz": 2}
TERMS = ["raw/pose_rew_mean", "raw/vel_rew_mean", "raw/energy_rew_mean"]


@pytest.fixture(params=sorted(SAMPLES))
def sample(request, legacy_dir):
    """``(path, N, raw)``: a legacy sample, its env count and its raw arrays (unpickled by numpy)."""
    path = legacy_dir / request.param
    with np.load(path, allow_pickle=True) as npz:
        raw = {k: npz[k] for k in npz.files}
    return path, SAMPLES[request.param], raw


def _with_env_axis(a: np.ndarray, rank: int) -> np.ndarray:
    return a[:, None] if a.ndim == rank - 1 else a


def test_refused_without_the_opt_in(sample):
    path, _, _ = sample
    with pytest.raises(LegacyPickleError) as info:
        rollrec.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "allow_pickle=True" in message and "--allow-pickle" in message
    assert "untrusted" in message  # says why
    assert isinstance(info.value, RolloutFormatError)


def test_converted_shapes_and_dtypes(sample):
    path, N, _ = sample
    with rollrec.load(path, allow_pickle=True) as r:
        assert (r.T, r.N) == (120, N)
        expected = {
            "obs": ((120, N, 24), np.float32),
            "act": ((120, N, 6), np.float32),
            "rew": ((120, N), np.float32),
            "done": ((120, N), np.bool_),
            "truncated": ((120, N), np.bool_),
            "base_pos": ((120, N, 3), np.float32),
            "base_quat": ((120, N, 4), np.float32),
            "link_pos": ((120, N, 5, 3), np.float32),
            "link_quat": ((120, N, 5, 4), np.float32),
            "rew_terms": ((120, N, 3), np.float32),
        }
        for key, (shape, dtype) in expected.items():
            assert (r[key].shape, r[key].dtype) == (shape, dtype), key
        assert r.link_names == [f"link_{i}" for i in range(5)]
        assert r["link_names"].dtype.kind == "U"
        assert r.reward_term_names == TERMS
        assert "info" not in r


def test_values_with_quaternions_reordered_to_wxyz(sample):
    path, _, raw = sample
    with rollrec.load(path, allow_pickle=True) as r:
        for key, rank in (("obs", 3), ("act", 3), ("rew", 2), ("done", 2), ("base_pos", 3), ("link_pos", 4)):
            np.testing.assert_array_equal(r[key], _with_env_axis(raw[key], rank), err_msg=key)
        xyzw = _with_env_axis(raw["base_quat"], 3)
        np.testing.assert_array_equal(r["base_quat"][..., 0], xyzw[..., 3])  # w first
        np.testing.assert_array_equal(r["base_quat"], xyzw[..., [3, 0, 1, 2]])
        np.testing.assert_array_equal(r["link_quat"], _with_env_axis(raw["link_quat"], 4)[..., [3, 0, 1, 2]])


def test_env_mean_terms_are_broadcast_to_every_env(sample):
    path, N, raw = sample
    expected = np.array([[entry["reward_terms"][name] for name in TERMS] for entry in raw["info"]], np.float32)
    with rollrec.load(path, allow_pickle=True) as r:
        for n in range(N):
            np.testing.assert_array_equal(r["rew_terms"][:, n], expected)
        assert r.terms_are_env_means
        assert r.meta["reward_terms_are_env_means"] is True


def test_meta_marks_the_conversion(sample):
    path, N, _ = sample
    with rollrec.load(path, allow_pickle=True) as r:
        assert r.is_legacy
        assert r.meta["format_version"] == 1
        assert r.meta["quat_order"] == "wxyz" and r.meta["source_quat_order"] == "xyzw"
        assert (r.meta["num_steps"], r.meta["num_envs"]) == (120, N)
        assert r.dt > 0


def test_episodes_of_the_two_env_sample(legacy_dir):
    with rollrec.load(legacy_dir / "legacy_rollout_n2.npz", allow_pickle=True) as r:
        for n in range(2):
            assert r.episode_bounds(n).tolist() == [[0, 60], [60, 120]]  # episode end after step 59
        assert r.env(1)["obs"].shape == (120, 24)


def test_converted_rollout_saves_as_a_v1_file_numpy_reads_without_pickle(sample, tmp_path):
    path, N, _ = sample
    with rollrec.load(path, allow_pickle=True) as r:
        fields = {k: r[k] for k in r.keys()}  # noqa: SIM118 (Rollout has no __iter__)
        out = rollrec.save(tmp_path / "v1.npz", fields, dt=r.dt, env_name=r.env_name, meta=r.meta)
    with np.load(out, allow_pickle=False) as npz:
        assert npz["rew"].shape == (120, N)
    with rollrec.load(out) as r2:  # no opt-in needed any more
        assert r2.terms_are_env_means and r2.is_legacy
        np.testing.assert_array_equal(r2["base_quat"], fields["base_quat"])
