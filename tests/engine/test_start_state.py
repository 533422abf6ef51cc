"""``meta["start_state"]``: the digest of every env's first obs, computed on the recording device.

The torch digest equals the numpy reference of the format (`rollrec.format.start_state`) for
every dtype and a dict obs; a recording writes it (and its recovery sidecar holds it after the
first flush); on a CUDA device it is queued work behind an event, and the host waits for it only
at close (checked with the stand-in for ``torch.cuda``, NOT a GPU: `tests/cuda_standin.py`).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec.engine.start_state import StartDigest
from rollrec.format import start_state as spec
from rollrec.format.errors import RolloutFormatError


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.bool_, np.uint8])
def test_torch_digest_equals_the_numpy_reference(dtype):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(7, 3, 4)) * 50).astype(dtype)
    if x.dtype.kind == "f":
        x[0, 0, 0], x[1, 1, 1], x[2, 2, 2] = -0.0, np.nan, np.inf
    got = spec.decode(StartDigest([torch.from_numpy(x)]).entry()).digests
    np.testing.assert_array_equal(got, spec.env_digests([x]))


def test_extreme_words_wide_observations_and_several_parts_equal_the_numpy_reference():
    rng = np.random.default_rng(1)
    big = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=(5, 6), dtype=np.int64)
    big[0, :3] = [np.iinfo(np.int64).min, -1, spec.MODULUS]
    wide = rng.normal(size=(5, 40_000)).astype(np.float32) * 1e30  # words up to 2**32 - 1, a long sum
    wide[0, :4] = [-np.inf, np.inf, -np.float32(3.4e38), np.float32(3.4e38)]
    for parts in ([big], [wide], [wide, big, wide[:, :7] > 0]):
        got = spec.decode(StartDigest([torch.from_numpy(p) for p in parts]).entry()).digests
        np.testing.assert_array_equal(got, spec.env_digests(parts))


def test_digests_tell_envs_apart_and_ignore_what_does_not_change_the_start():
    x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    d = spec.env_digests([x])
    assert len(set(d.tolist())) == 5
    y = x.copy()
    y[3, 7] = np.nextafter(y[3, 7], np.float32(np.inf))  # one ulp in one env
    changed = spec.env_digests([y]) != d
    assert changed.tolist() == [False, False, False, True, False]
    # the same start recorded as float64, and -0.0 for 0.0: the same digest
    z = x.astype(np.float64)
    z[0, 0] = -0.0 if x[0, 0] == 0 else z[0, 0]
    np.testing.assert_array_equal(spec.env_digests([z]), d)
    # a dict obs digests its entries in order
    a, b = x[:, :10], x[:, 10:]
    np.testing.assert_array_equal(spec.env_digests([a, b]), d)
    assert (spec.env_digests([b, a]) != d).all()


def test_a_recording_stores_the_digest_of_its_first_obs(tmp_path):
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(10, 4, 6)).astype(np.float32)
    sidecar = tmp_path / "r.npz.partial.json"
    with Recorder(tmp_path / "r.npz", 4, segment_steps=3, flush_interval_s=None) as rec:
        for t in range(10):
            rec.record(obs={"a": obs[t, :, :2], "b": obs[t, :, 2:]}, act=np.zeros((4, 1)), rew=np.zeros(4),
                       done=np.zeros(4, bool))
        # segments were flushed: the writer's commits after the first carry the digest into the sidecar,
        # what `rollrec recover` finishes a killed recording from
        deadline = time.monotonic() + 20
        while "start_state" not in sidecar.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spec.decode(json.loads(sidecar.read_text())["info"]["meta"]["start_state"]).digests.tolist() \
            == spec.env_digests([obs[0]]).tolist()
    with rollrec.load(tmp_path / "r.npz") as r:
        state = spec.decode(r.meta["start_state"])
        np.testing.assert_array_equal(state.digests, spec.env_digests([obs[0]]))
        assert state.fields == ("obs",) and state.hash == spec.HASH and state.digest == spec.whole_digest(state.digests)


def test_save_and_a_sharded_rollout_carry_the_digest(tmp_path, make_fields, write_sharded):
    fields = make_fields(6, 9, seed=4)
    whole = rollrec.save(tmp_path / "whole.npz", fields, dt=0.02)
    write_sharded(tmp_path / "run", fields, (4, 2, 3))
    with rollrec.load(whole) as w, rollrec.load(tmp_path / "run") as s:
        assert w.meta["start_state"] == s.meta["start_state"]  # merged from the shards, in env order
        np.testing.assert_array_equal(spec.decode(w.meta["start_state"]).digests,
                                      spec.env_digests([np.asarray(fields["obs"][0])]))
    write_sharded(tmp_path / "gap", fields, (4, 2, 3), missing=(1,))
    with pytest.warns(UserWarning), rollrec.load(tmp_path / "gap") as s:
        assert "start_state" not in s.meta  # envs 4..5 are missing: their starts are unknown


def test_the_digest_is_derived_not_given(tmp_path):
    with pytest.raises(ValueError, match=r"start_state.*set by rollrec"):
        Recorder(tmp_path / "r.npz", 2, meta={"start_state": {"hash": "x"}})


def test_damaged_entries_are_refused_with_what_is_wrong():
    good = spec.encode(np.arange(3, dtype=np.uint32))
    assert spec.decode(good).digests.tolist() == [0, 1, 2]
    with pytest.raises(RolloutFormatError, match="holds 12 bytes, expected 16"):
        spec.decode({**good, "num_envs": 4})
    with pytest.raises(RolloutFormatError, match="env_digests"):
        spec.decode({k: v for k, v in good.items() if k != "env_digests"})
    with pytest.raises(RolloutFormatError, match="expected an object"):
        spec.decode([1, 2])


def test_on_a_cuda_device_the_host_waits_only_when_the_recording_closes(cuda_standin):
    # The stand-in (NOT a GPU) logs every event and copy: the digest is computed and copied to
    # pinned memory on the device's current stream, an event recorded after it, and nothing waits
    # for the device until entry() (close) asks for the digests.
    obs = torch.from_numpy(np.random.default_rng(5).normal(size=(6, 5)).astype(np.float32))
    device_obs = cuda_standin.reports_cuda(obs, 1)
    cuda_standin.device_memory(device_obs)
    cuda_standin.sync_debug = True  # .cpu(), .numpy(), .item() of the obs would raise
    digest = StartDigest([device_obs])
    cuda_standin.sync_debug = False
    assert not cuda_standin.ops("sync") and not cuda_standin.ops("stream-sync")
    records = cuda_standin.ops("record")
    assert len(records) == 1 and records[0].stream == "default:1"  # the obs device's current stream
    assert [op.info["pinned"] for op in cuda_standin.ops("h2d")] == [True]  # the powers, staged through pinned memory
    assert digest.ready()  # asks the event, never waits
    entry = digest.entry()
    assert len(cuda_standin.ops("sync")) == 1
    np.testing.assert_array_equal(spec.decode(entry).digests, spec.env_digests([obs.numpy()]))
