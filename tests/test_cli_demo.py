"""``rollrec demo``: records the walker and says what it wrote."""

from __future__ import annotations

import re

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
    assert "rollrec recover" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
