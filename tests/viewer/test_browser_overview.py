"""The overview, the follow camera and the ghosts in a real browser: the table sorts, filters and
jumps to an episode when a row is clicked; after 4 s of play the robot is still in view, not
behind a panel; ghosts are on, with their switch in sight. One server and one page for the module."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rollrec
from rollrec.viewer import compute_overview

from .conftest import chart, labelled_input, project, readout, replay_page, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def walkers(tmp_path_factory):
    """64 envs x 300 steps, episodes up to 250 steps (5 s), some envs falling often."""
    return synthetic_walkers(tmp_path_factory.mktemp("overview") / "walkers.npz", num_envs=64, steps=300,
                             max_episode_steps=250, fall_rate=0.01)


@pytest.fixture(scope="module")
def overview(walkers):
    with rollrec.load(walkers) as r:
        return compute_overview(r)


@pytest.fixture(scope="module")
def replay(chromium, walkers):
    with replay_page(chromium, walkers) as (app, page):
        page.get_by_text(re.compile(r"rows 1-12 of [\d,]+")).first.wait_for()  # the table is filled
        yield app, page


def test_histogram_counts_every_episode(replay, overview):
    _app, page = replay
    assert page.get_by_text(f"{overview.num_envs} envs · {len(overview)} episodes").is_visible()
    c = wait_for(lambda: chart(page, "episodes"), what="the histogram")
    counts = np.asarray(c["y"][1::3])  # three points per bin: its left edge, centre, right edge
    assert counts.sum() == len(overview)


def test_sort_by_return_and_click_a_row_jumps_there(replay, overview):
    app, page = replay
    page.get_by_role("tab", name="Overview").click()
    page.get_by_role("button", name="Return", exact=True).click()  # ascending
    page.get_by_role("button", name="Return ▲").click()  # descending
    page.get_by_role("button", name="Return ▼").wait_for()
    best = int(np.argmax(overview.ret))
    cell = page.get_by_role("button", name=f"{overview.ret[best]:+.2f}", exact=True)
    cell.click()
    env, start = int(overview.env[best]), int(overview.start[best])
    wait_for(lambda: readout(page) == (start, env), what=f"env {env} at frame {start}")
    assert app.state.env == env
    assert page.get_by_text(re.compile(r"^▶ 1$")).is_visible()  # the row of the shown episode is marked
    page.get_by_role("button", name="Return ▼").click()  # back to ascending for the next test
    # the histogram marks the shown episode
    marker = dict(chart(page, "episodes")["series"])["this episode"]
    assert sum(v is not None for v in marker) == 1


def test_filter_by_env_range_and_how_episodes_ended(replay, overview):
    _app, page = replay
    labelled_input(page, "Filter").fill("5-6")
    wanted = int(np.isin(overview.env, [5, 6]).sum())
    page.get_by_text(re.compile(rf"rows 1-{min(12, wanted)} of {wanted} ·")).wait_for()
    page.get_by_label("Ended by", exact=True).click()
    page.get_by_role("option", name="time-out", exact=True).click()
    wanted = int((np.isin(overview.env, [5, 6]) & (overview.ended == 2)).sum())
    page.get_by_text(re.compile(rf"(rows 1-{min(12, wanted)} of {wanted} ·|no rows match)")).wait_for()
    labelled_input(page, "Filter").fill("9-2")
    page.get_by_text("env range 9-2 is reversed; write 2-9").wait_for()
    labelled_input(page, "Filter").fill("")
    page.get_by_label("Ended by", exact=True).click()
    page.get_by_role("option", name="any", exact=True).click()
    page.get_by_text(re.compile(rf"rows 1-12 of {len(overview)} ·")).wait_for()


def test_follow_camera_keeps_the_robot_in_view_while_it_walks(replay, walkers):
    """Play 4 s from the start of a long episode of a fast walker: the base projects into the 3D
    view, on the canvas (no panel over it), near the centre."""
    app, page = replay
    with rollrec.load(walkers) as r:
        long = [(k, b) for k in range(r.N) for b in r.episode_bounds(k) if b[1] - b[0] >= 230]
        env, (start, _) = max(long, key=lambda kb: float(r["obs"][0, kb[0], 0]))  # obs[0] is the speed
        walked = float(np.linalg.norm(r["base_pos"][start + 200, env] - r["base_pos"][start, env]))
    assert walked > 3.0  # the robot really goes somewhere in those 4 s
    app.select_env(int(env))
    app.seek(int(start))
    app.play()
    wait_for(lambda: app.state.frame - start >= 190, timeout=60, what="4 s of playback")  # 200 frames of 0.02 s
    app.pause()
    frame = app.state.frame
    wait_for(lambda: readout(page)[0] == frame, what="the paused frame (and its camera move) on the page")
    assert 150 <= frame - start < 230, f"played {frame - start} frames"
    p = project(page, "/replay/a/base", "/replay/base")
    assert p is not None
    assert all(-1 < v < 1 for v in p["ndc"]), f"base out of the view: {p}"
    assert p["onCanvas"], f"base at ({p['x']:.0f}, {p['y']:.0f}) is under a panel, not on the 3D view"
    assert abs(p["ndc"][0]) < 0.3 and abs(p["ndc"][1]) < 0.3, f"base far from the centre: {p}"


def test_ghosts_are_on_and_their_switch_is_in_sight(replay):
    _app, page = replay
    switch = page.get_by_label(re.compile(r"^Ghosts"))
    assert switch.is_visible() and switch.is_checked()
    g = project(page, "/replay/ghosts")
    assert g is not None and g["visible"]
    switch.uncheck()
    wait_for(lambda: not project(page, "/replay/ghosts")["visible"], what="ghosts hidden")
    switch.check()
    wait_for(lambda: project(page, "/replay/ghosts")["visible"], what="ghosts shown")
