"""`LiveFollower`: grows a replay as the recording it shows commits steps.

A thread polls the recording (`LiveRollout.refresh`, every `POLL_S`) and, when it has more
steps, extends everything the replay shows, reading only the new rows: the timeline (the frame
slider's maximum, the clock), the selected env's trajectory (`growth.extend_env`), the overview
and its table and histogram (`GrowingOverview`), best / worst (their totals come from it), the
plots. A replay that showed the newest step keeps showing the newest (it *follows* the live
edge); one the user moved back stays where it is. The LIVE line says where the recording
stands; when its writer dies, every viewer is told so, with the ``rollrec recover`` command;
when it finishes, the replay goes on from the finished file (the rollout object reads it).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rollrec.io.live.follow import LiveStatus
from rollrec.loop.control import PolicyControl
from rollrec.viewer.gui import HOTKEYS, keys_markdown
from rollrec.viewer.live.growth import extend_env
from rollrec.viewer.live.panel import POLICY_HOTKEYS, LivePanel, PolicyPanel
from rollrec.viewer.overview.episodes import compute_overview
from rollrec.viewer.overview.growing import GrowingOverview

if TYPE_CHECKING:
    from rollrec.viewer.app import ReplayApp

#: Seconds between two looks at the recording's sidecar.
POLL_S = 0.25
#: Least seconds between two growths of what the page shows (each sends the trail, the marks...).
GROW_S = 0.5
#: Least seconds between two growths of the overview tab (its table and histogram).
OVERVIEW_S = 2.0


class LiveFollower:
    """Follows ``app.state.rollout`` (a `LiveRollout` or `LiveShardedRollout`) for ``app``;
    ``control``: the policy controls of a session served by the rollout loop. `start` starts the
    thread (it computes the overview first), `close` stops it."""

    def __init__(self, app: ReplayApp, *, control: PolicyControl | None = None, poll_s: float = POLL_S):
        self.app = app
        self.rollout: Any = app.state.rollout
        self.poll_s = poll_s
        self.control = control
        gui = app.server.gui
        order = app.gui.frame_text.order
        self.panel = LivePanel(gui, order=order, on_jump=self.jump_to_latest)
        self.policy: PolicyPanel | None = None
        if control is not None:
            self.policy = PolicyPanel(gui, control, order=order - 0.05, selected=lambda: app.state.env, lock=app._lock)
            app.gui.bind("Policy off / on (this env)", "L", lambda: self.policy.toggle())
            app.gui.bind("Policy off / on (every env)", "L", lambda: self.policy.toggle(all_envs=True), modifier="shift")
            app.gui.bind("Pause / resume the simulation", "K", lambda: self.policy.pause_resume())
            app.gui.bind("One simulation step", "J", lambda: self.policy.step())
            keys = tuple(k for k in HOTKEYS if k[0] != "L") + POLICY_HOTKEYS
            app.gui.keys_text.content = keys_markdown(keys)
        self.overview = GrowingOverview(self.rollout)
        self.status = self.rollout.status
        self._last_step_at: float | None = None
        self._seen = self.rollout.T
        self._grown_at = -float("inf")
        self._overview_at = -float("inf")
        self._told: LiveStatus | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        app.state.clock.hold_at_end = self.rollout.live
        with app._lock:
            if self.rollout.live:  # open at the live edge
                app.state.clock.seek(app.state.num_frames - 1)
                app._refresh(force_plot=True)
            self._show()

    # ---- the thread -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rollrec-live", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self) -> None:
        self._first_overview()
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - a thread: say it, keep following
                self.app._report("Live replay", f"following the recording failed: {type(exc).__name__}: {exc}")
                self._stop.wait(2.0)

    def _first_overview(self) -> None:
        app = self.app
        t0 = time.perf_counter()
        try:
            ov = self.overview.extend(app.state.num_frames, progress=lambda f: app._locked(
                lambda: app.overview_tab.set_progress(f)))
            seconds = time.perf_counter() - t0
            with app._lock:
                self._set_overview(ov, f"computed in {seconds:.2f} s; grows with every committed step")
        except Exception as exc:  # noqa: BLE001 - shown in the tab; the replay keeps working
            app.overview_error = exc
            message = f"⚠️ Overview failed: {exc}"
            app._locked(lambda: setattr(app.overview_tab.status, "content", message))
        finally:
            app._overview_done.set()

    # ---- one look at the recording ------------------------------------------------------------
    def poll(self) -> bool:
        """Refresh the recording and grow the replay over its new steps (at most every `GROW_S`;
        the overview every `OVERVIEW_S`); returns whether it grew."""
        app, r = self.app, self.rollout
        steps = r.refresh()
        status = r.status
        now = time.monotonic()
        if steps > self._seen:
            self._seen, self._last_step_at = steps, now
        ended = status is not self.status and not r.live  # finished, stopped or gone: show all of it now
        grew = steps > app.state.num_frames and (now - self._grown_at >= GROW_S or ended)
        ov = None
        if grew:
            self._grown_at = now
            if app._overview_done.is_set() and app.overview_error is None and (
                    now - self._overview_at >= OVERVIEW_S or ended):
                self._overview_at = now
                ov = self.overview.extend(steps)  # outside the lock: reads the new rows of every env
        if status is LiveStatus.FINISHED and self.status is not LiveStatus.FINISHED and r.layout.has_index:
            ov = compute_overview(r, steps=steps)  # with the worst reward terms, once
        with app._lock:
            if grew:
                self._grow(steps)
            if ov is not None:
                how = "live: grows with every committed step" if status is not LiveStatus.FINISHED else "complete"
                self._set_overview(ov, how)
            if status is not self.status:
                self._status_changed(status)
            self._show()
        return grew

    def _grow(self, T: int) -> None:
        app = self.app
        s = app.state
        at_edge = s.frame >= s.num_frames - 1
        s.grow(T, extend_env(self.rollout, s.data, T))
        app.gui.frame.max = max(T - 1, 1)
        app.gui.title.content = app.gui.title_line()
        for robot in app.scene.robots:  # the trail grows; the robot reads the new rows
            robot.grow(s.data)
        app.gui.set_env()
        if at_edge:  # it showed the newest step: it follows the live edge
            s.clock.seek(T - 1)
        app._refresh(force_plot=True)

    def _set_overview(self, ov, how: str) -> None:
        app = self.app
        app.overview = ov
        app.state.overview = ov
        app.overview_tab.update_overview(ov, how)
        app._mark_current()

    def _status_changed(self, status: LiveStatus) -> None:
        app, r = self.app, self.rollout
        self.status = status
        app.state.clock.hold_at_end = r.live
        if status is LiveStatus.STOPPED:
            app._report("Recording stopped", r.note)
        elif status is LiveStatus.GONE:
            app._report("Recording gone", r.note)
        elif status is LiveStatus.FINISHED:
            for client in app.server.get_clients().values():
                client.add_notification("Recording finished", f"Replaying {r.path} ({r.T} steps).", color="green")

    def _show(self) -> None:
        s = self.app.state
        since = None if self._last_step_at is None else time.monotonic() - self._last_step_at
        self.panel.show(self.rollout.status, steps=s.num_frames, behind=max(s.num_frames - 1 - s.frame, 0), since=since,
                        note=self.rollout.note, path=str(self.rollout.path))
        if self.policy is not None:
            self.policy.show()

    def jump_to_latest(self) -> None:
        """Show the newest committed step (and follow the live edge from there)."""
        app = self.app
        app.seek(app.state.num_frames - 1)
        with app._lock:
            self._show()


__all__ = ["POLL_S", "LiveFollower"]
