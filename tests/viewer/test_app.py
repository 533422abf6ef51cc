"""The app through its Python API, on a real viser server but no browser: pushes, env switching,
camera follow, and the command line's errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
import viser

import rollrec
from rollrec.cli import main as rollrec_main
from rollrec.viewer import ReplayApp, serve, stop_app


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def app(walker_file):
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    rollout = rollrec.load(walker_file)
    now = FakeTime()
    app = ReplayApp(rollout, server, now=now)
    app.now = now  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        app.close()
        server.stop()
        rollout.close()


def test_paused_app_pushes_nothing(app):
    before = app.pushes
    for _ in range(10):
        app.now.t += 0.5
        assert app.tick() is False
    assert app.pushes == before


def test_playing_pushes_each_new_frame_in_real_time(app):
    app.play()
    before = app.pushes
    app.now.t += 0.1  # 5 frames at dt 0.02
    assert app.tick() is True
    assert app.state.frame == 5
    assert app.gui.frame.value == 5
    assert app.gui.frame_text.content.startswith("**Frame 5 / 199")
    assert app.pushes == before + 1
    assert app.tick() is False  # same instant: nothing new to push


def test_readouts_follow_frame_and_env(app, walker_file):
    app.seek(40)
    text = app.gui.rewards_text.content
    with rollrec.load(walker_file) as r:
        assert f"{float(r['rew'][40, 0]):+.3f}" in text
        app.select_env(6)
        assert app.gui.env.value == 6
        assert f"{float(r['rew'][40, 6]):+.3f}" in app.gui.rewards_text.content
    assert "env 6 / 7" in app.gui.frame_text.content
    x, *series = app.gui.plot.handle.data
    assert x[0] <= 40 <= x[-1]
    np.testing.assert_allclose(series[-2], app.state.data.rew[int(x[0]) : int(x[-1]) + 1])  # total
    marker = series[-1]  # the current frame: the total at frame 40, NaN elsewhere
    assert np.flatnonzero(np.isfinite(marker)).tolist() == [40 - x[0]]
    assert marker[40 - int(x[0])] == series[-2][40 - int(x[0])]


def test_slider_echo_does_not_restart_the_clock(app):
    app.play()
    app.now.t += 0.05  # 2.5 frames: half a frame of progress must survive the GUI echo
    app.tick()
    assert app.state.frame == 2
    app.now.t += 0.011
    app.tick()
    assert app.state.frame == 3


def test_best_worst_and_episode_buttons(app):
    app.best_env()
    assert app.state.env == app.state.best_env()
    app.worst_env()
    assert app.state.env == app.state.worst_env()
    bounds = app.state.rollout.episode_bounds(app.state.env)
    app.jump_episode(1)
    assert app.state.frame == bounds[1, 0]
    assert app.gui.episode_text.content.startswith(f"Episode 2 / {len(bounds)} · step 1 /")


def test_speed_and_loop_controls(app):
    app.change_speed(+1)
    assert app.state.clock.speed == 2.0 and app.gui.speed.value == "2x"
    app.set_speed(0.1)
    app.change_speed(-1)
    assert app.state.clock.speed == 0.1
    app.set_loop(False)
    assert app.gui.loop.value is False and app.state.clock.loop is False


def test_follow_camera_moves_with_base_until_another_preset(app):
    app.set_camera("follow")
    app.play()
    app.now.t += 1.0
    app.tick()
    look = np.asarray(app.server.initial_camera.look_at)
    np.testing.assert_allclose(look, app.state.data.base_pos[app.state.frame], rtol=1e-5)
    app.set_camera("top")
    app.now.t += 1.0
    app.tick()
    np.testing.assert_allclose(app.server.initial_camera.look_at, look, rtol=1e-6)  # stays put
    assert app.gui.camera_text.content.startswith("Camera: top")


def test_ghosts_show_every_other_env(app, walker_file):
    assert app.scene.show_ghosts and app.gui.ghosts.value  # on by default
    app.seek(10)
    handle = app.scene.ghosts.handle
    assert handle is not None and handle.opacity < 1
    np.testing.assert_array_equal(app.scene.ghosts.envs, np.arange(1, app.state.num_envs))  # not the selected env
    with rollrec.load(walker_file) as r:
        np.testing.assert_allclose(handle.batched_positions, r["base_pos"][10, 1:])
    app.set_ghosts(False)
    assert not handle.visible


def test_serve_non_blocking_and_stop(walker_file, capsys):
    app = serve(walker_file, port=0, env=2, block=False)
    try:
        assert app.state.env == 2
        assert "http://127.0.0.1:" in capsys.readouterr().out
    finally:
        stop_app(app)


# ---- bad input: one line, exit 1, no server left ---------------------------------------------
def _cli_error(capsys, *argv: str) -> str:
    assert rollrec_main(["replay", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_missing_file(tmp_path, capsys):
    assert "no such file" in _cli_error(capsys, str(tmp_path / "nope.npz"))


def test_corrupt_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    assert "not a zip" in _cli_error(capsys, str(bad))


def test_env_out_of_range(walker_file, capsys):
    assert "env 8 out of range" in _cli_error(capsys, str(walker_file), "--env", "8", "--port", "0")


def test_busy_port(walker_file, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"127.0.0.1:{port}" in _cli_error(capsys, str(walker_file), "--port", str(port))


def test_legacy_needs_allow_pickle(legacy_file, capsys):
    assert "--allow-pickle" in _cli_error(capsys, str(legacy_file))


def test_python_m_viewer_spelling_reports_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "rollrec.viewer", "--npz", str(tmp_path / "nope.npz")],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().endswith("no such file") and "Traceback" not in out.stderr


def test_legacy_file_serves_with_allow_pickle(legacy_file):
    app = serve(legacy_file, port=0, allow_pickle=True, block=False)
    try:
        assert app.state.rollout.terms_are_env_means
        assert "means over all envs" in app.gui.legacy_note.content
        assert "(env means)" in app.gui.plot.handle.title
    finally:
        stop_app(app)


def test_non_loopback_host_warns(walker_file, capsys):
    app = serve(walker_file, host="0.0.0.0", port=0, block=False)
    try:
        assert "not loopback" in capsys.readouterr().err
    finally:
        stop_app(app)


def test_loopback_host_does_not_warn(walker_file, capsys):
    app = serve(walker_file, port=0, block=False)
    try:
        assert "warning" not in capsys.readouterr().err
    finally:
        stop_app(app)
