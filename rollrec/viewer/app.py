"""The replay app: wires `ReplayState` to the scene, the panels and the playback clock.

Layout: the main panel (playback, the recorded cameras, env, view, rewards) is docked on the right with the
triage panel (Overview, Plots and, comparing, Compare tabs) below it, one column of `PANEL_WIDTH`
(the user can drag the split, resize or minimise it), so the 3D view has the rest of the width
(two side columns left it 33% of a 1366 px window) and the robot can never walk behind a panel. A background thread ticks the frame
clock at ~30 Hz and pushes an update only when the frame (or play state) changed, so a paused
viewer sends nothing. Another thread computes the overviews once at start, then (comparing) the
verdict of every rollout against the first. GUI callbacks (viser's thread pool), hotkeys and
both threads share one lock.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import viser

from rollrec.format.errors import RolloutFormatError
from rollrec.io.live import LiveRollout, LiveShardedRollout
from rollrec.io.protocol import ReadableRollout
from rollrec.loop.control import PolicyControl
from rollrec.model.robot import RobotModel
from rollrec.model.shapes import ModelTooLarge
from rollrec.viewer.bodies import check_drawable
from rollrec.stats.compare import compare
from rollrec.stats.pairing import run_names
from rollrec.viewer.camera import CameraPose, follow
from rollrec.viewer.cameras import CameraPanel
from rollrec.viewer.cameras_gui import CamerasGui
from rollrec.viewer.clock import SPEEDS
from rollrec.viewer.overview.compare import env_differences
from rollrec.viewer.fields_gui import FieldsTab
from rollrec.viewer.gui import ReplayGui
from rollrec.viewer.live.follower import LiveFollower
from rollrec.viewer.overview.episodes import Overview, compute_overview
from rollrec.viewer.overview.gui import CompareTab, OverviewTab
from rollrec.viewer.scene import ReplayScene
from rollrec.viewer.state import ReplayState, run_letters
from rollrec.viewer.text import plain

# A client that left while the follow camera moved every client: viser warns, the others are moved.
warnings.filterwarnings("ignore", message=r"Queued a \w+ on a closed connection", category=UserWarning)

TICK_HZ = 30.0
#: Width (px) of the one column on the right that holds both panels.
PANEL_WIDTH = 440


class ReplayApp:
    """A replay of ``rollout`` on ``server`` (compare mode: against ``other``, and ``others``), env
    ``env`` first.

    Every public method is safe to call from any thread and updates all connected clients.
    `start` launches the playback thread; `close` stops it (the server is the caller's).
    ``ghosts``: show other envs' bases (default: on when there are other envs). ``now``: the
    clock's time source (seconds). ``owned``: rollouts `stop_app` closes.
    ``names``: how the panels call the rollouts (default: their file names, with as much of their
    folders as tells apart files of the same name). With more than two rollouts, `set_pair` picks
    the two shown side by side (the first two at start).
    ``model``: the robot's geometry to draw instead of the one the file stores (e.g. a URDF's,
    `rollrec.model_from_urdf`; matched to the recorded links by name). ``ghost_robots``: draw the
    ghosts as whole translucent robots (when there is a model) rather than spheres at their bases.
    A recording in progress (`rollrec.io.live`) is followed as it grows (`rollrec.viewer.live`);
    ``control``: the policy controls of a session served by the rollout loop.
    """

    def __init__(self, rollout: ReadableRollout, server: viser.ViserServer, *, env: int = 0,
                 other: ReadableRollout | None = None, others: Sequence[ReadableRollout] = (),
                 ghosts: bool | None = None, now: Callable[[], float] = time.monotonic, owned: Sequence = (),
                 names: Sequence[str] | None = None, model: RobotModel | None = None, ghost_robots: bool = False,
                 control: PolicyControl | None = None):
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.owned = list(owned)
        self.server = server
        self.state = ReplayState(rollout, env=env, other=other, others=others, now=now)
        runs = self.state.runs
        self.names = tuple(names) if names is not None else tuple(run_names([r.path for r in runs]))
        if len(self.names) != len(runs):
            raise ValueError(f"{len(self.names)} names for {len(runs)} rollouts")
        self.models = [robot_model(r, model, self.state.notes) for r in runs]
        other = self.state.other
        self.scene = ReplayScene(server, rollout, other=other, ghosts=ghosts, labels=self.state.labels,
                                 models=(self.models[0], self.models[1] if other is not None else None),
                                 ghost_robots=ghost_robots)
        self.state.fit_spacing(self.scene.part_reach())
        self.scene.ghosts.set_selected(self.state.env)
        self.gui = ReplayGui(server, self.state, self, ghosts=self.scene.show_ghosts,
                             ghost_count=len(self.scene.ghosts.envs), names=self.names,
                             ghost_robots=self.scene.ghosts.as_robots if self.scene.ghosts.robots is not None else None)
        self.cameras: CamerasGui | None = None
        if self.gui.cameras_folder is not None:
            with self.gui.cameras_folder:
                self.cameras = CamerasGui(server.gui, CameraPanel(rollout))
        self._build_triage_panel()
        gui = server.gui
        gui.main_panel.dock_right()
        gui.main_panel.set_width(PANEL_WIDTH)
        self.panel.dock_below(gui.main_panel)  # one column: the 3D view keeps the rest of the width
        self.panel.set_width(PANEL_WIDTH)

        self._pose: CameraPose | None = None
        self._thread: threading.Thread | None = None
        self.pushes = 0  # frames pushed to clients: tests check that pausing stops them
        self.tick_errors = 0  # playback updates that failed (and were survived: `_tick_failed`)
        self._errors_said: set[str] = set()
        self.file_error: str | None = None  # the last read refused because the file changed
        server.on_client_connect(self._on_connect)
        with self._lock:
            self._env_changed()
        self.overview: Overview | None = None
        self.overview_b: Overview | None = None
        self.overviews: list[Overview] = []
        self.overview_error: BaseException | None = None
        self._overview_done = threading.Event()
        self.verdict: dict | None = None  # compare mode: `rollrec.stats.compare.compare` of every rollout
        self.verdict_error: BaseException | None = None
        self._verdict_done = threading.Event()
        if not self.state.comparing:
            self._verdict_done.set()
        self.live: LiveFollower | None = None
        if isinstance(rollout, (LiveRollout, LiveShardedRollout)):
            if other is not None or others:
                raise ValueError(f"{rollout.path} is being recorded: compare it once it has finished")
            self.live = LiveFollower(self, control=control)  # computes the overview, then grows it
        else:
            threading.Thread(target=self._compute_overviews, name="rollrec-overview", daemon=True).start()

    def _build_triage_panel(self) -> None:
        gui = self.server.gui
        self.panel = gui.add_panel()
        tab = self.panel.add_tab("Overview", viser.Icon.CHART_HISTOGRAM)
        with tab:
            self.overview_tab = OverviewTab(gui, tab, lock=self._lock, on_episode=self.select_episode)
        plots = self.panel.add_tab("Plots", viser.Icon.CHART_LINE)
        with plots:
            self.fields_tab = FieldsTab(gui, plots, self.state, lock=self._lock)
        self.compare_tab: CompareTab | None = None
        if self.state.comparing:
            tab = self.panel.add_tab("Compare", viser.Icon.ARROWS_DIFF)
            with tab:
                self.compare_tab = CompareTab(gui, tab, lock=self._lock, on_env=self.select_env, names=self.names,
                                              notes=self.state.notes, letters=run_letters(len(self.state.runs)))

    # ---- the overview (background thread) --------------------------------------------------
    def _compute_overviews(self) -> None:
        s = self.state
        try:
            t0 = time.perf_counter()
            total = len(s.runs)

            def progress(i: int) -> Callable[[float], None]:
                def report(f: float) -> None:
                    if self._stop.is_set():
                        raise _Cancelled
                    self._locked(lambda: self.overview_tab.set_progress((i + f) / total))

                return report

            overviews = [compute_overview(s.runs[0], steps=s.num_frames, progress=progress(0))]
            seconds = time.perf_counter() - t0
            overviews += [compute_overview(r, steps=s.num_frames, progress=progress(i)) for i, r in enumerate(s.runs[1:], 1)]
            with self._lock:
                self.overviews = overviews
                self.overview = overviews[0]
                self.overview_b = overviews[1] if len(overviews) > 1 else None
                s.overview = self.overview
                self.overview_tab.set_overview(self.overview, seconds)
                self._show_differences()
                self._mark_current()
        except _Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 (a thread: shown in the tab; the replay keeps working)
            self.overview_error = exc
            message = f"⚠️ Overview failed: {exc}"
            self._locked(lambda: setattr(self.overview_tab.status, "content", message))
        finally:
            self._overview_done.set()
        if self.compare_tab is not None and not self._stop.is_set():
            self._compute_verdict()
        else:  # no verdict will come: close() and wait_verdict() must not wait for one
            self._verdict_done.set()

    def _show_differences(self) -> None:
        """The Compare tab's per-env table for the pair shown (once the overviews are computed)."""
        if self.compare_tab is None or not self.overviews:
            return
        a, b = (self.overviews[i] for i in self.state.pair)
        self.compare_tab.set_differences(env_differences(a, b), a, b, self.state.labels)

    def _compute_verdict(self) -> None:
        """Every rollout against the first (`rollrec.stats.compare`, what ``rollrec compare`` prints)."""
        try:
            result = compare(*self.state.runs, names=self.names)
        except Exception as exc:  # noqa: BLE001 (a thread: shown in the tab; the replay keeps working)
            self.verdict_error = exc
            message = str(exc)
            self._locked(lambda: self.compare_tab.set_verdict_error(message))
        else:
            with self._lock:
                self.verdict = result
                self.compare_tab.set_verdict(result)
        finally:
            self._verdict_done.set()

    def wait_verdict(self, timeout: float | None = None) -> dict | None:
        """Block until the compare mode's verdict is computed (or failed); returns it (None otherwise)."""
        self._verdict_done.wait(timeout)
        return self.verdict

    def wait_overview(self, timeout: float | None = None) -> Overview | None:
        """Block until the overview is computed (or failed); returns it (None on failure/timeout)."""
        self._overview_done.wait(timeout)
        return self.overview

    def _locked(self, fn: Callable[[], object]) -> None:
        with self._lock:
            fn()

    # ---- playback thread -------------------------------------------------------------------
    def start(self) -> None:
        """Start the playback thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rollrec-replay", daemon=True)
            self._thread.start()
        if self.live is not None:
            self.live.start()

    def _run(self) -> None:
        # A fixed-rate schedule: waiting a whole period after each tick's work would run the
        # clock at 1 / (period + work), below TICK_HZ; after a stall it resumes without bursting.
        period = 1.0 / TICK_HZ
        deadline = time.monotonic() + period
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            try:
                self.tick()
            except RolloutFormatError as exc:  # the file shrank under the ghosts' read: report, stop playing
                with self._lock:
                    self.scene.set_ghosts_visible(False, self.state.frame)
                    if getattr(self.gui, "ghosts", None) is not None:
                        self.gui.ghosts.value = False
                    self.state.clock.pause()
                self._file_changed(exc)
            except Exception as exc:  # noqa: BLE001 - e.g. viser's state changing under a storm of clients
                self._tick_failed(exc)
            deadline = max(deadline + period, time.monotonic())

    def _tick_failed(self, exc: Exception) -> None:
        """Playback survives any error of a tick: it is said once per kind on stderr, counted, and
        the next tick runs as usual."""
        self.tick_errors += 1
        kind = f"{type(exc).__name__}: {exc}"
        if kind not in self._errors_said:
            self._errors_said.add(kind)
            print(f"rollrec replay: a playback update failed ({kind}); playback goes on (this error is not "
                  "shown again)", file=sys.stderr, flush=True)

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
        """Stop the playback thread (within about one tick) and the overview's computation
        (after its current block); wait for a verdict being computed."""
        self._stop.set()
        self.gui.close()
        if self.live is not None:
            self.live.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._overview_done.wait(timeout=10.0)
        self._verdict_done.wait(timeout=30.0)

    # ---- controls (called by the GUI, hotkeys and tests) -----------------------------------
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
        """Show env ``env`` (negative counts from the end), keeping the frame."""
        with self._lock:
            if int(env) % self.state.num_envs == self.state.env:
                return
            if self._read_file(self.state.select_env, int(env)) is not None:
                self._env_changed()

    def select_episode(self, env: int, start: int) -> None:
        """Show env ``env`` from step ``start`` (an overview row's episode); playback continues."""
        with self._lock:
            if int(env) % self.state.num_envs != self.state.env:
                if self._read_file(self.state.select_env, int(env)) is None:
                    return
                self.state.clock.seek(start)
                self._env_changed()
            else:
                self.state.clock.seek(start)
                self._refresh(force_plot=True)

    def next_env(self, delta: int) -> None:
        with self._lock:
            if self._read_file(self.state.next_env, delta) is not None:
                self._env_changed()

    def next_detail_env(self) -> None:
        env = self._read_file(self.state.next_detail_env)
        if env is not None:
            self.select_env(env)

    def best_env(self) -> None:
        self._select_ranked(best=True)

    def worst_env(self) -> None:
        self._select_ranked(best=False)

    def _select_ranked(self, *, best: bool) -> None:
        # Outside the lock: before the overview is ready this reads ``rew`` block by block.
        env = self._read_file(self.state.best_env if best else self.state.worst_env)
        if env is not None:
            self.select_env(env)

    def _read_file(self, read: Callable[..., int], *args: Any) -> int | None:
        """``read(*args)`` (another env, the totals), unless a file changed since it was opened:
        then report it (stderr, every client, `file_error`), keep the current env on screen and
        return None. An env whose shard is missing (a sharded rollout) is reported the same way,
        without `file_error`. Reads use pread, so even a file truncated after this check cannot
        kill the viewer: its read fails the same way."""
        from rollrec.io.sharded.rollout import MissingEnvsError

        try:
            for rollout in self.state.runs:
                rollout.check_unchanged()
            return read(*args)
        except MissingEnvsError as exc:
            self._report("Env not recorded", str(exc))
        except RolloutFormatError as exc:
            self._file_changed(exc)
        return None

    def _file_changed(self, exc: RolloutFormatError) -> None:
        self.file_error = str(exc)
        self._report("Rollout file changed", f"{exc}. Restart the replay to see the new file.")

    def _report(self, title: str, message: str) -> None:
        print(f"rollrec replay: {message}", file=sys.stderr, flush=True)
        for client in list(self.server.get_clients().values()):
            with contextlib.suppress(Exception):
                client.add_notification(title, plain(message, 1000), color="red")

    def jump_episode(self, delta: int) -> None:
        with self._lock:
            self.state.jump_episode(delta)
            self._refresh(force_plot=True)

    def set_camera(self, mode: str) -> None:
        with self._lock:
            self._apply_pose(self.state.set_camera_mode(mode), reset=True)
            self.gui.set_camera_mode(mode)

    def set_trail(self, visible: bool) -> None:
        with self._lock:
            self.scene.set_trail_visible(visible)

    def set_trail_all_episodes(self, all_episodes: bool) -> None:
        """Trail every episode of the env, or only the episode shown (the default)."""
        with self._lock:
            self.scene.set_trail_all_episodes(all_episodes)
            self.gui.trail_all.value = bool(all_episodes)
            self.scene.show_frame(self.state.frame)

    def set_ghosts(self, visible: bool) -> None:
        with self._lock:
            self.scene.set_ghosts_visible(visible, self.state.frame)
            self.gui.ghosts.value = visible

    def set_ghost_robots(self, robots: bool) -> None:
        """Ghosts as whole translucent robots (needs the robot's model) or as spheres."""
        with self._lock:
            self.scene.ghosts.set_robots(robots, self.state.frame)
            if self.gui.ghost_robots is not None:
                self.gui.ghost_robots.value = self.scene.ghosts.as_robots

    def set_layout(self, layout: str) -> None:
        """Compare mode: robot B beside A or on top of it."""
        with self._lock:
            self.state.set_layout(layout)
            if self.gui.layout is not None:
                self.gui.layout.value = layout
            self._env_changed()

    def set_pair(self, left: int, right: int) -> None:
        """Compare mode with more than two rollouts: show rollouts ``left`` and ``right`` (indices, 0 is
        the first) side by side, at the same env and frame."""
        with self._lock:
            s = self.state
            if (left, right) == s.pair:
                return
            if self._read_file(s.set_pair, int(left), int(right)) is None:
                return
            self.scene.set_pair(s.rollout, s.other, s.labels, (self.models[left], self.models[right]), s.pair)
            s.fit_spacing(self.scene.part_reach())
            self.gui.set_pair()
            self.fields_tab.set_pair()
            self._show_differences()
            self._env_changed()

    def add_field(self, label: str) -> None:
        """Plot the field called ``label`` in the Plots tab (KeyError if there is none)."""
        with self._lock:
            self.fields_tab.add(label)

    # ---- pushing ---------------------------------------------------------------------------
    def _env_changed(self) -> None:
        s = self.state
        datas = [s.data] if s.data_b is None else [s.data, s.data_b]
        offsets = [np.zeros(3, np.float32), s.offset_b]
        self.scene.set_env(datas, offsets, s.frame)
        self.gui.set_env()
        if self.cameras is not None:
            self.cameras.set_env(s.env)
        self._refresh(force_plot=True)  # the follow camera moves to the new env, keeping its offset
        if s.camera_mode != "follow":
            self._apply_pose(s.set_camera_mode(s.camera_mode), reset=True)  # aim the preset at the new env

    def _refresh(self, *, force_plot: bool = False) -> None:
        self.pushes += 1
        s = self.state
        with self.server.atomic():
            self.scene.show_frame(s.frame)
            plot = self.gui.plot_due(force_plot)
            self.gui.show(plot=plot)
            if plot:
                self.fields_tab.show()
            if self.cameras is not None:
                self.cameras.show(s.frame)
            self._mark_current()
            if s.camera_mode == "follow":
                self._apply_pose(None, reset=False)

    def _mark_current(self) -> None:
        self.overview_tab.set_current(self.state.env, self.state.frame)
        if self.compare_tab is not None:
            self.compare_tab.set_current(self.state.env)

    def _apply_pose(self, pose: CameraPose | None, *, reset: bool) -> None:
        """Move every client's camera: to ``pose`` when ``reset``, else (follow) keep each
        client's own offset from its target and move it onto the current target."""
        target = self.state.camera_target()
        scale = self.state.camera_scale
        for client in list(self.server.get_clients().values()):
            try:  # a client may be going away right now: the others still follow
                current = None if reset else _client_pose(client)
                _move_camera(client, pose if reset and pose is not None else follow(current, target, distance_scale=scale))
            except Exception:  # noqa: BLE001
                continue
        new = pose if reset and pose is not None else follow(self._pose, target, distance_scale=scale)
        self._pose = new
        self.server.initial_camera.position = new.position
        self.server.initial_camera.look_at = new.look_at

    def _on_connect(self, client: viser.ClientHandle) -> None:
        with self._lock:
            if self._pose is not None:
                _move_camera(client, self._pose)


def robot_model(rollout, override: RobotModel | None, notes: list[str]) -> RobotModel | None:
    """The geometry to draw for ``rollout``: ``override`` bound to its links, else the stored
    model; None without one. A damaged stored model, or one too large to draw
    (`rollrec.viewer.bodies.check_drawable`), is a note, not a failed replay."""
    if rollout is None:
        return None
    if override is not None:
        model = override.bind(rollout.link_names or []).check() if rollout.link_names else None
    else:
        try:
            model = rollout.model
        except RolloutFormatError as exc:
            notes.append(f"the robot model is not drawn: {exc}")
            return None
    if model is not None:
        try:
            check_drawable(model)
        except ModelTooLarge as exc:  # the skeleton is drawn instead
            notes.append(f"the robot model is not drawn: {exc}")
            return None
    return model


class _Cancelled(Exception):
    """The app closed while the overview was being computed."""


def _client_pose(client: viser.ClientHandle) -> CameraPose | None:
    """The client's camera as last reported (None before it reported one)."""
    cam = client.camera
    if cam._state.update_timestamp == 0.0:  # viser asserts on reads before the first report
        return None
    return CameraPose(tuple(float(x) for x in cam.position), tuple(float(x) for x in cam.look_at))  # type: ignore[arg-type]


def _move_camera(client: viser.ClientHandle, pose: CameraPose) -> None:
    with client.atomic():
        client.camera.up_direction = (0.0, 0.0, 1.0)
        client.camera.position = pose.position
        client.camera.look_at = pose.look_at


def _nearest_speed_label(speed: float) -> str:
    best = min(SPEEDS, key=lambda s: abs(s - speed))
    return f"{best:g}x"
