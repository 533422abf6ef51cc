"""The replay as a network service: playback survives any error of an update, and a storm of
2,000 websocket clients (127.0.0.1 only, bounded in count and time) neither stops playback nor
the server: past `MAX_CLIENTS` connections are turned away, and a viewer that comes afterwards is
served as usual."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import viser

from rollrec.viewer import serve, stop_app
from rollrec.viewer.server import MAX_CLIENTS

from .conftest import synthetic_walkers, wait_for

#: Clients in the storm, and seconds each stays connected (the whole test is bounded by both).
STORM, HOLD_S = 2000, 3.0

CLIENTS = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import msgspec, websockets
    CAMERA = msgspec.msgpack.encode({"type": "ViewerCameraMessage", "wxyz": [1.0, 0.0, 0.0, 0.0],
        "position": [3.0, 3.0, 3.0], "fov": 1.0, "near": 0.01, "far": 100.0, "image_height": 480,
        "image_width": 640, "look_at": [0.0, 0.0, 0.0], "up_direction": [0.0, 0.0, 1.0]})

    async def client(url, protocol, hold, stats):
        try:  # like a browser: connect, report a camera, listen
            async with websockets.connect(url, subprotocols=[protocol], open_timeout=60, max_size=None) as ws:
                stats["opened"] += 1
                await ws.send(CAMERA)
                end = time.monotonic() + hold
                while time.monotonic() < end:
                    try:
                        await asyncio.wait_for(ws.recv(), timeout=0.5)
                        stats["messages"] += 1
                    except asyncio.TimeoutError:
                        await ws.send(CAMERA)
                stats["served"] += 1
        except websockets.exceptions.ConnectionClosed as exc:
            key = f"closed {exc.rcvd.code if exc.rcvd else None}"
            stats[key] = stats.get(key, 0) + 1
        except Exception as exc:
            stats[type(exc).__name__] = stats.get(type(exc).__name__, 0) + 1

    async def main(url, protocol, n, hold):
        stats = {"opened": 0, "served": 0, "messages": 0}
        await asyncio.gather(*(client(url, protocol, hold, stats) for _ in range(n)))
        print(json.dumps(stats), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    """
)


def clients(port: int, n: int, hold: float, timeout: float) -> dict:
    url, protocol = f"ws://127.0.0.1:{port}", f"viser-v{viser.__version__}"
    done = subprocess.run([sys.executable, "-c", CLIENTS, url, protocol, str(n), str(hold)], capture_output=True,
                          text=True, timeout=timeout, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def walkers(tmp_path_factory):
    return synthetic_walkers(tmp_path_factory.mktemp("net") / "walkers.npz", num_envs=16, steps=600)


def test_playback_survives_any_error_of_an_update(walkers, capsys):
    app = serve(walkers, port=0, block=False)
    try:
        real = app.tick
        failures = iter([RuntimeError("deque mutated during iteration")] * 3)

        def flaky() -> bool:
            exc = next(failures, None)
            if exc is not None:
                raise exc
            return real()

        app.tick = flaky
        app.set_loop(True)
        app.play()
        start = app.state.frame
        wait_for(lambda: app.tick_errors == 3 and app.state.frame > start + 5, what="playback to go on")
        assert app._thread.is_alive()
        err = capsys.readouterr().err
        assert err.count("a playback update failed (RuntimeError: deque mutated during iteration)") == 1
    finally:
        stop_app(app)


@pytest.mark.slow
def test_two_thousand_clients_do_not_stop_playback_or_the_server(walkers):
    app = serve(walkers, port=0, block=False)
    try:
        app.set_loop(True)
        app.play()
        port = app.server.get_port()
        pushes = app.pushes
        storm = clients(port, STORM, HOLD_S, timeout=240)
        assert storm["opened"] + sum(v for k, v in storm.items() if k.startswith("closed")) >= STORM, storm
        turned_away = storm.get("closed 1013", 0)
        assert storm["served"] <= MAX_CLIENTS + 8 and turned_away >= STORM - MAX_CLIENTS - 8, storm
        assert app._thread.is_alive() and app.pushes > pushes  # playback went on through the storm
        wait_for(lambda: not app.server.get_clients(), timeout=30, what="the storm's clients to be gone")
        frame = app.state.frame
        wait_for(lambda: app.state.frame != frame, what="playback to go on after the storm")
        after = clients(port, 1, 1.5, timeout=60)  # a viewer that comes afterwards is served
        assert after["served"] == 1 and after["messages"] > 0, after
    finally:
        stop_app(app)
    assert not app._thread  # stopped by itself
