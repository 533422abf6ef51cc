"""The viewer's model without a browser: env switching, episode jumps, best/worst, camera."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.viewer.state import CAMERA_MODES, ReplayState, camera_pose

from .conftest import spy_env_reads


@pytest.fixture
def state(walker_file):
    with rollrec.load(walker_file) as r:
        yield ReplayState(r, env=0)


def test_select_env_reads_that_env(state, walker_file):
    with rollrec.load(walker_file) as r:
        expected = np.asarray(r["base_pos"][:, 3])
    assert state.select_env(3) == 3
    np.testing.assert_allclose(state.data.base_pos, expected)
    assert state.frame_status().endswith("env 3 / 7")


def test_select_env_out_of_range(state):
    with pytest.raises(IndexError, match="out of range"):
        state.select_env(8)
    with pytest.raises(IndexError, match="out of range"):
        state.select_env(-9)
    assert state.env == 0
    assert state.select_env(-1) == 7  # negative counts from the end, as in Rollout.env


def test_env_switch_keeps_frame(state):
    state.clock.seek(42)
    state.select_env(5)
    assert state.frame == 42


def test_next_prev_env_wrap(state):
    assert state.next_env(-1) == 7
    assert state.next_env(+1) == 0


def test_best_and_worst_env_by_return(state):
    totals = state.rollout.total_rewards()
    assert state.best_env() == int(np.argmax(totals))
    assert state.worst_env() == int(np.argmin(totals))
    assert state.best_env() != state.worst_env()


def test_episode_jumps(state):
    bounds = state.rollout.episode_bounds(0)
    assert len(bounds) >= 3
    assert state.jump_episode(+1) == bounds[1, 0]
    assert state.jump_episode(+1) == bounds[2, 0]
    state.clock.seek(int(bounds[2, 0]) + 5)
    assert state.jump_episode(-1) == bounds[2, 0]  # back to the start of this episode first
    assert state.jump_episode(-1) == bounds[1, 0]
    state.clock.seek(0)
    assert state.jump_episode(-1) == 0  # clamped
    state.clock.seek(state.rollout.T - 1)
    assert state.jump_episode(+1) == bounds[-1, 0]


def test_episode_status_line(state):
    bounds = state.rollout.episode_bounds(0)
    returns = state.rollout.episode_returns(0)
    start, stop = bounds[1]
    state.clock.seek(int(start) + 9)
    line = state.episode_status()
    # the step counts from 0 like the frame readout (``Frame 0 / T-1``): step 9 of 0..stop-start-1
    assert line.startswith(f"Episode 2 / {len(bounds)} · step 9 / {stop - start - 1}")
    state.clock.seek(0)
    assert state.frame_status().startswith(f"Frame 0 / {state.num_frames - 1}")
    assert state.episode_status().startswith(f"Episode 1 / {len(bounds)} · step 0 / {bounds[0][1] - 1}")
    state.clock.seek(int(start) + 9)
    so_far = float(np.asarray(state.rollout["rew"][start : start + 10, 0], dtype=np.float64).sum())
    assert f"return {so_far:.2f}" in line
    state.clock.seek(int(stop) - 1)  # last step: return so far is the episode return
    assert f"return {returns[1]:.2f}" in state.episode_status()


def test_reward_readout_matches_file(state):
    state.select_env(2)
    state.clock.seek(17)
    rows = dict(state.reward_readout())
    names = state.rollout.reward_term_names
    assert list(rows)[:-1] == names and list(rows)[-1] == "total"
    for i, n in enumerate(names):
        assert rows[n] == pytest.approx(float(state.rollout["rew_terms"][17, 2, i]))
    assert rows["total"] == pytest.approx(float(state.rollout["rew"][17, 2]))


def test_camera_presets_aim_at_base(state):
    state.clock.seek(30)
    base = state.base_position()
    for mode in CAMERA_MODES:
        pose = state.set_camera_mode(mode)
        np.testing.assert_allclose(pose.look_at, base, rtol=1e-6)
        assert np.linalg.norm(np.subtract(pose.position, base)) > 1.0
    top = camera_pose("top", base)
    assert top.position[2] > base[2] + 3


def test_follow_tracks_base_until_another_preset(state):
    assert state.camera_mode == "follow"  # the default
    state.clock.seek(10)
    p10 = state.follow_pose()
    state.clock.seek(150)
    p150 = state.follow_pose()
    np.testing.assert_allclose(p150.look_at, state.data.base_pos[150], rtol=1e-6)
    assert p10 != p150
    state.set_camera_mode("top")
    assert state.follow_pose() is None


def test_unknown_camera_mode(state):
    with pytest.raises(ValueError, match="unknown camera mode"):
        state.set_camera_mode("orbit")
    assert state.camera_mode == "follow"


def test_legacy_file_opens_and_says_terms_are_means(legacy_file):
    with rollrec.load(legacy_file, allow_pickle=True) as r:
        s = ReplayState(r)
        assert r.terms_are_env_means
        assert len(s.reward_readout()) == len(r.reward_term_names) + 1
        s.jump_episode(+1)


def test_env_switch_reads_only_that_env_and_never_obs(walker_file):
    with rollrec.load(walker_file) as r:
        s = ReplayState(r)
        calls = spy_env_reads(r)
        s.select_env(4)
        s.select_env(4)  # already selected: nothing read
        assert len(calls) == 1 and calls[0][0] == 4
        assert "obs" not in calls[0][1] and "act" not in calls[0][1]
        assert s._totals == {}  # best/worst not computed until asked (cached per rollout shown first)


def test_skeleton_edges():
    from rollrec.viewer.scene import skeleton_edges

    assert skeleton_edges(3, [-1, 0, 1]).tolist() == [[1, 0], [2, 1]]
    assert skeleton_edges(3, None).tolist() == [[1, 0], [2, 1]]  # no parents: chained in order
    assert skeleton_edges(4, [-1, 0, 0, 9]).tolist() == [[1, 0], [2, 0]]  # out-of-range parent ignored
    assert skeleton_edges(1, None).shape == (0, 2)


def test_the_hotkeys_point_to_the_replay_guide():
    """Issue 28: the viewer said the README lists the hotkeys; they are in docs/guides/replay.md."""
    from pathlib import Path

    import rollrec.viewer.gui as gui

    source = Path(gui.__file__).read_text()
    assert "docs/guides/replay.md" in gui.__doc__ and "README" not in source
    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "replay.md"
    if guide.exists():  # the guide arrives from the docs branch: every hotkey is listed there
        text = guide.read_text()
        missing = [keys for keys, _ in gui.HOTKEYS if not all(k.strip() in text for k in keys.split("/"))]
        assert not missing, f"hotkeys missing from {guide}: {missing}"
