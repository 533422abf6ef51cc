"""Issue 28's viewer bugs that need a real browser: a key pressed on the focused frame slider
acts once (the slider's own arrow handling and the page's hotkey both moved the frame), and at
1366x768 the 3D view gets most of the window's width (it had 458 px, 33%)."""

from __future__ import annotations

import time

import pytest

from .conftest import open_replay, readout, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser

#: JS: the 3D canvas's left edge and width, and the window's width (CSS pixels).
CANVAS_JS = """() => { const r = window.__viserMutable.canvas.getBoundingClientRect();
  return {left: r.left, width: r.width, window: window.innerWidth}; }"""


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    from rollrec.viewer import serve, stop_app

    path = synthetic_walkers(tmp_path_factory.mktemp("controls") / "walkers.npz", num_envs=8, steps=300)
    app = serve(path, port=0, block=False)
    try:
        yield app, f"http://127.0.0.1:{app.server.get_port()}"
    finally:
        stop_app(app)


def _settled(page, app, frame: int) -> None:
    """Wait until the page and the app show ``frame`` and nothing else arrives for a moment."""
    wait_for(lambda: readout(page)[0] == frame and app.state.frame == frame, what=f"frame {frame}")
    time.sleep(0.6)  # a second move (the double step) would land within this
    assert (readout(page)[0], app.state.frame) == (frame, frame)


def test_one_arrow_press_on_the_focused_slider_is_one_frame(chromium, replay):
    app, url = replay
    page = open_replay(chromium, url)
    try:
        app.pause()
        app.seek(50)
        wait_for(lambda: readout(page)[0] == 50, what="frame 50")
        page.get_by_role("slider").first.focus()
        page.keyboard.press("ArrowRight")
        _settled(page, app, 51)
        page.keyboard.press("ArrowRight")
        _settled(page, app, 52)
        page.keyboard.press("ArrowLeft")
        _settled(page, app, 51)
        speed = app.state.clock.speed
        page.keyboard.press("ArrowUp")  # faster: the hotkey's job; the slider must not move a frame as well
        wait_for(lambda: app.state.clock.speed > speed, what="a faster speed")
        _settled(page, app, 51)
        page.keyboard.press("Home")
        _settled(page, app, 0)
        # the same presses with the 3D view focused (no slider involved): one frame each as before
        box = page.locator("canvas").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 40)
        page.keyboard.press("ArrowRight")
        _settled(page, app, 1)
        # dragging the slider still seeks wherever it is dropped
        app.seek(120)
        _settled(page, app, 120)
    finally:
        page.close()


@pytest.mark.parametrize("size", [(1366, 768), (1600, 1000)])
def test_the_3d_view_gets_most_of_the_window(chromium, replay, size):
    _, url = replay
    page = open_replay(chromium, url, width=size[0], height=size[1])
    try:
        def canvas():
            return page.evaluate(CANVAS_JS)

        time.sleep(1.0)  # let the panels take their places
        c = canvas()
        assert c["window"] == size[0]
        assert c["width"] >= 0.6 * size[0], f"the 3D view is {c['width']:.0f} of {size[0]} px"
        # the controls stay reachable: the frame readout, the Overview and Plots tabs
        page.get_by_role("tab", name="Plots").click()
        page.get_by_label("Field", exact=True).wait_for()
        page.get_by_role("tab", name="Overview").click()
    finally:
        page.close()


#: JS: the chart with a series labelled ``label`` scrolled into its panel's view: its box and the box of
#: the panel's scrolled area (what the page shows of the panel).
CHART_BOX_JS = """(label) => {
  for (const tp of Object.values(window.__viserTestpoints?.uplots || {})) {
    const c = tp.chart;
    if (!c.series.some(s => s.label === label)) continue;
    c.root.scrollIntoView({block: 'end'});
    let p = c.root.parentElement;
    while (p && !/(auto|scroll)/.test(getComputedStyle(p).overflowY)) p = p.parentElement;
    const r = c.root.getBoundingClientRect(), v = (p || document.documentElement).getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, height: r.height, shownTop: Math.max(v.top, 0),
            shownBottom: Math.min(v.bottom, window.innerHeight)};
  }
  return null;
}"""


@pytest.mark.parametrize("size", [(1366, 768), (1600, 1000)])
def test_the_reward_chart_can_be_seen_whole(chromium, replay, size):
    """Issue 28: the reward chart was cut (taller than what its panel shows of it)."""
    _, url = replay
    page = open_replay(chromium, url, width=size[0], height=size[1])
    try:
        page.locator(".u-legend").first.wait_for()
        box = wait_for(lambda: page.evaluate(CHART_BOX_JS, "total"), what="the reward chart")
        time.sleep(0.5)  # scrolled: measure again
        box = page.evaluate(CHART_BOX_JS, "total")
        assert box["height"] > 150, box
        assert box["top"] >= box["shownTop"] - 1 and box["bottom"] <= box["shownBottom"] + 1, box
    finally:
        page.close()
