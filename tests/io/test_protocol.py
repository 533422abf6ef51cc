"""Every kind of rollout `rollrec.load` opens satisfies `ReadableRollout`, the protocol the viewer
and the video rely on: a v1 file, a v2 file (volume options), a sharded directory."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.engine import Recorder
from rollrec.io.protocol import ReadableRollout


def _v2(path, fields):
    T, N = fields["rew"].shape
    names = [str(s) for s in fields["rew_term_names"]]
    with Recorder(path, N, max_steps=T, dt=0.02, link_names=[str(s) for s in fields["link_names"]],
                  flush_interval_s=None, envs=[1]) as rec:
        for t in range(T):
            rec.record(obs=fields["obs"][t], act=fields["act"][t], rew=fields["rew"][t], done=fields["done"][t],
                       truncated=fields["truncated"][t], base_pos=fields["base_pos"][t],
                       base_quat=fields["base_quat"][t], link_pos=fields["link_pos"][t],
                       link_quat=fields["link_quat"][t],
                       reward_terms={n: fields["rew_terms"][t, :, i] for i, n in enumerate(names)})
    return path


@pytest.mark.parametrize("kind", ["v1", "v2", "sharded"])
def test_every_rollout_is_readable_as_the_protocol_says(kind, tmp_path, make_fields, write_sharded):
    fields = make_fields(T=8, N=4, L=2, done_every=3)
    if kind == "v1":
        path = rollrec.save(tmp_path / "v1.npz", fields, dt=0.02)
    elif kind == "v2":
        path = _v2(tmp_path / "v2.npz", fields)
    else:
        path = write_sharded(tmp_path / "run", fields, (1, 3))
    with rollrec.load(path) as r:
        assert isinstance(r, ReadableRollout)
        assert (r.T, r.N) == (8, 4) and r.layout.has_index == (kind == "v2")
        assert set(r.step_keys) <= set(r.keys()) and "rew" in r.step_keys and "link_names" not in r.step_keys
        for key in r.step_keys:
            assert r[key].shape[:2] == (8, 4), key
            assert r.read(key, (0, 2), (1, 3)).shape[:2] == (2, 2), key
        np.testing.assert_allclose(r.env(1)["rew"], fields["rew"][:, 1], rtol=1e-6)
        assert r.episode_bounds(0)[0, 0] == 0 and r.has_detail(1)
        assert r.model is None and r.link_names == ["link_0", "link_1"] and r.has_links
        np.testing.assert_allclose(r.total_rewards(), fields["rew"].astype(np.float64).sum(0), rtol=1e-5)
        r.check_unchanged()


def test_both_readers_define_every_method_and_property_of_the_protocol():
    from rollrec.io.sharded import ShardedRollout

    members = [n for n in vars(ReadableRollout) if not n.startswith("_") or n in ("__getitem__", "__contains__")]
    assert {"env", "read", "step_keys", "model", "index", "episode_bounds"} <= set(members)
    for cls in (rollrec.Rollout, ShardedRollout):
        missing = [n for n in members if not hasattr(cls, n)]
        assert not missing, (cls.__name__, missing)
