"""The camera panel in a real browser: the picture on the page is the recorded frame of the slider's
step for the selected env, as the slider is clicked, during playback, and after changing env.

Each env's camera frame at step t is one solid colour (`camera_colors`), so the pixel read back from
the page (the <img> drawn onto a canvas) says which frame the browser shows."""

from __future__ import annotations

import time

import numpy as np
import pytest

from .conftest import camera_colors, readout, replay_page, rerecord, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser
pytest.importorskip("av")
pytest.importorskip("zstandard")

#: JS: ``[width, [r, g, b], frame]`` of the camera picture (the page's blob: image) at 3/4 of its width
#: (the front camera's tile: depth is on the left) and the frame readout, read together; null before
#: the picture is loaded.
PIXEL_JS = """() => {
  const imgs = Array.from(document.querySelectorAll('img')).filter(i => i.src.startsWith('blob:'));
  const img = imgs[imgs.length - 1];
  if (!img || !img.complete || !img.naturalWidth || img.offsetParent === null) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(Math.floor(img.naturalWidth * 0.75), Math.floor(img.naturalHeight / 2), 1, 1).data;
  const m = document.body.innerText.match(/Frame (\\d+) \\//);
  return [img.naturalWidth, [px[0], px[1], px[2]], m ? parseInt(m[1]) : null];
}"""


@pytest.fixture(scope="module")
def replay(chromium, tmp_path_factory):
    d = tmp_path_factory.mktemp("browser_cameras")
    src = synthetic_walkers(d / "whole.npz", num_envs=6, steps=120)
    path = rerecord(src, d / "cams.npz", cameras=True, envs=[1, 4])
    with replay_page(chromium, path, env=1) as (app, page):
        yield app, page


def shown_color(page) -> np.ndarray | None:
    got = page.evaluate(PIXEL_JS)
    return None if got is None else np.array(got[1])


def shows_frame(page, frame: int, env: int) -> bool:
    got = shown_color(page)
    return got is not None and bool(np.abs(got.astype(int) - camera_colors(frame, [env])[0]).max() <= 4)


def click_slider(page, fraction: float) -> None:
    box = page.locator(".mantine-Slider-root").first.bounding_box()
    page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)


def test_the_camera_panel_tracks_the_slider(replay):
    app, page = replay
    app.pause()
    thumb = page.get_by_role("slider")
    seen = set()
    for fraction in (0.3, 0.8, 0.05, 0.55, 0.95):
        click_slider(page, fraction)
        # the click has landed once the readout follows the slider to where it was clicked (checking only that
        # readout and slider agree passed at once with the previous click's frame, before this one arrived)
        wait_for(lambda fraction=fraction: readout(page)[0] == int(thumb.get_attribute("aria-valuenow"))
                 and abs(readout(page)[0] - fraction * 119) <= 3, what="the readout to follow the click")
        frame, env = readout(page)
        assert env == 1 and abs(frame - fraction * 119) <= 3
        wait_for(lambda frame=frame: shows_frame(page, frame, 1), timeout=5,
                 what=f"the camera panel to show frame {frame} (shows {shown_color(page)})")
        seen.add(frame)
    assert len(seen) == 5


def test_the_camera_panel_plays_with_the_replay(replay):
    app, page = replay
    app.seek(0)
    app.set_speed(0.5)
    app.play()
    try:
        matched, samples = 0, 0
        end = time.monotonic() + 15
        while time.monotonic() < end and samples < 10:  # a picture being replaced reads as null: skipped
            got = page.evaluate(PIXEL_JS)
            if got is not None and got[2] is not None:
                samples += 1
                color, frame = np.array(got[1]), got[2]
                # the readout and the picture come in one message batch; the picture decodes a moment later
                matched += any(np.abs(color.astype(int) - camera_colors(f, [1])[0]).max() <= 4
                               for f in range(frame - 2, frame + 1))
            time.sleep(0.05)
    finally:
        app.pause()
        app.set_speed(1.0)
    assert samples >= 10 and matched >= samples - 1, (matched, samples)


def test_the_camera_panel_follows_the_env(replay):
    app, page = replay
    app.pause()
    app.seek(40)
    app.select_env(4)
    wait_for(lambda: readout(page) == (40, 4), what="env 4 at frame 40")
    wait_for(lambda: shows_frame(page, 40, 4), timeout=5, what="env 4's frame 40")
    app.select_env(2)  # not a detail env: no camera
    page.get_by_text("it keeps the frames of the detail envs only: 1, 4").first.wait_for()
    wait_for(lambda: page.evaluate(PIXEL_JS) is None, what="the picture hidden")
    app.select_env(1)
    wait_for(lambda: shows_frame(page, 40, 1), timeout=5, what="env 1's frame 40 again")
