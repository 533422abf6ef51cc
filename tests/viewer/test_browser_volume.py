"""Replay of format-v2 files in a real browser: a file with 2 detail envs (``envs=``) and one whose
terminated episodes were captured (``capture=``). What the file keeps is said at the top; the env
panel marks detail envs and steps to the next one; a light env plays its base pose (its links are
hidden, not drawn from NaN); the overview table marks the episodes with every field and jumps to one."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import rollrec
from rollrec.viewer import serve, stop_app

from .conftest import open_replay, project, readout, rerecord, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser_volume")
    src = synthetic_walkers(d / "whole.npz", num_envs=16, steps=240, fall_rate=0.006)
    return {"envs": rerecord(src, d / "envs.npz", envs=[3, 10]),
            "capture": rerecord(src, d / "capture.npz", capture="terminated", window=20)}


def _open(chromium, path):
    app = serve(path, port=0, block=False)
    page = open_replay(chromium, f"http://127.0.0.1:{app.server.get_port()}")
    return app, page


def _type_env(page, env: int) -> None:
    box = page.get_by_role("textbox", name="Env")
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(env), delay=20)
    wait_for(lambda: readout(page)[1] == env, what=f"env {env} selected")


def _links_shown(page) -> bool | None:
    p = project(page, "/replay/a/links/bones", "/replay/links/bones")
    return None if p is None else bool(p["visible"])


def test_detail_envs_are_marked_and_light_envs_play_their_base_pose(chromium, files):
    app, page = _open(chromium, files["envs"])
    try:
        page.get_by_text("Kept: every field for 2 of 16 envs (3, 10), light fields for the others").wait_for()
        page.get_by_text(re.compile(r"light fields only \(rew, done, .*\): not a detail env")).wait_for()  # env 0
        page.get_by_role("button", name="Detail ▶").click()
        wait_for(lambda: readout(page)[1] == 3, what="Detail ▶ to go to env 3")
        page.get_by_text("◆ detail env: every field").wait_for()
        wait_for(lambda: _links_shown(page) is True, what="env 3's links drawn")
        page.get_by_role("button", name="Detail ▶").click()
        wait_for(lambda: readout(page)[1] == 10, what="Detail ▶ to go to env 10")

        _type_env(page, 4)  # a light env: rewards, terms and the base pose, no links
        page.get_by_text(re.compile(r"not a detail env")).wait_for()
        wait_for(lambda: _links_shown(page) is False, what="env 4's links hidden")
        app.play()
        wait_for(lambda: readout(page)[0] >= 40, what="env 4 to play")
        app.pause()
        time.sleep(0.5)
        frame = readout(page)[0]
        with rollrec.load(files["envs"]) as r:
            want = np.asarray(r["base_pos"][frame, 4], np.float64)
        base = project(page, "/replay/a/base", "/replay/base")
        assert base is not None and base["visible"] and all(-1 < v < 1 for v in base["ndc"])
        np.testing.assert_allclose(app.scene.robots[0].base.position, want, atol=1e-5)
        assert "total" in page.inner_text("body")  # the reward readout of a light env
    finally:
        page.close()
        stop_app(app)


def test_overview_marks_captured_episodes_and_jumps_to_one(chromium, files):
    app, page = _open(chromium, files["capture"])
    try:
        page.get_by_text(re.compile(r"Kept: every field for the last 20 steps of \d+ of \d+ episodes "
                                    r"\(capture: terminated\)")).wait_for()
        page.get_by_role("tab", name="Overview").click()
        page.get_by_text(re.compile(r"rows 1-12 of [\d,]+")).first.wait_for()
        page.get_by_role("button", name="Detail", exact=True).click()  # ascending: light first
        page.get_by_role("button", name="Detail ▲").click()  # descending: captured first
        page.get_by_role("button", name="Detail ▼").wait_for()
        ov = app.wait_overview(30)
        with rollrec.load(files["capture"]) as r:
            captured = [e for e in r.episodes() if e["captured"]]
        assert int(ov.detail.sum()) == len(captured) > 0
        assert page.get_by_role("button", name="every field", exact=True).count() == 12  # a full page of them
        page.get_by_role("button", name="every field", exact=True).first.click()
        wait_for(lambda: any(readout(page) == (int(s), int(e)) for e, s in zip(ov.env[ov.detail], ov.start[ov.detail])),
                 what="a captured episode's first frame")
        env = readout(page)[1]
        ep = next(e for e in captured if e["env"] == env and e["start"] == readout(page)[0])
        app.pause()  # playing on would leave the window a step later, before the links can be seen drawn
        app.seek(ep["stop"] - 1)  # its last step: inside its window
        page.get_by_text(re.compile(r"◆ every field \(captured episode, frames \d+-\d+\)")).wait_for()
        wait_for(lambda: _links_shown(page) is True, what="the captured window's links drawn")
    finally:
        page.close()
        stop_app(app)
