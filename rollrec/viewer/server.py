"""Serving a replay: open the file(s), check the address, start viser and the app, stop cleanly."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time

import viser

from rollrec.io.opening import load
from rollrec.io.protocol import ReadableRollout
from rollrec.model.robot import RobotModel
from rollrec.viewer.app import ReplayApp


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server using it? "
                      "Pick another port with --port") from None


def _open(source, allow_pickle: bool, opened: list) -> ReadableRollout:
    if not isinstance(source, (str, os.PathLike)):
        return source  # an opened rollout (a file's or a sharded one)
    rollout = load(source, allow_pickle=allow_pickle)
    opened.append(rollout)
    return rollout


def serve(
    source: str | os.PathLike | ReadableRollout,
    compare: str | os.PathLike | ReadableRollout | None = None,
    *,
    env: int = 0,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_pickle: bool = False,
    ghosts: bool | None = None,
    block: bool = True,
    model: RobotModel | None = None,
    ghost_robots: bool = False,
) -> ReplayApp:
    """Serve a browser replay of ``source`` at ``http://host:port``; prints the URL.

    Only the selected env's trajectory is read from the file, so multi-GB rollouts open at once.

    Args:
        source: the rollout: a path (``.npz`` file or sharded directory) or an open `Rollout`.
            Rollouts opened here from paths are closed when the app stops.
        compare: a second rollout of the same task (same envs, same dt) replayed against
            ``source``, side by side or overlaid, with the Compare tab.
        env: the env shown first (negative counts from the end: -1 is the last env).
        host: the address to bind; loopback by default. Any other prints a warning (anyone who
            can reach it can watch).
        port: the port to listen on.
        allow_pickle: open files of the original recorder (pickled objects: only files you trust).
        ghosts: show the other envs' bases as translucent ghosts; None (default) shows them
            whenever there are other envs.
        block: serve until Ctrl-C, then stop the server and return the (closed) app; False
            returns the running app at once (stop it with `stop_app`).
        model: robot geometry to draw instead of the one the file stores, e.g.
            ``rollrec.model_from_urdf(...)``, posed by link name.
        ghost_robots: draw the ghosts as whole translucent robots rather than spheres.

    Returns:
        The `ReplayApp`: closed with ``block=True``, running with ``block=False``.

    Raises:
        FileNotFoundError: a missing file. `RolloutFormatError` / `LegacyPickleError`: a bad file
            (or one that needs ``allow_pickle``).
        ValueError: an env out of range, or two rollouts that cannot be compared.
        OSError: the port is busy. Nothing is left running when it raises.
    """
    opened: list[ReadableRollout] = []
    server = None
    try:
        rollout = _open(source, allow_pickle, opened)
        other = _open(compare, allow_pickle, opened) if compare is not None else None
        if not -rollout.N <= env < rollout.N:
            raise ValueError(f"env {env} out of range: {rollout.path.name} has {rollout.N} envs "
                             f"(0..{rollout.N - 1}, or -{rollout.N}..-1 from the end)")
        if not _is_loopback(host):
            print(f"rollrec replay: warning: serving on {host}, not loopback: anyone who can reach this "
                  "machine can watch the replay", file=sys.stderr)
        _check_port_free(host, port)
        server = viser.ViserServer(host=host, port=port, verbose=False)
        if port != 0 and server.get_port() != port:
            raise OSError(f"cannot listen on {host}:{port}: the port is busy; pick another with --port")
        app = ReplayApp(rollout, server, env=env, other=other, ghosts=ghosts, owned=opened, model=model,
                        ghost_robots=ghost_robots)
        app.start()
    except BaseException:
        if server is not None:
            server.stop()
        for r in opened:
            r.close()
        raise
    what = f"{rollout.path}" if other is None else f"{rollout.path} vs {other.path}"
    print(f"rollrec replay: {what} (env {app.state.env} of {rollout.N}) at http://{host}:{server.get_port()}"
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
