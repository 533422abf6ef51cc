"""``rollrec demo``: records the walker or a Gymnasium MuJoCo env and says what it wrote."""

from __future__ import annotations

import re

import pytest

import rollrec
from rollrec.cli import main
from rollrec.envs import GaitPolicy


def test_demo_writes_and_reports_the_steps(tmp_path, capsys):
    assert main(["demo", "--num-envs", "4", "--steps", "6", "--no-replay", "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrote .*demo_4envs\.npz: 6 steps x 4 envs on cpu, ", out)


def test_demo_interrupted_reports_the_steps_it_recorded(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    forward = GaitPolicy.forward

    def interrupted_at_the_fifth_step(self, obs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return forward(self, obs)

    monkeypatch.setattr(GaitPolicy, "forward", interrupted_at_the_fifth_step)
    code = main(["demo", "--num-envs", "4", "--steps", "1000", "--out", str(tmp_path), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 130  # interrupted: the file is kept, the replay server is not started
    assert "4 steps x 4 envs on cpu (interrupted after 4 of 1000)" in out, out
    assert rollrec.load(tmp_path / "demo_4envs.npz").T == 4


def test_demo_after_a_killed_demo_names_recover(tmp_path, capsys):
    (tmp_path / "demo_4envs.npz.partial.json").write_text("{}")
    args = ["demo", "--num-envs", "4", "--steps", "3", "--no-replay", "--out", str(tmp_path), "--device", "cpu"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "rollrec recover" in err
    assert "--overwrite" in err and "overwrite=True" not in err  # the command's flag, not the API's keyword
    assert len(err.strip().splitlines()) == 1
    assert main([*args, "--overwrite"]) == 0



def test_demo_mujoco_ant_records_names_terms_and_the_model(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
    assert main(["demo", "--env", "mujoco:Ant-v5", "--num-envs", "3", "--steps", "12", "--no-replay",
                 "--out", str(tmp_path)]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert path.endswith("demo_Ant-v5_3envs.npz")
    with rollrec.load(path) as r:
        assert (r.T, r.N) == (12, 3) and r.env_name == "Ant-v5"
        assert r.link_names[:2] == ["torso", "front_left_leg"]
        assert set(r.reward_term_names) == {"forward", "ctrl", "contact", "survive"}
        assert r.model is not None and r.model.num_geoms == 14


def test_demo_walker_still_records(tmp_path, capsys):
    assert main(["demo", "--num-envs", "4", "--steps", "5", "--no-replay", "--device", "cpu", "--out", str(tmp_path)]) == 0
    with rollrec.load(capsys.readouterr().out.strip().splitlines()[-1]) as r:
        assert (r.T, r.N) == (5, 4) and r.model is None


@pytest.mark.parametrize(("env", "message"), [("foo", "--env must be 'walker' or 'mujoco:<Gymnasium id>'"),
                                              ("mujoco:", "--env must be"),
                                              ("mujoco:NoSuchEnv-v9", "--env mujoco:NoSuchEnv-v9")])
def test_demo_bad_env_is_one_line(tmp_path, capsys, env, message):
    assert main(["demo", "--env", env, "--num-envs", "2", "--steps", "2", "--no-replay", "--out", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
