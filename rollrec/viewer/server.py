"""Serving a replay: open the file(s), check the address, start viser and the app, stop cleanly."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time
from collections.abc import Sequence

import viser

from rollrec.io.live import in_progress, open_live
from rollrec.io.opening import load
from rollrec.loop.control import PolicyControl
from rollrec.io.protocol import ReadableRollout
from rollrec.model.robot import RobotModel
from rollrec.viewer.app import ReplayApp


#: Most browsers one replay serves at once; more are turned away as they connect (close code
#: 1013, "try again later": browsers retry on their own), so a storm of connections cannot starve
#: the playback of the viewers already there.
MAX_CLIENTS = 32


def limit_clients(server: viser.ViserServer, most: int = MAX_CLIENTS) -> bool:
    """Turn away connections past the ``most``-th at ``server``; False where this viser does not
    expose its connections (playback still survives any error then: `ReplayApp`)."""
    infra = getattr(server, "_websock_server", None)
    live = getattr(infra, "_live_connections", None)
    if infra is None or not isinstance(live, dict) or not hasattr(infra, "on_client_connect"):
        return False

    async def turn_away(conn) -> None:
        if len(live) > most:
            connection = live.get(getattr(conn, "client_id", None))
            if connection is not None:
                await connection.close(1013, f"this replay serves at most {most} viewers at once; try again later")

    infra.on_client_connect(turn_away)
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets (``http://[::1]:8080``, RFC 3986)."""
    return f"http://[{host}]:{port}" if ":" in host and not host.startswith("[") else f"http://{host}:{port}"


def _check_port_free(host: str, port: int) -> None:
    """Raise OSError with a one-line message when ``host:port`` cannot be bound (viser would
    silently move to another port)."""
    if port == 0:
        return
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise OSError(f"cannot listen on {url(host, port)[7:]} ({exc.strerror or exc}); is another server using it? "
                      "Pick another port with --port") from None


def _open(source, allow_pickle: bool, opened: list, wait_s: float | None = None) -> ReadableRollout:
    if not isinstance(source, (str, os.PathLike)):
        return source  # an opened rollout (a file's or a sharded one, or a recording followed)
    if in_progress(source):  # a recording in progress (or stopped): follow its committed steps
        rollout = open_live(source)
        opened.append(rollout)
        if rollout.T == 0 and rollout.live:
            print(f"rollrec replay: {rollout.path} is being recorded; waiting for its first committed step",
                  file=sys.stderr, flush=True)
            rollout.wait(1, timeout=wait_s)
        if rollout.T == 0:
            raise FileNotFoundError(f"{rollout.path}: the recording ended before it committed a step ({rollout.note})")
        return rollout
    rollout = load(source, allow_pickle=allow_pickle)
    opened.append(rollout)
    return rollout


def serve(
    source: str | os.PathLike | ReadableRollout,
    compare: str | os.PathLike | ReadableRollout | Sequence[str | os.PathLike | ReadableRollout] | None = None,
    *,
    env: int = 0,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_pickle: bool = False,
    ghosts: bool | None = None,
    block: bool = True,
    model: RobotModel | None = None,
    ghost_robots: bool = False,
    control: str | os.PathLike | None = None,
    wait_s: float | None = None,
    max_clients: int = MAX_CLIENTS,
) -> ReplayApp:
    """Serve a browser replay of ``source`` (a path or an open `Rollout`) at ``http://host:port``;
    with ``compare``, replay it against that second rollout of the same task (same envs, same dt),
    or against several (a list): the Compare tab judges each against ``source``, and a selector
    picks the two shown side by side.

    ``env`` is shown first (negative counts from the end: -1 is the last env). Binds loopback by
    default; any other ``host`` prints a warning (anyone who can reach it can watch). Prints the
    URL. With ``block=True`` serves until Ctrl-C, then stops the server and returns the (closed)
    app; with ``block=False`` returns the running app at once; stop it with `stop_app`. Rollouts
    opened here from paths are closed when the app stops. ``model`` draws that robot geometry
    (e.g. ``rollrec.model_from_urdf``) instead of the one the file stores; ``ghost_robots`` draws
    the other envs as whole translucent robots rather than spheres. At most ``max_clients``
    browsers are served at once (`limit_clients`).

    A recording in progress (the path of its finished file, its ``.partial``, or the directory
    of a sharded recording whose ranks are recording) is followed: the replay shows the steps
    committed so far and grows as more are (`rollrec.viewer.live`); it waits for the first
    step (at most ``wait_s`` seconds, None: as long as it takes). ``control``: the policy
    control file of a session served by the rollout loop (`rollrec.loop.control`).

    Raises FileNotFoundError / `RolloutFormatError` / `LegacyPickleError` for bad files,
    ValueError for an env out of range or two rollouts that cannot be compared, OSError when the
    port is busy. Nothing is left running when it raises.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535 (0: any free port), got {port!r}")
    opened: list[ReadableRollout] = []
    server = None
    try:
        rollout = _open(source, allow_pickle, opened, wait_s)
        if compare is None:
            compare = []
        elif isinstance(compare, (str, os.PathLike)) or not isinstance(compare, Sequence):
            compare = [compare]
        others = [_open(c, allow_pickle, opened) for c in compare]
        if not -rollout.N <= env < rollout.N:
            raise ValueError(f"env {env} out of range: {rollout.path.name} has {rollout.N} envs "
                             f"(0..{rollout.N - 1}, or -{rollout.N}..-1 from the end)")
        if not _is_loopback(host):
            print(f"rollrec replay: warning: serving on {host}, not loopback: anyone who can reach this "
                  "machine can watch the replay", file=sys.stderr)
        _check_port_free(host, port)
        server = viser.ViserServer(host=host, port=port, verbose=False)
        limit_clients(server, max_clients)
        if port != 0 and server.get_port() != port:
            raise OSError(f"cannot listen on {host}:{port}: the port is busy; pick another with --port")
        controls = PolicyControl.attach(control) if control is not None else None
        app = ReplayApp(rollout, server, env=env, others=others, ghosts=ghosts, owned=opened, model=model,
                        ghost_robots=ghost_robots, control=controls)
        app.start()
    except BaseException:
        if server is not None:
            server.stop()
        for r in opened:
            r.close()
        raise
    what = " vs ".join(str(r.path) for r in app.state.runs)
    if app.live is not None and rollout.live:
        what += f" (recording: {rollout.T} steps so far, following it)"
    print(f"rollrec replay: {what} (env {app.state.env} of {rollout.N}) at {url(host, server.get_port())}"
          + ("  (Ctrl-C to stop)" if block else ""), flush=True)
    for note in app.state.notes:
        print(f"rollrec replay: note: {note}", file=sys.stderr)
    if block:
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("rollrec replay: stopped", file=sys.stderr)
        finally:
            stop_app(app)
    return app


def stop_app(app: ReplayApp) -> None:
    """Stop playback and the server of an app from `serve`; close the rollouts `serve` opened."""
    app.close()
    app.server.stop()
    for r in app.owned:
        r.close()
