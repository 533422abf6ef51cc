"""A real browser against a running ``rollrec replay``: Play advances the frame and the reward
readout, env switching and a hotkey work, and a screenshot is saved.

Needs Python ``playwright`` and a Chromium (Debian's ``/usr/bin/chromium``, or ``$CHROMIUM``);
skipped without them. The README's screenshots come from ``scripts/screenshots.py``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest

import rollrec

from .conftest import open_replay, readout, wait_for

pytestmark = pytest.mark.browser


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


def _total(page) -> str:
    m = re.search(r"total\s+([+-]\d+\.\d+)", page.inner_text("body"))
    assert m, "no reward total on the page"
    return m.group(1)


def test_replay_in_headless_chromium(chromium, replay_server, walker_file, tmp_path):
    with rollrec.load(walker_file) as r:
        best = int(r.total_rewards().argmax())
        num_envs = r.N
    page = open_replay(chromium, replay_server)
    try:
        assert readout(page) == (0, 0)
        total0 = _total(page)

        # Play: the frame advances and the reward readout changes; Pause stops it.
        page.get_by_role("button", name="Play").click()
        wait_for(lambda: readout(page)[0] >= 10, what="the frame to advance")
        wait_for(lambda: _total(page) != total0, what="the reward readout to change")
        page.get_by_role("button", name="Pause").click()
        page.get_by_role("button", name="Play").wait_for()  # pushed with the paused frame, in one atomic update
        paused_at = readout(page)[0]

        # Switch env: "Best" goes to the env with the highest return, keeping the frame. Its answer
        # comes after anything the server pushed since the pause (one ordered connection): the frame
        # it shows is the server's frame now, so equal to paused_at proves the clock stopped.
        page.get_by_role("button", name="Best").click()
        wait_for(lambda: readout(page)[1] == best, what=f"env {best}")
        assert readout(page) == (paused_at, best), "frame moved while paused"

        # Hotkeys: N is next env, → steps one frame. Focus the 3D view first, not a button.
        box = page.locator("canvas").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 40)
        page.keyboard.press("n")
        wait_for(lambda: readout(page)[1] == (best + 1) % num_envs, what="hotkey N to select the next env")
        page.keyboard.press("ArrowRight")
        wait_for(lambda: readout(page)[0] == paused_at + 1, what="hotkey → to step a frame")

        # Screenshot: best env, follow camera, a little way into playback, paused.
        page.keyboard.press("b")
        page.keyboard.press("f")
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        wait_for(lambda: readout(page) == (1, best), what="hotkeys B and Home")
        page.keyboard.press("Space")
        wait_for(lambda: readout(page)[0] >= 30, what="hotkey Space to play")
        page.keyboard.press("Space")
        page.get_by_role("button", name="Play").wait_for()
        time.sleep(1.5)  # let the scene render
        shot = tmp_path / "viewer.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        page.close()
