"""The app through its Python API, on a real viser server but no browser: pushes, env switching,
camera follow, and the command line's errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

import rollrec
from rollrec.cli import main as rollrec_main
from rollrec.viewer import serve, stop_app

from .conftest import local_app, wait_for


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def app(walker_file):
    now = FakeTime()
    with local_app(walker_file, now=now) as app:
        app.now = now  # type: ignore[attr-defined]
        yield app


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


def test_env_box_shows_the_env_selected_and_counts_from_the_end(app):
    """Issue 28: typing 999999 on a 64-env file selected env 63 but the box showed 639 (the 63 written
    back while typing, then the next digit); -1 selected env 0 where the CLI and the API take the last env."""
    n = app.state.num_envs
    box = app.gui.env
    box.value = 3
    assert app.state.env == 3 and box.value == 3
    box.value = -1  # the last env, as `rollrec replay --env -1` and `ReplayApp.select_env(-1)`
    assert app.state.env == n - 1
    assert box.value == -1  # not rewritten while a number may still be being typed ...
    wait_for(lambda: box.value == n - 1, timeout=5, what="the box to show the env selected")  # ... then shown
    box.value = -2
    assert app.state.env == n - 2
    box.value = 79  # "7", then "9": beyond the end, the last env; the box must not keep 79
    assert app.state.env == n - 1
    wait_for(lambda: box.value == n - 1, timeout=5, what="the box to show the last env")
    box.value = 799  # another digit on an env already selected: the box still shows the env
    assert app.state.env == n - 1
    wait_for(lambda: box.value == n - 1, timeout=5, what="the box to show the last env again")
    box.value = -1000  # before the first env: the first
    assert app.state.env == 0
    wait_for(lambda: box.value == 0, timeout=5, what="the box to show env 0")


def test_trail_draws_the_episode_shown_unless_asked_for_all(app):
    """Issue 28: the trail drew every episode of the env (a tangle of 4-6 episodes on Ant)."""
    s = app.state
    bounds = s.rollout.episode_bounds(s.env)
    assert len(bounds) >= 3
    robot = app.scene.robots[0]
    for e in (1, 2, 0):
        start, stop = (int(x) for x in bounds[e])
        app.seek(start + 5)
        seg = robot.trail.points
        assert seg.shape == (stop - start - 1, 2, 3)
        np.testing.assert_allclose(seg[:, 0], s.data.base_pos[start : stop - 1], rtol=1e-6)
        np.testing.assert_allclose(seg[:, 1], s.data.base_pos[start + 1 : stop], rtol=1e-6)
    app.set_trail_all_episodes(True)
    assert app.gui.trail_all.value is True
    assert robot.trail.points.shape == (s.num_frames - 1 - (len(bounds) - 1), 2, 3)  # every episode, no reset jumps
    app.gui.trail_all.value = False  # the checkbox
    start, stop = (int(x) for x in bounds[0])
    assert robot.trail.points.shape == (stop - start - 1, 2, 3)


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
    assert app.gui.episode_text.content.startswith(f"Episode 2 / {len(bounds)} · step 0 /")  # counted from 0, as frames are


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


# ---- overview, fields, compare through the app ---------------------------------------------------
def test_overview_is_computed_in_the_background_and_jumps(app, walker_file):
    ov = app.wait_overview(30)
    assert ov is not None and app.state.overview is ov
    assert app.overview_tab.table is not None and len(app.overview_tab.table.model) == len(ov)
    row = int(np.argmin(ov.ret))
    app.select_episode(int(ov.env[row]), int(ov.start[row]))
    assert (app.state.env, app.state.frame) == (ov.env[row], ov.start[row])
    assert app.gui.frame.value == ov.start[row]
    np.testing.assert_allclose(app.state.env_totals(), ov.env_totals)


def test_overview_table_click_and_filter(app):
    ov = app.wait_overview(30)
    table = app.overview_tab.table
    table._sort("Return")  # what a click on the header does
    table._sort("Return ▲")
    assert table.header.options[2] == "Return ▼"
    table._click(0)  # what a click on the first row does
    best = int(np.argmax(ov.ret))
    assert (app.state.env, app.state.frame) == (ov.env[best], ov.start[best])
    assert table.rows[0].label == "▶ 1"
    app.overview_tab.filter.value = "3"
    app.overview_tab._apply_filter()
    assert {int(ov.env[r]) for r in table.shown_rows()} == {3}
    app.overview_tab.filter.value = "4-1"
    app.overview_tab._apply_filter()
    assert "env range 4-1 is reversed" in app.overview_tab.filter_note.content


def test_plots_tab_and_charts_read_as_they_should(app):
    """Issue 28's plot bugs seen through the GUI objects: the Field list has no tooltip (it covered the
    tab bar), a chart has one "now" entry in its legend (one per curve before), the returns
    histogram's count axis ticks whole numbers only."""
    assert app.fields_tab.field.hint is None
    assert "link" in app.fields_tab.note.content  # the note says how to search instead
    app.seek(30)
    app.add_field("obs[7]")
    app.add_field("obs[8]")
    app.add_field(app.fields_tab.field.options[-1])  # an option as the list offers it
    labels = [s["label"] for s in app.fields_tab.plot.handle.series]
    assert labels.count("now") == 1 and len(labels) == 1 + 3 + 1  # step, three fields, one marker
    assert [s["label"] for s in app.gui.plot.handle.series].count("now") == 1
    assert app.wait_overview(30) is not None
    incrs = app.overview_tab.histogram.handle.axes[1]["incrs"]
    assert incrs[0] == 1 and all(float(x).is_integer() for x in incrs)


