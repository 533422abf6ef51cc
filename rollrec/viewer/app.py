"""The replay app: wires `ReplayState` to the scene and GUI, runs playback, serves.

A background thread ticks the frame clock at ~30 Hz and pushes an update only when the frame
(or play state) changed, so a paused viewer sends nothing. GUI callbacks (viser's thread
pool), hotkeys and the playback thread share one lock.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import viser

from rollrec.io.errors import RolloutFormatError
from rollrec.io.reader import Rollout, load
from rollrec.viewer.clock import SPEEDS
from rollrec.viewer.gui import ReplayGui
from rollrec.viewer.scene import ReplayScene
from rollrec.viewer.state import CameraPose, ReplayState

TICK_HZ = 30.0


class ReplayApp:
    """A replay of ``rollout`` on ``server``, showing env ``env`` first.

    Every public method is safe to call from any thread and updates all connected clients.
    `start` launches the playback thread; `close` stops it (the server is the caller's).
    ``ghosts``: show the other envs' bases (default: on up to 1024 envs). ``now``: the clock's
    time source (seconds). ``owns_rollout``: `stop_app` closes the rollout.
    """

    def __init__(self, rollout: Rollout, server: viser.ViserServer, *, env: int = 0, ghosts: bool | None = None,
                 now: Callable[[], float] = time.monotonic, owns_rollout: bool = False):
        self._lock = threading.RLock()
        self.owns_rollout = owns_rollout
        self.server = server
        self.state = ReplayState(rollout, env=env, now=now)
        self.scene = ReplayScene(server, rollout)
        if ghosts is not None:
            self.scene.show_ghosts = ghosts
        self.gui = ReplayGui(server, self.state, self, ghosts=self.scene.show_ghosts)
        self._pose: CameraPose | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushes = 0  # frames pushed to clients: tests check that pausing stops them
        self.file_error: str | None = None  # the last read refused because the file changed
        server.on_client_connect(self._on_connect)
        with self._lock:
            self._env_changed()

    # ---- playback thread -------------------------------------------------------------------
    def start(self) -> None:
        """Start the playback thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rollrec-replay", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        period = 1.0 / TICK_HZ
        while not self._stop.wait(period):
            self.tick()

    def tick(self) -> bool:
        """Advance the clock to real time; push the frame if it changed. Returns whether it did."""
        with self._lock:
            was_playing = self.state.clock.playing
            changed = self.state.clock.tick()
            if changed or was_playing != self.state.clock.playing:
                self._refresh(force_plot=not self.state.clock.playing)
                return True
            return False

    def close(self) -> None:
        """Stop the playback thread (within about one tick)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # ---- Controls (called by GUI, hotkeys and tests) ---------------------------------------
    def toggle_play(self) -> None:
        with self._lock:
            self.state.clock.toggle()
            self._refresh(force_plot=True)

    def play(self) -> None:
        with self._lock:
            self.state.clock.play()
            self._refresh()

    def pause(self) -> None:
        with self._lock:
            self.state.clock.pause()
            self._refresh(force_plot=True)

    def step(self, delta: int) -> None:
        with self._lock:
            self.state.clock.step(delta)
            self._refresh(force_plot=True)

    def seek(self, frame: int) -> None:
        with self._lock:
            if int(frame) == self.state.frame:  # echo of our own slider update: keep the clock's anchor
                return
            self.state.clock.seek(frame)
            self._refresh(force_plot=True)

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self.state.clock.speed = speed
            self.gui.speed.value = _nearest_speed_label(self.state.clock.speed)

    def change_speed(self, delta: int) -> None:
        """Go ``delta`` entries up (faster) or down the list of speeds."""
        with self._lock:
            i = min(range(len(SPEEDS)), key=lambda j: abs(SPEEDS[j] - self.state.clock.speed))
            self.set_speed(SPEEDS[min(max(i + delta, 0), len(SPEEDS) - 1)])

    def set_loop(self, loop: bool) -> None:
        with self._lock:
            self.state.clock.loop = bool(loop)
            self.gui.loop.value = bool(loop)

    def select_env(self, env: int) -> None:
        with self._lock:
            if env == self.state.env:
                return
            if self._read_file(self.state.select_env, int(env)) is not None:
                self._env_changed()

    def next_env(self, delta: int) -> None:
        with self._lock:
            if self._read_file(self.state.next_env, delta) is not None:
                self._env_changed()

    def best_env(self) -> None:
        with self._lock:
            env = self._read_file(self.state.best_env)
            if env is not None:
                self.select_env(env)

    def worst_env(self) -> None:
        with self._lock:
            env = self._read_file(self.state.worst_env)
            if env is not None:
                self.select_env(env)

    def _read_file(self, read: Callable[..., int], *args: Any) -> int | None:
        """``read(*args)`` (another env, the totals), unless the file changed since it was opened:
        then report it (stderr, every client, `file_error`), keep the current env on screen and
        return None. Reads use pread, so even a file truncated after this check cannot kill the
        viewer: its read fails the same way."""
        try:
            self.state.rollout.check_unchanged()
            return read(*args)
        except RolloutFormatError as exc:
            self.file_error = str(exc)
            print(f"rollrec replay: {exc}", file=sys.stderr, flush=True)
            for client in self.server.get_clients().values():
                client.add_notification("Rollout file changed", f"{exc}. Restart the replay to see the new file.",
                                        color="red")
            return None

    def jump_episode(self, delta: int) -> None:
        with self._lock:
            self.state.jump_episode(delta)
            self._refresh(force_plot=True)

    def set_camera(self, mode: str) -> None:
        with self._lock:
            self._apply_pose(self.state.set_camera_mode(mode))
            self.gui.camera_text.content = f"Camera: {mode}"

    def set_trail(self, visible: bool) -> None:
        with self._lock:
            self.scene.set_trail_visible(visible)

    def set_ghosts(self, visible: bool) -> None:
        with self._lock:
            self.scene.set_ghosts_visible(visible, self.state.frame)

    # ---- pushing ---------------------------------------------------------------------------
    def _env_changed(self) -> None:
        self.scene.set_env(self.state.data)
        self.gui.set_env()
        self._refresh(force_plot=True)
        self._apply_pose(self.state.set_camera_mode(self.state.camera_mode))  # aim the preset at the new env

    def _refresh(self, *, force_plot: bool = False) -> None:
        self.pushes += 1
        with self.server.atomic():
            self.scene.show_frame(self.state.frame)
            self.gui.show(force_plot=force_plot)
            pose = self.state.follow_pose()
            if pose is not None:
                self._apply_pose(pose)

    def _apply_pose(self, pose: CameraPose) -> None:
        """Move every client's camera, and the camera new clients start with."""
        self._pose = pose
        for client in self.server.get_clients().values():
            _move_camera(client, pose)
        self.server.initial_camera.position = pose.position
        self.server.initial_camera.look_at = pose.look_at

    def _on_connect(self, client: viser.ClientHandle) -> None:
        with self._lock:
            if self._pose is not None:
                _move_camera(client, self._pose)


def _move_camera(client: viser.ClientHandle, pose: CameraPose) -> None:
    with client.atomic():
        client.camera.up_direction = (0.0, 0.0, 1.0)
        client.camera.position = pose.position
        client.camera.look_at = pose.look_at


def _nearest_speed_label(speed: float) -> str:
    best = min(SPEEDS, key=lambda s: abs(s - speed))
    return f"{best:g}x"


# ---- serving ---------------------------------------------------------------------------------
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


def serve(
    source: str | os.PathLike | Rollout,
    *,
    env: int = 0,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_pickle: bool = False,
    block: bool = True,
) -> ReplayApp:
    """Serve a browser replay of ``source`` (a path or an open `Rollout`) at ``http://host:port``.

    Binds loopback by default; any other ``host`` prints a warning (anyone who can reach it
    can watch). Prints the URL. With ``block=True`` serves until Ctrl-C, then stops the server
    and returns the (closed) app; with ``block=False`` returns the running app at once; stop it
    with `stop_app`. A rollout opened here from a path is closed when the app stops.

    Raises FileNotFoundError / `RolloutFormatError` / `LegacyPickleError` for bad files,
    ValueError for an env index out of range, OSError when the port is busy. Nothing is left
    running when it raises.
    """
    owned = not isinstance(source, Rollout)
    rollout = load(source, allow_pickle=allow_pickle) if owned else source  # type: ignore[arg-type]
    server = None
    try:
        if not 0 <= env < rollout.N:
            raise ValueError(f"env {env} out of range: {rollout.path.name} has {rollout.N} envs (0..{rollout.N - 1})")
        if not _is_loopback(host):
            print(f"rollrec replay: warning: serving on {host}, not loopback: anyone who can reach this "
                  "machine can watch the replay", file=sys.stderr)
        _check_port_free(host, port)
        server = viser.ViserServer(host=host, port=port, verbose=False)
        if port != 0 and server.get_port() != port:
            raise OSError(f"cannot listen on {host}:{port}: the port is busy; pick another with --port")
        app = ReplayApp(rollout, server, env=env, owns_rollout=owned)
        app.start()
    except BaseException:
        if server is not None:
            server.stop()
        if owned:
            rollout.close()
        raise
    print(f"rollrec replay: {rollout.path} (env {env} of {rollout.N}) at http://{host}:{server.get_port()}"
          + ("  (Ctrl-C to stop)" if block else ""), flush=True)
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
    """Stop playback and the server of an app from `serve`; close its rollout if `serve` opened it."""
    app.close()
    app.server.stop()
    if app.owns_rollout:
        app.state.rollout.close()
