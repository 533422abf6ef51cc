"""Odd `record()` input and ``meta``: handled, or refused at the first call (or the constructor)
with a message naming the field; never a failure at close or a file that `load` refuses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder

N = 4


def step(t: float = 0.0, **overrides) -> dict:
    t = float(t)
    out = {
        "obs": torch.full((N, 3), t),
        "act": torch.zeros(N, 2),
        "rew": torch.full((N,), t),
        "done": torch.zeros(N, dtype=torch.bool),
    }
    out.update(overrides)
    return out


def _plain_numpy(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


# ---- values that need handling -----------------------------------------------------------------
def test_tensors_that_require_grad_are_recorded_by_value(tmp_path):
    policy = torch.nn.Linear(3, 2)
    path = tmp_path / "grad.npz"
    acts = []
    with Recorder(path, N, segment_steps=2) as rec:
        for t in range(5):
            obs = torch.full((N, 3), float(t), requires_grad=True)
            act = policy(obs)  # a policy called without no_grad
            acts.append(act.detach().clone())
            rec.record(obs={"pos": obs, "vel": obs * 2}, act=act, rew=act.sum(-1), done=torch.zeros(N, dtype=torch.bool),
                       reward_terms={"a": act[:, 0], "b": act[:, 1]}, feat=act * 3)
            assert act.requires_grad and act.grad_fn is not None  # the caller's graph is untouched
    with rollrec.load(path) as r:
        np.testing.assert_allclose(r["act"], torch.stack(acts).numpy())
        np.testing.assert_allclose(r["rew_terms"][..., 1], torch.stack(acts)[..., 1].numpy())
        np.testing.assert_allclose(r["feat"], 3 * torch.stack(acts).numpy(), rtol=1e-6)
        np.testing.assert_allclose(r["obs"][:, :, 3:], 2 * r["obs"][:, :, :3])


def test_empty_reward_terms_are_no_terms(tmp_path):
    path = tmp_path / "k0.npz"
    with Recorder(path, N) as rec:
        rec.record(**step(0), reward_terms={})
        rec.record(**step(1), reward_terms={})
        rec.record(**step(2))  # {} and None mean the same
    with rollrec.load(path) as r:
        assert r["rew_terms"].shape == (3, N, 0) and r.reward_term_names == []


@pytest.mark.parametrize("dtype", [torch.uint16, torch.uint32, torch.uint64])
def test_unsigned_fields_are_stored_natively(tmp_path, dtype):
    path = tmp_path / "u.npz"
    big = {torch.uint16: 65535, torch.uint32: 4_000_000_000, torch.uint64: 2**63 + 5}[dtype]
    with Recorder(path, N) as rec:
        for t in range(3):
            counts = torch.full((N, 2), big - t, dtype=dtype)
            rec.record(**step(t), counts=counts, reward_terms={"n": torch.full((N,), t, dtype=dtype)})
    arrays = _plain_numpy(path)
    assert arrays["counts"].dtype == np.dtype(str(dtype).replace("torch.", ""))
    assert arrays["counts"][:, 0, 0].tolist() == [big, big - 1, big - 2]
    assert arrays["rew_terms"].dtype == np.float32 and arrays["rew_terms"][:, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_bfloat16_is_stored_as_float32_exactly(tmp_path):
    path = tmp_path / "bf16.npz"
    values = []
    with Recorder(path, N) as rec:
        for _ in range(3):
            obs = (torch.randn(N, 3) * 100).to(torch.bfloat16)
            values.append(obs.float())
            rec.record(obs={"a": obs, "b": obs[:, :1]}, act=obs[:, :2], rew=obs[:, 0], done=torch.zeros(N, dtype=torch.bool),
                       reward_terms={"x": obs[:, 1]}, emb=obs)
    arrays = _plain_numpy(path)  # numpy has no bfloat16: the file holds float32
    for key in ("obs", "act", "rew", "emb", "rew_terms"):
        assert arrays[key].dtype == np.float32, key
    np.testing.assert_array_equal(arrays["emb"], torch.stack(values).numpy())
    np.testing.assert_array_equal(arrays["act"], torch.stack(values)[..., :2].numpy())


def test_dtypes_numpy_lacks_are_refused_at_the_first_call(tmp_path):
    rec = Recorder(tmp_path / "f8.npz", N)
    with pytest.raises(ValueError, match=r"'x': dtype torch.float8_e4m3fn has no numpy equivalent"):
        rec.record(**step(), x=torch.zeros(N, 2).to(torch.float8_e4m3fn))
    with pytest.raises(ValueError, match=r"'act': complex dtype"):
        rec.record(**step(act=torch.zeros(N, 2, dtype=torch.complex64)))
    rec.record(**step())  # nothing was fixed by the refused calls
    rec.close()


def test_numpy_inputs_of_odd_dtypes(tmp_path):
    rec = Recorder(tmp_path / "np.npz", N)
    with pytest.raises(ValueError, match=r"'x': numpy dtype"):
        rec.record(**step(), x=np.array(["a"] * N))
    rec.record(**step(), x=np.arange(N, dtype=np.uint16))
    rec.close()
    assert _plain_numpy(tmp_path / "np.npz")["x"].dtype == np.uint16


# ---- refused at the first call -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["meta", "rew_term_names", "link_names", "rew_terms"])
def test_extras_named_like_format_members_are_refused(tmp_path, name):
    rec = Recorder(tmp_path / "x.npz", N)
    with pytest.raises(ValueError, match=f"extra field '{name}' has the name of a member the format defines"):
        rec.record(**step(), **{name: torch.zeros(N)})


@pytest.mark.parametrize(("arg", "keys"), [("reward_terms", [1, "b"]), ("reward_terms", [("a", 1)]), ("obs", [0])])
def test_dict_keys_must_be_strings(tmp_path, arg, keys):
    rec = Recorder(tmp_path / "x.npz", N)
    values = {k: torch.zeros(N) if arg == "reward_terms" else torch.zeros(N, 3) for k in keys}
    given = step(**{arg: values})
    with pytest.raises(ValueError, match=f"{arg} keys must be strings.*got {re.escape(repr(keys[0]))}"):
        rec.record(**given)


def test_link_counts_must_agree_at_the_first_call(tmp_path):
    rec = Recorder(tmp_path / "links.npz", N)
    with pytest.raises(ValueError, match="'link_quat' has 3 links but 'link_pos' has 2"):
        rec.record(**step(), link_pos=torch.zeros(N, 2, 3), link_quat=torch.zeros(N, 3, 4))
    with pytest.raises(ValueError, match="link_names has 1 names but link_pos has 2 links"):
        Recorder(tmp_path / "l2.npz", N, link_names=["a"]).record(**step(), link_pos=torch.zeros(N, 2, 3))


# ---- meta ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["num_envs", "num_steps", "format_version", "format", "dt", "quat_order", "extras"])
def test_meta_entries_rollrec_derives_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match=f"meta\\['{key}'\\]: set by rollrec"):
        Recorder(tmp_path / "m.npz", N, meta={key: 7})
    rec = Recorder(tmp_path / "m.npz", N)
    rec.record(**step())
    with pytest.raises(ValueError, match=f"meta\\['{key}'\\]: set by rollrec"):
        rec.update_meta(**{key: 7})
    rec.close()
    with rollrec.load(tmp_path / "m.npz") as r:
        assert r.N == N


def test_obs_layout_names_a_flat_obs_and_is_checked(tmp_path):
    D = step()["obs"].shape[1]
    layout = [{"name": "joint_pos", "start": 0, "stop": D - 1, "shape": [D - 1]},
              {"name": "phase", "start": D - 1, "stop": D, "shape": [1]}]
    with Recorder(tmp_path / "named.npz", N, meta={"obs_layout": layout}) as rec:
        rec.record(**step())
    with rollrec.load(tmp_path / "named.npz") as r:
        assert r.meta["obs_layout"] == layout
    with pytest.raises(ValueError, match=r"obs_layout'\]\[0\] \('x'\): columns 0..99 do not fit obs of"):
        Recorder(tmp_path / "wide.npz", N, meta={"obs_layout": [{"name": "x", "start": 0, "stop": 99, "shape": [99]}]}
                 ).record(**step())
    with pytest.raises(ValueError, match=r"obs_layout'\]\[0\] must be"):
        Recorder(tmp_path / "bad.npz", N, meta={"obs_layout": [{"name": "x"}]})
    rec = Recorder(tmp_path / "dict.npz", N, meta={"obs_layout": layout})
    with pytest.raises(ValueError, match="obs is a dict, so rollrec writes its layout"):
        rec.record(**{**step(), "obs": {"a": torch.zeros(N, 2)}})


def test_meta_values_are_made_json_when_given(tmp_path):
    meta = {"seed": np.int64(3), "lr": np.float32(0.5), "flag": np.bool_(True), "gains": np.arange(3),
            "ckpt": Path("/runs/a.pt"), "nested": {"pair": (np.uint8(1), 2.5)}, "link_parents": [-1, 0]}
    path = tmp_path / "m.npz"
    with Recorder(path, N, meta=meta) as rec:
        rec.record(**step())
        rec.update_meta(score=np.float64(1.25), table=np.eye(2, dtype=np.float32))
        meta["seed"] = 99  # later changes to the caller's dict do not reach the file
    got = json.loads(str(_plain_numpy(path)["meta"]))
    assert got["seed"] == 3 and got["lr"] == 0.5 and got["flag"] is True and got["gains"] == [0, 1, 2]
    assert got["ckpt"] == "/runs/a.pt" and got["nested"] == {"pair": [1, 2.5]}
    assert got["score"] == 1.25 and got["table"] == [[1.0, 0.0], [0.0, 1.0]]


def _nested(depth: int) -> list:
    out: list = [0]
    for _ in range(depth):
        out = [out]
    return out


@pytest.mark.parametrize(("meta", "message"), [
    ({"obj": object()}, r"meta\['obj'\]: a builtins.object is not a JSON value"),
    ({"t": torch.zeros(2)}, r"meta\['t'\]: a torch.Tensor is not a JSON value \(convert it with .tolist"),
    ({"d": {1: "a"}}, r"meta\['d'\]: key 1 is a int; meta keys must be strings"),
    ({"s": {1, 2}}, r"meta\['s'\]: a builtins.set"),
    ({"c": np.complex64(1j)}, r"meta\['c'\]: numpy complex64"),
    ({"bad": "\ud800"}, r"meta\['bad'\]: string .* is not valid unicode"),
    ({"link_parents": ["root"]}, r"link_parents'\] must be a list of integers"),
    ({"deep": _nested(70)}, "nested deeper than 64"),
])
def test_meta_that_json_cannot_hold_is_refused_at_once(tmp_path, meta, message):
    with pytest.raises(ValueError, match=message):
        Recorder(tmp_path / "m.npz", N, meta=meta)
    rec = Recorder(tmp_path / "m.npz", N)
    rec.record(**step())
    with pytest.raises(ValueError, match=message):
        rec.update_meta(**meta)
    rec.close()  # the refused entry left nothing behind
    with rollrec.load(tmp_path / "m.npz") as r:
        assert r.T == 1


@pytest.mark.parametrize("dt", [0, -0.1, float("nan"), float("inf"), "fast", None])
def test_dt_is_checked_by_the_constructor(tmp_path, dt):
    with pytest.raises(ValueError, match="dt must be"):
        Recorder(tmp_path / "dt.npz", N, dt=dt)


def test_names_that_would_make_the_file_unreadable(tmp_path):
    with pytest.raises(ValueError, match="env_name.*not valid unicode"):
        Recorder(tmp_path / "n.npz", N, env_name="\udc80")
    with pytest.raises(ValueError, match="link_names.*not valid unicode"):
        Recorder(tmp_path / "n.npz", N, link_names=["a", "\ud800"])
    rec = Recorder(tmp_path / "n.npz", N)
    with pytest.raises(ValueError, match="reward_terms key .* is not valid unicode"):
        rec.record(**step(), reward_terms={"\ud800": torch.zeros(N)})


def test_update_meta_while_the_writer_thread_writes_the_sidecar(tmp_path):
    # Every step is a segment, so the writer thread serialises meta into the sidecar at every
    # step while this thread adds entries: each side must see a finished dict.
    path = tmp_path / "race.npz"
    with Recorder(path, N, segment_steps=1, meta={f"k{i}": list(range(20)) for i in range(300)}) as rec:
        for t in range(60):
            rec.record(**step(t))
            for j in range(5):
                rec.update_meta(**{f"s{t}_{j}": t})
    with rollrec.load(path) as r:
        assert r.T == 60 and r.meta["s59_4"] == 59 and r.meta["k299"] == list(range(20))


def test_update_meta_after_close(tmp_path):
    rec = Recorder(tmp_path / "c.npz", N)
    rec.record(**step())
    rec.close()
    with pytest.raises(RuntimeError, match="update_meta\\(\\) after close"):
        rec.update_meta(note="late")
