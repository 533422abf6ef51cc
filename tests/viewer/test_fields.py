"""Which fields the Plots tab offers, by name, and their values for one env."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.viewer.fields import FieldCache, channel_groups, find_channel, obs_names

from .conftest import spy_env_reads


@pytest.fixture(scope="module")
def dict_obs_file(tmp_path_factory):
    """4 envs x 30 steps recorded with a dict of observations and an extra ``contact`` [N, 2]."""
    path = tmp_path_factory.mktemp("fields") / "dict_obs.npz"
    rng = np.random.default_rng(0)
    N = 4
    with rollrec.Recorder(path, num_envs=N, max_steps=30, dt=0.05) as rec:
        for _ in range(30):
            rec.record(obs={"base_lin_vel": rng.standard_normal((N, 3)), "joint_pos": rng.standard_normal((N, 2, 2)),
                            "phase": rng.standard_normal(N)},
                       act=rng.standard_normal((N, 2)), rew=rng.standard_normal(N), done=np.zeros(N, bool),
                       truncated=np.zeros(N, bool), base_pos=rng.standard_normal((N, 3)),
                       base_quat=np.tile([1.0, 0, 0, 0], (N, 1)), reward_terms={"alive": np.ones(N)},
                       contact=rng.random((N, 2)) > 0.5)
    return path


def test_obs_named_from_the_layout(dict_obs_file):
    with rollrec.load(dict_obs_file) as r:
        groups = channel_groups(r)
        labels = [c.label for c in groups["obs"]]
        assert labels == ["base_lin_vel[0]", "base_lin_vel[1]", "base_lin_vel[2]", "joint_pos[0,0]", "joint_pos[0,1]",
                          "joint_pos[1,0]", "joint_pos[1,1]", "phase"]
        assert [c.label for c in groups["act"]] == ["act[0]", "act[1]"]
        assert [c.label for c in groups["base"]] == ["base x", "base y", "base z"]
        assert [c.label for c in groups["contact"]] == ["contact[0]", "contact[1]"]
        assert "link height" not in groups and "rew" not in groups and "done" not in groups


def test_obs_without_layout_and_link_heights(walker_file):
    with rollrec.load(walker_file) as r:
        groups = channel_groups(r)
        assert [c.label for c in groups["obs"][:2]] == ["obs[0]", "obs[1]"] and len(groups["obs"]) == 256
        heights = groups["link height"]
        assert [c.label for c in heights][:2] == [f"{r.link_names[0]} height", f"{r.link_names[1]} height"]
        cache = FieldCache(r)
        foot = find_channel(groups, f"{r.link_names[3]} height")
        np.testing.assert_allclose(cache.series(5, foot), r["link_pos"][:, 5, 3, 2])


def test_the_field_list_finds_fields_by_group_name(walker_file, dict_obs_file):
    """Issue 28: searching "link" found nothing though the list promised link heights (named
    "<link> height"): each field is offered with its group when its label does not name it. The
    Field list's search is Mantine's: the options whose text holds what is typed, any case."""
    from rollrec.viewer.fields import option

    def search(groups, typed):
        return [o for o in (option(c) for chans in groups.values() for c in chans) if typed.lower() in o.lower()]

    with rollrec.load(walker_file) as r:
        groups = channel_groups(r)
        found = search(groups, "link")
        assert len(found) == len(r.link_names) and found[0] == f"{r.link_names[0]} height · link height"
        assert find_channel(groups, found[3]) == find_channel(groups, f"{r.link_names[3]} height")  # either name
        assert len(search(groups, "obs")) == 256 and option(groups["base"][0]) == "base x"  # already named
    with rollrec.load(dict_obs_file) as r:
        groups = channel_groups(r)
        assert search(groups, "obs")[0] == "base_lin_vel[0] · obs" and len(search(groups, "OBS")) == 8


def test_values_of_one_env_read_once(dict_obs_file):
    with rollrec.load(dict_obs_file) as r:
        groups = channel_groups(r)
        calls = spy_env_reads(r)
        cache = FieldCache(r)
        c = find_channel(groups, "joint_pos[1,0]")
        np.testing.assert_allclose(cache.series(2, c), r["obs"][:, 2, 5])
        np.testing.assert_allclose(cache.series(2, find_channel(groups, "phase")), r["obs"][:, 2, 7])
        np.testing.assert_array_equal(cache.series(2, find_channel(groups, "contact[1]")), r["contact"][:, 2, 1])
        assert calls == [(2, ("obs",)), (2, ("contact",))]  # obs read once for env 2, only env 2's bytes
        cache.series(3, c)
        assert calls[-1] == (3, ("obs",))
    with pytest.raises(KeyError, match="no field called 'nope'"):
        find_channel(groups, "nope")


def test_malformed_layout_keeps_default_names():
    meta = {"obs_layout": [{"name": "a", "start": 0, "stop": 2, "shape": [2]}, {"name": "bad", "start": 1, "stop": 9},
                           {"start": 2}]}
    assert obs_names(meta, 4) == ["a[0]", "a[1]", "obs[2]", "obs[3]"]


def test_labels_stay_unique_when_an_extra_shares_an_obs_name(tmp_path):
    N = 2
    rng = np.random.default_rng(1)
    with rollrec.Recorder(tmp_path / "dup.npz", num_envs=N, max_steps=3, dt=0.1) as rec:
        for _ in range(3):
            rec.record(obs={"contact": rng.standard_normal((N, 2))}, act=np.zeros((N, 1)), rew=np.zeros(N),
                       done=np.zeros(N, bool), truncated=np.zeros(N, bool), base_pos=np.zeros((N, 3)),
                       base_quat=np.tile([1.0, 0, 0, 0], (N, 1)), reward_terms={"a": np.zeros(N)},
                       contact=rng.standard_normal((N, 2)))
    with rollrec.load(tmp_path / "dup.npz") as r:
        groups = channel_groups(r)
        labels = [c.label for chans in groups.values() for c in chans]
        assert len(labels) == len(set(labels))
        assert [c.label for c in groups["contact"]] == ["contact: contact[0]", "contact: contact[1]"]
        np.testing.assert_allclose(FieldCache(r).series(1, find_channel(groups, "contact: contact[1]")),
                                   r["contact"][:, 1, 1])
