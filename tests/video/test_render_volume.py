"""Videos of format-v2 files: a detail env is drawn whole, a light env shows its base pose (and the
command says what is missing), captured windows show the links only inside them, and ``every=k``
files play at their own pace (fps = 1 / (k dt))."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs.walker import GaitPolicy, WalkerEnv
from rollrec.video import default_fps
from rollrec.video.draw import BASE_COLOR, LINK_COLOR
from rollrec.video.scene import missing_note, scenes_for


def _record(path, **options):
    env = WalkerEnv(4, seed=0, max_episode_steps=30)
    return RolloutRecorder(env, max_steps=80, progress=False, **options).run(GaitPolicy(), path.parent,
                                                                              filename=path.name)


def _pixels(frame: np.ndarray, color) -> int:
    return int((np.abs(frame.astype(int) - np.array(color)) <= 2).all(-1).sum())


def _frame(r, env: int, t: int) -> np.ndarray:
    scene, = scenes_for(r, [env], "follow", style="sticks")
    return scene.frame(t, (320, 240), overlay=False)


@pytest.mark.slow
def test_detail_env_is_drawn_whole_and_a_light_env_as_its_base(tmp_path, capsys):
    path = _record(tmp_path / "detail.npz", envs=[1])
    with rollrec.load(path) as r:
        detail, light = _frame(r, 1, 20), _frame(r, 2, 20)
        assert _pixels(detail, LINK_COLOR) > 50  # the skeleton
        assert _pixels(light, LINK_COLOR) == 0  # no links kept for env 2: none drawn
        assert _pixels(light, BASE_COLOR) > 5  # its base is
        assert missing_note(r, 1) is None
        assert missing_note(r, 2) == ("env 2 is not a detail env of detail.npz: its link poses were not kept "
                                      "(drawn: base pose, trail, rewards; detail envs: 1)")
    out = tmp_path / "light.mp4"
    assert main(["video", str(path), "--env", "2", "--size", "160x120", "-o", str(out), "--quiet"]) == 0
    assert "rollrec video: env 2 is not a detail env of detail.npz" in capsys.readouterr().err
    with imageio.get_reader(str(out)) as reader:
        assert reader.count_frames() == 80


@pytest.mark.slow
def test_captured_windows_show_links_inside_them_only(tmp_path):
    path = _record(tmp_path / "capture.npz", capture=lambda ends: ends.done, window=10)  # every episode that ends
    with rollrec.load(path) as r:
        e = next(e for e in r.episodes() if e["captured"] and e["window_start"] > e["start"])
        env = e["env"]
        assert _pixels(_frame(r, env, e["stop"] - 1), LINK_COLOR) > 50
        assert _pixels(_frame(r, env, e["window_start"] - 1), LINK_COLOR) == 0
        assert missing_note(r, env).startswith(f"env {env}: link poses kept in its captured episodes' windows only")


@pytest.mark.slow
def test_every_k_file_plays_at_its_own_pace(tmp_path):
    path = _record(tmp_path / "every.npz", every=4)
    out = tmp_path / "every.mp4"
    assert main(["video", str(path), "--env", "0", "--size", "160x120", "-o", str(out), "--quiet"]) == 0
    with rollrec.load(path) as r, imageio.get_reader(str(out)) as reader:
        assert r.dt == pytest.approx(4 * WalkerEnv(1).dt)
        assert reader.count_frames() == r.T == 20
        assert reader.get_meta_data()["fps"] == pytest.approx(1 / r.dt)  # 12.5 at dt 0.02: real time, not 12
    assert default_fps(0.08) == 12.5 and default_fps(1 / 30) == 30.0 and default_fps(0.02) == 50.0
