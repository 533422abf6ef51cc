"""A real browser against a running ``rollrec replay``: Play advances the frame and the reward
readout, env switching and a hotkey work, and a screenshot is saved.

Needs Python ``playwright`` and a Chromium (Debian's ``/usr/bin/chromium``, or ``$CHROMIUM``);
skipped without them. Set ``ROLLREC_SCREENSHOT_DIR`` to keep the screenshot (the README's
``docs/img/viewer.png`` comes from this test).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rollrec

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
FRAME_RE = re.compile(r"Frame (\d+) / (\d+) · env (\d+) / (\d+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def replay_server(walker_file):
    """``rollrec replay`` in a subprocess; yields its URL, stops it (bounded) afterwards."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rollrec.cli", "replay", str(walker_file), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"rollrec replay: .* at (http://\S+)", line)
            url = m.group(1) if m else None
        assert url, f"rollrec replay did not start (exit code {proc.poll()})"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _readout(page) -> tuple[int, int]:
    """(frame, env) as the page shows them."""
    m = FRAME_RE.search(page.inner_text("body"))
    assert m, "no frame readout on the page"
    return int(m.group(1)), int(m.group(3))


def _total(page) -> str:
    m = re.search(r"total\s+([+-]\d+\.\d+)", page.inner_text("body"))
    assert m, "no reward total on the page"
    return m.group(1)


def _wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_replay_in_headless_chromium(replay_server, walker_file, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    with rollrec.load(walker_file) as r:
        best = int(r.total_rewards().argmax())
        num_envs = r.N
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.set_default_timeout(20000)
            page.goto(replay_server)
            page.get_by_text(FRAME_RE).wait_for()
            assert _readout(page) == (0, 0)
            total0 = _total(page)

            # Play: the frame advances and the reward readout changes; Pause stops it.
            page.get_by_role("button", name="Play").click()
            _wait_for(lambda: _readout(page)[0] >= 10, what="the frame to advance")
            _wait_for(lambda: _total(page) != total0, what="the reward readout to change")
            page.get_by_role("button", name="Pause").click()
            page.get_by_role("button", name="Play").wait_for()
            time.sleep(0.3)
            paused_at = _readout(page)[0]
            time.sleep(0.5)
            assert _readout(page)[0] == paused_at, "frame moved while paused"

            # Switch env: "Best" goes to the env with the highest return, keeping the frame.
            page.get_by_role("button", name="Best").click()
            _wait_for(lambda: _readout(page) == (paused_at, best), what=f"env {best}")

            # Hotkeys: N is next env, → steps one frame. Focus the 3D view first, not a button.
            page.mouse.click(300, 600)
            page.keyboard.press("n")
            _wait_for(lambda: _readout(page)[1] == (best + 1) % num_envs, what="hotkey N to select the next env")
            page.keyboard.press("ArrowRight")
            _wait_for(lambda: _readout(page)[0] == paused_at + 1, what="hotkey → to step a frame")

            # Screenshot: best env, follow camera, a little way into playback, paused.
            page.keyboard.press("b")
            page.keyboard.press("f")
            page.keyboard.press("Home")
            page.keyboard.press("ArrowRight")
            _wait_for(lambda: _readout(page) == (1, best), what="hotkeys B and Home")
            page.keyboard.press("Space")
            _wait_for(lambda: _readout(page)[0] >= 30, what="hotkey Space to play")
            page.keyboard.press("Space")
            page.get_by_role("button", name="Play").wait_for()
            close = page.locator(".mantine-Notification-closeButton")  # "software WebGL" notice
            if close.count():
                close.first.click()
            time.sleep(1.5)  # let the scene render
            shot = tmp_path / "viewer.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            keep = os.environ.get("ROLLREC_SCREENSHOT_DIR")
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                from PIL import Image  # a 256-colour PNG keeps the README's image small

                Image.open(shot).convert("RGB").quantize(colors=256).save(Path(keep) / "viewer.png", optimize=True)
        finally:
            browser.close()
