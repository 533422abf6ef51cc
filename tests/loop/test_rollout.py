"""RolloutRecorder: runs a policy in a batched env through an adapter and writes the rollout."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import rollrec
from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs import GaitPolicy, WalkerEnv


def test_walker_rollout_has_every_field(tmp_path):
    env = WalkerEnv(6, seed=3, max_episode_steps=40)
    path = RolloutRecorder(env, max_steps=90, progress=False).run(GaitPolicy(), tmp_path)
    r = rollrec.load(path)
    assert (r.T, r.N) == (90, 6)
    assert r.link_names == list(WalkerEnv.link_names)
    assert r.meta["link_parents"] == list(WalkerEnv.link_parents)
    assert r.reward_term_names == list(WalkerEnv.reward_term_names)
    np.testing.assert_allclose(np.asarray(r["rew_terms"]).sum(-1), r["rew"], rtol=1e-5, atol=1e-5)
    assert np.asarray(r["done"]).any()  # per-env dones recorded, the batch kept running
    assert r.dt == env.dt


def test_ctrl_c_finalises_what_was_recorded(tmp_path):
    calls = {"n": 0}
    inner = GaitPolicy()

    def policy(obs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return inner(obs)

    rr = RolloutRecorder(WalkerEnv(2), max_steps=100, progress=False)
    path = rr.run(policy, tmp_path)
    r = rollrec.load(path)
    assert rr.interrupted and r.T == 7 and r.meta["interrupted"] == "KeyboardInterrupt"


@pytest.mark.parametrize(("stop_on", "check"), [("any", lambda d: d[-1].any() and not d[:-1].any()), ("all", lambda d: d.any(0).all())])
def test_stop_on(tmp_path, stop_on, check):
    env = WalkerEnv(3, seed=0, max_episode_steps=20)
    path = RolloutRecorder(env, max_steps=500, stop_on=stop_on, progress=False).run(GaitPolicy(), tmp_path)
    r = rollrec.load(path)
    assert r.T < 500 and check(np.asarray(r["done"]))


class GymLikeVectorEnv:
    metadata: ClassVar[dict] = {"render_fps": 50}
    single_action_space = object()

    def __init__(self, n=4):
        self.num_envs = n
        self.t = 0

    def reset(self, seed=None):
        return np.zeros((self.num_envs, 3), np.float32), {}

    def step(self, action):
        self.t += 1
        term = np.zeros(self.num_envs, bool)
        trunc = np.full(self.num_envs, self.t % 4 == 0)
        info = {"reward_ctrl": -np.abs(action).sum(-1), "reward_alive": np.ones(self.num_envs), "_reward_ctrl": np.ones(self.num_envs, bool)}
        return np.full((self.num_envs, 3), self.t, np.float32), np.ones(self.num_envs), term, trunc, info


def test_gymnasium_vector_env(tmp_path):
    path = RolloutRecorder(GymLikeVectorEnv(), max_steps=9, progress=False).run(lambda o: np.ones((4, 2)), tmp_path)
    r = rollrec.load(path)
    assert (r.T, r.N) == (9, 4) and r.dt == pytest.approx(0.02)
    assert r.reward_term_names == ["ctrl", "alive"]
    np.testing.assert_array_equal(r["rew_terms"][0, 0], [-2.0, 1.0])
    assert np.asarray(r["truncated"])[:, 0].nonzero()[0].tolist() == [3, 7]


def test_unknown_env_is_refused():
    with pytest.raises(TypeError, match="no adapter"):
        RolloutRecorder(object())


class RenderingWalker(WalkerEnv):
    def render(self):
        img = np.zeros((self.num_envs, 24, 32, 3), np.uint8)
        img[..., 0] = (np.clip(self.pos[:, 0].numpy(), 0, 1) * 255)[:, None, None]
        return img


def test_video_every_records_renders(tmp_path):
    rr = RolloutRecorder(RenderingWalker(3), max_steps=10, progress=False, video_every=2, video_envs=[0, 2])
    path = rr.run(GaitPolicy(), tmp_path)
    video = rollrec.load(path).meta["video"]
    assert video["steps"] == [0, 2, 4, 6, 8] and (tmp_path / video["file"]).exists()


def test_video_needs_render():
    with pytest.raises(ValueError, match="no render"):
        RolloutRecorder(WalkerEnv(2), video_every=1)


@pytest.mark.parametrize(("env_name", "stem"), [("../../x", "x"), ("ALE/Pong-v5", "ALE_Pong-v5"), ("/etc/passwd", "etc_passwd"), ("..", "rollout")])
def test_file_names_from_env_names_stay_in_the_output_folder(tmp_path, env_name, stem):
    class Named(WalkerEnv):
        name = env_name

    out = tmp_path / "out"
    path = RolloutRecorder(Named(2), max_steps=3, progress=False).run(GaitPolicy(), out)
    assert path.parent == out and path.name.startswith(f"{stem}_") and path.suffix == ".npz"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]
    assert rollrec.load(path).meta["env_name"] == env_name  # kept as given inside the file


@pytest.mark.parametrize("filename", ["../x.npz", "sub/x.npz", "/tmp/x.npz", ".."])
def test_filename_must_be_a_plain_name(tmp_path, filename):
    with pytest.raises(ValueError, match="plain file name"):
        RolloutRecorder(WalkerEnv(2), max_steps=3, progress=False).run(GaitPolicy(), tmp_path, filename=filename)


@pytest.mark.parametrize("how", ["keyword", "group"])
def test_distributed_false_names_the_file_alone_either_way(tmp_path, monkeypatch, how):
    """``distributed=False`` (a keyword, or inside ``sharding=Sharding(...)``) writes a plain file whatever
    the process group: the file name is then not agreed with other ranks (a collective they would not join)."""
    from rollrec.engine import Sharding
    from rollrec.loop import rollout as rollout_module

    def no_collective(name):
        raise AssertionError("agree() is a collective: a recording with distributed=False must not call it")

    monkeypatch.setattr(rollout_module, "agree", no_collective)
    options = {"distributed": False} if how == "keyword" else {"sharding": Sharding(distributed=False)}
    path = RolloutRecorder(WalkerEnv(2, seed=0), max_steps=3, progress=False, **options).run(GaitPolicy(), tmp_path)
    assert rollrec.load(path).T == 3
