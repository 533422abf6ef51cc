"""Plots in a real browser: the reward plot never goes blank (typing env numbers while paused,
4x playback of short episodes: both blanked it before), and any obs dimension can be plotted
by name, with the current-frame marker. One server and one page for the module."""

from __future__ import annotations

import time

import numpy as np
import pytest

import rollrec

from .conftest import chart, chart_shows_its_data, readout, replay_page, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def walkers(tmp_path_factory):
    """16 envs x 300 steps; some envs fall every few dozen steps (short episodes)."""
    return synthetic_walkers(tmp_path_factory.mktemp("plots") / "walkers.npz", num_envs=16, steps=300, fall_rate=0.04)


@pytest.fixture(scope="module")
def replay(chromium, walkers):
    with replay_page(chromium, walkers) as (app, page):
        yield app, page


def test_reward_plot_stays_drawn_after_typing_env_numbers_while_paused(replay, walkers):
    """Seek somewhere, type an env number: before the fix the plot's x range drifted away from its
    data within a few of these (e.g. -733 to -730 for steps 136-195) and never came back."""
    app, page = replay
    app.pause()
    box = page.get_by_role("textbox", name="Env")
    with rollrec.load(walkers) as r:
        frames = (r.T - 3, r.T // 2, 40, 220, r.T - 3, 150, 10, 260, 90, r.T - 2, 180, 5)
        for frame, env in zip(frames, (12, 13, 15, 10, 11, 14, 12, 13, 10, 15, 11, 14)):
            app.seek(frame)
            time.sleep(0.3)  # let the page draw the seek before typing
            box.click()
            page.keyboard.press("Control+A")
            page.keyboard.type(str(env), delay=20)  # one digit at a time, as a user types
            wait_for(lambda env=env: readout(page)[1] == env, what=f"env {env} selected")
            wait_for(lambda: chart_shows_its_data(chart(page, "total")), timeout=3,
                     what=f"the reward plot to show its data after typing env {env} at frame {frame}")
            c = chart(page, "total")
            (start, stop), = [b for b in r.episode_bounds(env) if b[0] <= frame < b[1]]
            assert (c["x"][0], c["x"][-1]) == (start, stop - 1)  # the episode of the frame


def test_reward_plot_stays_drawn_during_4x_playback_of_short_episodes(replay, walkers):
    app, page = replay
    with rollrec.load(walkers) as r:
        env = max(range(r.N), key=lambda k: len(r.episode_bounds(k)))  # the most (so shortest) episodes
    app.select_env(env)
    app.seek(0)
    app.set_speed(4.0)
    app.play()
    try:
        samples, blank = 0, []
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            c = chart(page, "total")
            samples += 1
            if not chart_shows_its_data(c):
                blank.append((c or {}).get("min"))
            time.sleep(0.1)
    finally:
        app.pause()
        app.set_speed(1.0)
    wait_for(lambda: chart_shows_its_data(chart(page, "total")), timeout=4, what="reward plot drawn after pausing")
    assert len(blank) <= 1, f"reward plot blank in {len(blank)} of {samples} samples during playback"


def test_plot_an_obs_dimension_by_name(replay, walkers):
    app, page = replay
    app.select_env(4)
    app.seek(100)
    page.get_by_role("tab", name="Plots").click()
    field = page.get_by_label("Field", exact=True)
    field.click()
    field.fill("joint_pos[2]")
    page.get_by_role("option", name="joint_pos[2] · obs", exact=True).click()  # offered with its group (issue 28)
    page.get_by_role("button", name="Add to plot").click()
    c = wait_for(lambda: chart(page, "joint_pos[2]"), what="a chart of joint_pos[2]")
    assert chart_shows_its_data(c)
    start, stop = app.state.plot_window()
    with rollrec.load(walkers) as r:
        expected = np.asarray(r["obs"][start:stop, 4, 5], np.float64)  # joint_pos is obs[3:7]
    assert c["x"] == list(range(start, stop))
    np.testing.assert_allclose(c["y"], expected, rtol=1e-6)
    marker = dict(c["series"])["now"]
    assert [i for i, v in enumerate(marker) if v is not None] == [100 - start]
    # the marker follows the frame
    app.step(1)
    wait_for(lambda: [i for i, v in enumerate(dict(chart(page, "joint_pos[2]")["series"])["now"]) if v is not None]
             == [101 - start], what="the marker to move one step")


def test_typing_link_in_the_field_list_offers_the_link_heights(replay, walkers):
    """Issue 28: "link" found nothing though the list promised link heights."""
    _app, page = replay
    page.get_by_role("tab", name="Plots").click()
    field = page.get_by_label("Field", exact=True)
    field.click()
    field.fill("link")
    with rollrec.load(walkers) as r:
        names = r.link_names
    page.get_by_role("option", name=f"{names[0]} height · link height", exact=True).wait_for()
    assert page.get_by_role("option").count() == len(names)
    page.keyboard.press("Escape")