def test_overview_filter_words_and_a_filter_that_matches_nothing(app):
    """Issue 28: "Ended by" offered "termination" where the table says "terminated"; a filter that
    could not be read (``terminated`` was one) said so but kept the previous filter's rows."""
    from rollrec.viewer.overview.table import END_LABELS

    ov = app.wait_overview(30)
    tab = app.overview_tab
    assert tab.ended.options == ("any", *END_LABELS) and "terminated" in tab.ended.options
    tab.filter.value = "3"
    assert {int(ov.env[r]) for r in tab.table.model.order()} == {3}
    tab.filter.value = "3 terminated"
    assert tab.filter_note.content == ""
    assert set(tab.table.model.order().tolist()) == set(np.flatnonzero((ov.env == 3) & (ov.ended == 1)).tolist())
    tab.filter.value = "nosuchterm"  # cannot be read: says why and shows no rows, not the last filter's
    assert "no reward term matches" in tab.filter_note.content and "no rows shown" in tab.filter_note.content
    assert tab.table.model.order().tolist() == [] and tab.table.shown_rows() == []
    assert tab.table.status.content == "no rows match"
    tab.filter.value = ""
    tab.ended.value = "terminated"
    assert set(tab.table.model.order().tolist()) == set(np.flatnonzero(ov.ended == 1).tolist())


def test_add_a_field_plots_it_for_the_selected_env(app, walker_file):
    app.seek(30)
    app.add_field("obs[7]")
    x, y, marker = app.fields_tab.plot.handle.data
    with rollrec.load(walker_file) as r:
        np.testing.assert_allclose(y, r["obs"][int(x[0]) : int(x[-1]) + 1, 0, 7], rtol=1e-6)
        app.select_env(5)
        x5, y5, _ = app.fields_tab.plot.handle.data  # env 5's episode around frame 30
        np.testing.assert_allclose(y5, r["obs"][int(x5[0]) : int(x5[-1]) + 1, 5, 7], rtol=1e-6)
    assert np.flatnonzero(np.isfinite(marker)).tolist() == [30 - int(x[0])]
    with pytest.raises(KeyError, match="no field called 'obs\\[999\\]'"):
        app.add_field("obs[999]")


def test_serve_env_minus_one_is_the_last_env(walker_file):
    app = serve(walker_file, port=0, env=-1, block=False)
    try:
        assert app.state.env == 7
    finally:
        stop_app(app)


def test_compare_app_draws_two_robots_and_a_difference_table(walker_file, walker_file_b):
    app = serve(walker_file, walker_file_b, port=0, env=2, block=False)
    try:
        assert len(app.scene.robots) == 2 and app.compare_tab is not None
        app.seek(20)
        np.testing.assert_allclose(app.scene.robots[1].base.position,
                                   app.state.data_b.base_pos[20] + app.state.offset_b, rtol=1e-6)
        x, _, b_total, *_ = app.gui.plot.handle.data
        with rollrec.load(walker_file_b) as b:
            np.testing.assert_allclose(b_total, b["rew"][int(x[0]) : int(x[-1]) + 1, 2])
        app.wait_overview(30)
        table = app.compare_tab.table
        assert table is not None and table.model.sort_by == "B−A"
        table._click(0)
        assert app.state.env == int(np.argmin(app.compare_tab.differences.delta))
    finally:
        stop_app(app)
