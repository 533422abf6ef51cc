"""``rollrec demo``: the built-in walker and Gymnasium's MuJoCo envs, written without serving."""

from __future__ import annotations

import pytest

import rollrec
from rollrec.cli import main


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
