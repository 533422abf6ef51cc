"""Compare mode in a real browser: ``rollrec replay A B`` shows both robots on one timeline with
one env selector, both reward curves, and a per-env table of return differences whose rows
select the env. One server and one page for the module."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rollrec

from .conftest import chart, project, readout, replay_page, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    a = synthetic_walkers(d / "ckpt_a.npz", num_envs=16, steps=200, seed=0)
    b = synthetic_walkers(d / "ckpt_b.npz", num_envs=16, steps=200, seed=1, speed=1.4, fall_rate=0.01)
    return a, b


@pytest.fixture(scope="module")
def replay(chromium, files):
    with replay_page(chromium, *files) as (app, page):
        yield app, page


def test_both_robots_and_both_reward_curves(replay, files):
    app, page = replay
    assert page.get_by_text("Compare · A ckpt_a.npz · B ckpt_b.npz").is_visible()
    app.select_env(3)
    app.seek(50)
    wait_for(lambda: readout(page) == (50, 3), what="env 3 at frame 50")
    for node in ("/replay/a/base", "/replay/b/base"):
        p = wait_for(lambda node=node: project(page, node), what=node)
        assert p["visible"] and p["onCanvas"] and all(-1 < v < 1 for v in p["ndc"]), (node, p)
    c = wait_for(lambda: chart(page, "A total"), what="the reward chart")
    start, stop = app.state.plot_window()
    with rollrec.load(files[0]) as ra, rollrec.load(files[1]) as rb:
        series = dict(c["series"])
        np.testing.assert_allclose(series["A total"], ra["rew"][start:stop, 3], rtol=1e-6)
        np.testing.assert_allclose(series["B total"], rb["rew"][start:stop, 3], rtol=1e-6)
    text = page.inner_text("body")
    assert re.search(r"return A [\d.-]+ · B [\d.-]+", text)


def test_difference_table_selects_the_env(replay, files):
    app, page = replay
    page.get_by_role("tab", name="Compare").click()
    page.get_by_text(re.compile(r"B higher in \d+ of 16 envs")).wait_for()
    page.get_by_text(re.compile(r"rows 1-12 of 16")).last.wait_for()
    with rollrec.load(files[0]) as ra, rollrec.load(files[1]) as rb:
        delta = rb.total_rewards() - ra.total_rewards()
    worst = int(np.argmin(delta))  # the table starts sorted by B-A, largest drop first
    page.get_by_role("button", name=f"{delta[worst]:+.2f}", exact=True).click()
    wait_for(lambda: readout(page)[1] == worst, what=f"env {worst}")
    assert app.state.data_b.env == worst


def test_overlaid_layout_puts_b_on_a(replay):
    app, page = replay
    page.get_by_label("Layout", exact=True).click()
    page.get_by_role("option", name="overlaid", exact=True).click()
    wait_for(lambda: app.state.layout == "overlaid", what="overlaid layout")
    t = app.state.frame
    np.testing.assert_allclose(app.scene.robots[1].base.position, app.state.data_b.base_pos[t], rtol=1e-6)
    page.get_by_label("Layout", exact=True).click()
    page.get_by_role("option", name="side by side", exact=True).click()
    wait_for(lambda: app.state.layout == "side by side", what="side-by-side layout")
    np.testing.assert_allclose(app.scene.robots[1].base.position, app.state.data_b.base_pos[t] + app.state.offset_b,
                               rtol=1e-6)
