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


def test_demo_camera_records_a_rendered_view_per_detail_env(tmp_path, capsys):
    pytest.importorskip("av")
    assert main(["demo", "--camera", "--camera-size", "32", "--num-envs", "40", "--steps", "8", "--no-replay",
                 "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert "demo_40envs_camera.npz" in capsys.readouterr().out
    with rollrec.load(tmp_path / "demo_40envs_camera.npz") as r:
        assert set(r.cameras) == {"chase", "depth"} and r.cameras["chase"].codec == "h264"
        assert r.cameras["depth"].dtype == "<u2" and r.cameras["depth"].codec == "zstd"
        detail = list(r.detail_envs)
        assert len(detail) == 16 and detail[0] == 0 and detail[-1] == 39
        frames = r.images("chase", detail[3])
        assert len(frames) == 8 and frames[7].shape == (32, 32, 3)
        assert len(r.images("chase", 1)) == 0  # not a detail env


def test_demo_mujoco_camera_records_mujocos_own_render_or_says_why_not(tmp_path):
    """In a process of its own: mujoco picks its GL backend when imported (EGL here, without a display)."""
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
    pytest.importorskip("av")
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "rollrec", "demo", "--env", "mujoco:Ant-v5", "--camera", "--camera-size",
                          "24", "--num-envs", "3", "--steps", "4", "--no-replay", "--out", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    if "recording without a camera:" in out.stdout:  # no offscreen GL on this machine: said so, recorded the rest
        assert (tmp_path / "demo_Ant-v5_3envs.npz").exists()
        pytest.skip(out.stdout.split("recording without a camera:")[1].splitlines()[0].strip())
    with rollrec.load(tmp_path / "demo_Ant-v5_3envs_camera.npz") as r:
        assert list(r.cameras) == ["track"] and r.cameras["track"].shape == (24, 24, 3)
        assert len(r.images("track", 2)) == 4
