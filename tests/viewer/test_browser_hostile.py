"""Nothing from a file or from another client runs as script in a viewer's page (headless Chromium).

viser renders markdown with raw HTML unsanitised, and passes on any value a client sends. Here a
rollout whose env name, reward-term names, obs names and file name carry script (an ``<iframe
srcdoc>`` with a ``<script>``, ``<img onerror>``) is replayed, alone and compared with another:
every string shows as its text, and no script runs (no global set, the title unchanged, no such
element in the page). Then a hostile websocket client sends values no control offers (the
"Ended by" dropdown, Speed, a sort header, the Field dropdown, the Filter text): nothing acts on
them, nothing is echoed as markup into the other viewers' pages, and the replay keeps working.
"""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
import viser

import rollrec

from .conftest import labelled_input, readout, replay_page, synthetic_walkers, wait_for

pytestmark = pytest.mark.browser

PWN = "document.title='pwned';window.__pwned=(window.__pwned||0)+1"
SCRIPTS = {
    "env_name": f'walker<iframe srcdoc="<script>parent.{PWN.replace(chr(39), "&#39;")}</script>"></iframe>',
    "term": f'fwd<img src=x onerror="{PWN}">',
    "obs": f'vel<img src=x onerror="{PWN}">',
    "file": "run<img src=x onerror=\"window.__pwned=7\">",
    "client": f'<img src=x onerror="{PWN}">',
}
#: JS: whether any hostile markup got into the page or ran.
RAN_JS = """() => ({title: document.title, pwned: window.__pwned || 0,
                   iframes: document.querySelectorAll('iframe').length,
                   imgs: document.querySelectorAll('img[src="x"]').length})"""


def clean(page) -> None:
    state = page.evaluate(RAN_JS)
    assert state == {"title": state["title"], "pwned": 0, "iframes": 0, "imgs": 0}, state
    assert "pwned" not in state["title"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A rollout of synthetic walkers whose names carry script, saved under a file name that does too."""
    d = tmp_path_factory.mktemp("hostile")
    src = synthetic_walkers(d / "src.npz", num_envs=8, steps=120)
    with rollrec.load(src) as r:
        fields = {k: np.asarray(r[k]) for k in r.step_keys}
        fields["rew_term_names"] = [SCRIPTS["term"], "**bold**|cell", "upright", "alive"]
        fields["link_names"] = r.link_names
        layout = [dict(x) for x in r.meta["obs_layout"]]
        layout[0]["name"] = SCRIPTS["obs"]
        meta = {"obs_layout": layout, "link_parents": r.meta["link_parents"]}
        return rollrec.save(d / (SCRIPTS["file"] + ".npz"), fields, dt=r.dt, env_name=SCRIPTS["env_name"], meta=meta)


def test_file_strings_show_as_text_and_never_run(chromium, hostile):
    with replay_page(chromium, hostile) as (app, page):
        app.play()
        wait_for(lambda: readout(page)[0] > 10, what="playback")
        text = page.inner_text("body")
        for shown in (SCRIPTS["env_name"], SCRIPTS["file"] + ".npz", SCRIPTS["term"], "**bold**|cell"):
            assert shown in text, shown  # verbatim, as text
        page.get_by_role("tab", name="Plots").click()
        app.add_field(next(c.label for chans in app.fields_tab.groups.values() for c in chans if "onerror" in c.label))
        wait_for(lambda: "Plotted: " + SCRIPTS["obs"] in page.inner_text("body"), what="the plotted field's name")
        page.get_by_role("tab", name="Overview").click()
        app.wait_overview(30)
        page.get_by_text(re.compile(r"\d+ envs · \d+ episodes")).wait_for()
        clean(page)


def test_compare_mode_file_names_never_run(chromium, hostile, tmp_path):
    other = synthetic_walkers(tmp_path / 'b<img src=x onerror="window.__pwned=9">.npz', num_envs=8, steps=120)
    with replay_page(chromium, hostile, other) as (_app, page):
        page.get_by_text(re.compile(r"Compare · A .*onerror")).wait_for()
        page.get_by_role("tab", name="Compare").click()
        page.get_by_text(re.compile(r"B higher in \d+ of 8 envs")).wait_for(timeout=30000)
        assert SCRIPTS["file"] + ".npz" in page.inner_text("body")
        clean(page)


async def _send(port: int, updates: list[tuple[str, dict]]) -> None:
    """A hostile client: GUI updates no control offers, as viser's client would send them."""
    import msgspec
    import websockets

    camera = {"type": "ViewerCameraMessage", "wxyz": [1.0, 0.0, 0.0, 0.0], "position": [3.0, 3.0, 3.0], "fov": 1.0,
              "near": 0.01, "far": 100.0, "image_height": 480, "image_width": 640, "look_at": [0.0, 0.0, 0.0],
              "up_direction": [0.0, 0.0, 1.0]}
    async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=[f"viser-v{viser.__version__}"]) as ws:
        await ws.send(msgspec.msgpack.encode(camera))  # as a browser does first: viser then runs the callbacks
        await asyncio.sleep(0.5)
        for uuid, values in updates:
            await ws.send(msgspec.msgpack.encode({"type": "GuiUpdateMessage", "uuid": uuid, "updates": values}))
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)


def hostile_client(port: int, updates: list[tuple[str, dict]]) -> None:
    """`_send` on a thread of its own (the browser's driver runs an event loop on this one)."""
    import threading

    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: errors.extend(_run_or_error(_send(port, updates))))
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and not errors, errors


def _run_or_error(coro) -> list[BaseException]:
    try:
        asyncio.run(coro)
    except BaseException as exc:  # noqa: BLE001 - reported by the caller
        return [exc]
    return []


def test_a_hostile_client_cannot_reach_the_other_viewers(chromium, tmp_path):
    walkers = synthetic_walkers(tmp_path / "walkers.npz", num_envs=8, steps=120)
    with replay_page(chromium, walkers) as (app, page):
        page.get_by_role("tab", name="Overview").click()
        app.wait_overview(30)
        page.get_by_text(re.compile(r"\d+ envs · \d+ episodes")).wait_for()
        tab = app.overview_tab
        speed = app.state.clock.speed
        bad = SCRIPTS["client"]
        hostile_client(app.server.get_port(), [
            (tab.ended._impl.uuid, {"value": bad}),
            (app.gui.speed._impl.uuid, {"value": bad}),
            (app.gui.speed._impl.uuid, {"options": [bad], "value": bad}),  # options are the client's to change, too
            (tab.table.header._impl.uuid, {"value": bad}),
            (app.fields_tab.field._impl.uuid, {"value": bad}),
            (app.fields_tab.buttons._impl.uuid, {"value": "Add to plot"}),
            (app.gui.frame._impl.uuid, {"value": float("nan")}),
            (app.gui.env._impl.uuid, {"value": float("inf")}),
        ])
        wait_for(lambda: tab.ended.value == "any", what="Ended by set back to one of its options")
        assert app.state.clock.speed == speed and tab.filter_note.content == ""
        assert bad not in app.fields_tab.note.content  # echoed only as escaped text
        labelled_input(page, "Filter").fill(bad)  # the filter's own text, echoed in its note
        page.get_by_text(re.compile(r"cannot read '<img' in the filter")).wait_for()
        clean(page)
        app.play()  # and the replay still works
        frame = readout(page)[0]
        wait_for(lambda: readout(page)[0] != frame, what="playback")
        assert app.tick_errors == 0
