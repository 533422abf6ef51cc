"""Compare mode without a browser: what must match, the per-env differences, two envs in step."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.cli import main as rollrec_main
from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.viewer import IncomparableError, ReplayState, check_comparable, compute_overview
from rollrec.viewer.overview.compare import difference_columns, env_differences

from .conftest import record_walker


def test_same_task_compares(walker_file, walker_file_b):
    with rollrec.load(walker_file) as a, rollrec.load(walker_file_b) as b:
        assert check_comparable(a, b) == []
        d = env_differences(compute_overview(a), compute_overview(b))
        np.testing.assert_allclose(d.total_a, a.total_rewards())
        np.testing.assert_allclose(d.delta, b.total_rewards() - a.total_rewards())
        falls = [int((np.asarray(a["done"][:, k]) & ~np.asarray(a["truncated"][:, k])).sum()) for k in range(a.N)]
        assert d.terminations_a.tolist() == falls
        assert f"B higher in {int((d.delta > 0).sum())} of 8 envs" in d.summary()
        assert [c.name for c in difference_columns(d)] == ["Env", "A", "B", "B−A", "A falls", "B falls"]


def test_different_env_counts_or_dt_are_refused(tmp_path, walker_file):
    other_n = record_walker(tmp_path / "n4.npz", steps=20, num_envs=4)
    env = WalkerEnv(8, seed=0)
    env.dt = 0.01  # another control rate
    other_dt = RolloutRecorder(env, max_steps=20, progress=False).run(GaitPolicy(), tmp_path, filename="dt.npz")
    with rollrec.load(walker_file) as a:
        with rollrec.load(other_n) as b, pytest.raises(IncomparableError, match=r"walker.npz \(8 envs\) with n4.npz \(4 envs\)"):
            check_comparable(a, b)
        with rollrec.load(other_dt) as b, pytest.raises(IncomparableError, match=r"dt 0.02 s\) with dt.npz \(dt 0.01 s\)"):
            check_comparable(a, b)


def test_different_lengths_share_the_shorter_timeline(tmp_path, walker_file):
    short = record_walker(tmp_path / "short.npz", steps=50, num_envs=8)
    with rollrec.load(walker_file) as a, rollrec.load(short) as b:
        notes = check_comparable(a, b)
        assert notes == ["walker.npz has 200 steps and short.npz 50: both are shown and compared over the first 50"]
        s = ReplayState(a, other=b)
        assert s.num_frames == 50 and s.clock.num_frames == 50
        assert len(s.data.base_pos) == 50 and len(s.data_b.base_pos) == 50
        assert s.frame_status() == "Frame 0 / 49 · env 0 / 7"


def test_state_keeps_both_rollouts_on_one_env(walker_file, walker_file_b):
    with rollrec.load(walker_file) as a, rollrec.load(walker_file_b) as b:
        s = ReplayState(a, other=b, env=3)
        s.clock.seek(20)
        assert (s.data.env, s.data_b.env) == (3, 3)
        s.select_env(-1)
        np.testing.assert_allclose(s.data_b.base_pos, b["base_pos"][:, 7])
        rows_b = dict(s.reward_readout_b())
        assert rows_b["total"] == pytest.approx(float(b["rew"][20, 7]))
        assert "return A" in s.episode_status() and " · B " in s.episode_status()
        # side by side: B is shifted, and the camera looks midway between the two robots
        target = s.camera_target()
        np.testing.assert_allclose(target, (s.data.base_pos[20] + s.data_b.base_pos[20] + s.offset_b) / 2, rtol=1e-5)
        s.set_layout("overlaid")
        assert not s.offset_b.any()
        with pytest.raises(ValueError, match="unknown layout"):
            s.set_layout("stacked")


def test_cli_refuses_incomparable_files_in_one_line(tmp_path, walker_file, capsys):
    other_n = record_walker(tmp_path / "n4.npz", steps=20, num_envs=4)
    assert rollrec_main(["replay", str(walker_file), str(other_n), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rollrec replay: error: cannot compare walker.npz (8 envs) with n4.npz (4 envs)")
    assert "\n" not in err
    # more than two files are compared with the first (issue 24); every one must fit its timeline
    assert rollrec_main(["replay", str(walker_file), str(walker_file), str(other_n), "--port", "0"]) == 1
    assert capsys.readouterr().err.startswith("rollrec replay: error: cannot compare walker.npz (8 envs) with n4.npz")
