"""Volume control: every option's file, byte for byte against the naive reference (conftest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder

N = 7


def record(path, steps, n=N, *, segment_steps=3, **options):
    with Recorder(path, n, segment_steps=segment_steps, dt=0.05, **options) as rec:
        for s in steps:
            rec.record(**s)
    return rec


def reference_options(options):
    return {k: v for k, v in options.items() if k in ("envs", "all_env_fields", "every", "dtypes", "fields", "capture",
                                                      "window", "quat_order")}


def assert_file(path, expected):
    """Every member as the reference says, read with plain numpy (no pickle)."""
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        members = {k: npz[k] for k in npz.files}
    assert meta["format_version"] == expected["_version"]
    want = {k for k in expected if not k.startswith("_")}
    assert set(members) - {"meta", "rew_term_names", "link_names"} == want
    for name in want:
        got, exp = members[name], expected[name]
        assert got.dtype == exp.dtype, name
        assert got.shape == exp.shape, (name, got.shape, exp.shape)
        np.testing.assert_array_equal(got, exp, err_msg=name)
    assert meta["num_steps"] == expected["_rows"]
    return meta


@pytest.mark.parametrize("every", [2, 3, 5])
@pytest.mark.parametrize("T", [1, 14, 16])
def test_every_keeps_the_first_of_k_steps_and_folds_rewards_and_dones(tmp_path, volume_reference, every, T):
    expected_file, make_steps = volume_reference
    steps = make_steps(T, N, seed=every + T, dict_obs=True, burst=(T // 2,))
    record(tmp_path / "r.npz", steps, every=every)
    meta = assert_file(tmp_path / "r.npz", expected_file(steps, N, every=every))
    assert meta["every"] == every and meta["dt"] == pytest.approx(0.05 * every) and meta["recorded_steps"] == T


def test_no_done_is_lost_on_a_skipped_step(tmp_path):
    n = 2
    with Recorder(tmp_path / "r.npz", n, every=4, segment_steps=2) as rec:
        for t in range(8):
            done = torch.tensor([t == 2, t == 7])
            rec.record(obs=torch.zeros(n, 1), act=torch.zeros(n, 1), rew=torch.full((n,), float(t)), done=done)
    with rollrec.load(tmp_path / "r.npz") as r:
        np.testing.assert_array_equal(r["done"], [[True, False], [False, True]])
        np.testing.assert_array_equal(r["rew"], [[0 + 1 + 2 + 3] * 2, [4 + 5 + 6 + 7] * 2])
        eps = [(e["env"], e["start"], e["stop"], e["return"], e["end"]) for e in r.episodes()]
    assert eps == [(0, 0, 3, 3.0, "terminated"), (1, 0, 8, 28.0, "terminated"), (0, 3, 8, 25.0, "unfinished")]


@pytest.mark.parametrize("envs", [[2, 3, 4], [0, 5, 6], range(1, 7, 2), "mask", []], ids=["run", "split", "range", "mask", "none"])
@pytest.mark.parametrize("light", [None, ("rew", "done"), ()], ids=["default", "rew-done", "nothing"])
def test_detail_envs_keep_every_field_the_others_the_light_ones(tmp_path, volume_reference, envs, light):
    expected_file, make_steps = volume_reference
    ids = [1, 4, 5] if envs == "mask" else list(envs)
    given = np.isin(np.arange(N), ids) if envs == "mask" else envs
    steps = make_steps(11, N, seed=3, burst=(4,))
    options = dict(envs=given, **({} if light is None else {"all_env_fields": light}))
    record(tmp_path / "r.npz", steps, **options)
    meta = assert_file(tmp_path / "r.npz", expected_file(steps, N, envs=ids, all_env_fields=light))
    light = light if light is not None else ("rew", "done", "truncated", "rew_terms", "base_pos", "base_quat")
    heavy = [n for n in ("obs", "act", "link_pos", "link_quat", "contact", *("rew", "done", "truncated", "rew_terms",
             "base_pos", "base_quat")) if n not in light]
    assert meta["env_ids"] == {n: ids for n in heavy}


def test_detail_envs_with_every(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(13, N, seed=4)
    record(tmp_path / "r.npz", steps, envs=[0, 6], every=3)
    assert_file(tmp_path / "r.npz", expected_file(steps, N, envs=[0, 6], every=3))


@pytest.mark.parametrize("dtypes, version", [
    ({"obs": torch.float16}, 1),
    ({"obs": np.float16, "act": "float32", "contact": torch.int8}, 1),
    ({"rew_terms": torch.float16, "base_pos": torch.float16}, 2),  # reward terms leave float32: v1 cannot hold it
])
def test_dtypes_cast_on_the_device(tmp_path, volume_reference, dtypes, version):
    expected_file, make_steps = volume_reference
    steps = make_steps(9, N, seed=5)
    record(tmp_path / "r.npz", steps, dtypes=dtypes)
    torch_dtypes = {k: v if isinstance(v, torch.dtype) else {"float32": torch.float32}.get(v, torch.float16)
                    for k, v in dtypes.items()}
    expected = expected_file(steps, N, dtypes=torch_dtypes)
    assert expected["_version"] == version
    assert_file(tmp_path / "r.npz", expected)


def test_float16_rewards_sum_in_float16_with_every(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(10, N, seed=6)
    record(tmp_path / "r.npz", steps, dtypes={"rew": torch.float16}, every=4)
    assert_file(tmp_path / "r.npz", expected_file(steps, N, dtypes={"rew": torch.float16}, every=4))


@pytest.mark.parametrize("fields, version", [
    (("obs", "act", "rew_terms"), 1),  # everything v1 needs: the links and extras go
    (("obs",), 2),
    ((), 2),
])
def test_fields_keeps_only_the_named_ones_and_the_required(tmp_path, volume_reference, fields, version):
    expected_file, make_steps = volume_reference
    steps = make_steps(6, N, seed=7)
    record(tmp_path / "r.npz", steps, fields=fields)
    expected = expected_file(steps, N, fields=fields)
    assert expected["_version"] == version
    assert_file(tmp_path / "r.npz", expected)
    with rollrec.load(tmp_path / "r.npz") as r:
        assert set(r.step_keys) == {k for k in expected if not k.startswith("_")}
        assert r.reward_term_names == (["a", "b"] if "rew_terms" in fields else [])


def _kinds(options):
    return pytest.param(options, id="-".join(f"{k}={v}" for k, v in options.items()))


@pytest.mark.parametrize("options", [
    _kinds({"capture": "terminated", "window": 3}),
    _kinds({"capture": "terminated", "window": 1}),
    _kinds({"capture": "terminated", "window": 50}),  # longer than every episode: the whole episode
    _kinds({"capture": -0.5, "window": 4}),
    _kinds({"capture": "terminated", "window": 3, "every": 2}),
    _kinds({"capture": "terminated", "window": 2, "all_env_fields": ()}),
    _kinds({"capture": "terminated", "window": 3, "all_env_fields": ("rew", "done", "obs")}),
])
@pytest.mark.parametrize("segment_steps", [1, 4])
def test_trigger_keeps_the_last_steps_of_captured_episodes(tmp_path, volume_reference, options, segment_steps):
    expected_file, make_steps = volume_reference
    steps = make_steps(40, N, seed=8, p_done=0.12, burst=(9, 10, 30))  # every env ends at once, twice in a row
    record(tmp_path / "r.npz", steps, segment_steps=segment_steps, **options)
    expected = expected_file(steps, N, **options)
    meta = assert_file(tmp_path / "r.npz", expected)
    assert meta["windows"]["window"] == options["window"]
    assert expected["episodes"][:, 4].sum() > 3  # the test captured something


def test_trigger_with_a_callable_evaluated_on_the_device(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(30, N, seed=9)
    seen = []

    def long_or_high(ends):
        seen.append(ends.step)
        assert ends.returns.dtype == torch.float64 and ends.length.dtype == torch.int64
        return (ends.length > 4) | (ends.returns > 1.0)

    record(tmp_path / "r.npz", steps, capture=long_or_high, window=3)
    assert seen == list(range(30))  # at every step, whether or not an episode ended
    expected = expected_file(steps, N, capture=long_or_high, window=3,
                             capture_ref=lambda ep: ep["length"] > 4 or ep["ret"] > 1.0)
    meta = assert_file(tmp_path / "r.npz", expected)
    assert meta["windows"]["capture"].startswith("callable ")


@pytest.mark.parametrize("T", [60, 61])  # 61: the last row stands for 1 step; its slot held others before
def test_partial_flushes_and_ring_wraps_keep_windows_whole(tmp_path, volume_reference, T):
    expected_file, make_steps = volume_reference
    steps = make_steps(T, N, seed=10, p_done=0.2)
    record(tmp_path / "r.npz", steps, segment_steps=2, flush_interval_s=1e-9, capture="terminated", window=9, every=2)
    assert_file(tmp_path / "r.npz", expected_file(steps, N, capture="terminated", window=9, every=2))


def test_xyzw_quaternions_are_reordered_in_windows_too(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(20, N, seed=11)
    options = {"capture": "terminated", "window": 3, "all_env_fields": ("rew", "done"), "quat_order": "xyzw"}
    record(tmp_path / "r.npz", steps, **options)
    assert_file(tmp_path / "r.npz", expected_file(steps, N, **options))


def test_numpy_inputs_and_bool_mask_tensors(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(8, N, seed=12, numpy=True)
    record(tmp_path / "r.npz", steps, envs=torch.tensor([False, True, True, False, False, False, True]), every=2)
    assert_file(tmp_path / "r.npz", expected_file(steps, N, envs=[1, 2, 6], every=2))


def test_plain_recording_is_still_format_v1_byte_for_byte(tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(7, N, seed=13)
    record(tmp_path / "r.npz", steps)
    meta = assert_file(tmp_path / "r.npz", expected_file(steps, N))
    assert "volume" not in meta and "every" not in meta
