"""The replay's control panel (viser GUI handles) and its hotkeys.

`ReplayGui` builds every control and readout of the main panel: playback, env selection,
view (camera, trail, ghosts, compare layout) and rewards (readout and plot). Each control calls
one method of a `Controls` object (the app); `show` writes the readouts for the current state.
Labels are what users (and the browser tests) see: "Play", "Frame", "Env", "Best", "Follow"...
The hotkeys (`HOTKEYS`) are listed in the panel's Keys folder and in the replay guide,
``docs/guides/replay.md``.

A key pressed on a focused control reaches both the control and the page's hotkeys: the frame
slider moves itself on arrows, Home and End (Mantine's slider) and the hotkey acts as well. The
slider's key move arrives first; a hotkey from the same client within `KEY_ECHO_S` undoes it
(`KeyEcho`), so one press is one action whatever has focus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import viser
from viser._messages import GuiSliderMark  # viser 1.1 exposes slider marks only as this private prop

from rollrec.viewer.camera import CAMERA_MODES
from rollrec.viewer.clock import SPEEDS
from rollrec.viewer.plots import PLOT_COLORS, WindowPlot
from rollrec.viewer.scene import run_color
from rollrec.viewer.state import LAYOUTS, ReplayState, run_letters
from rollrec.viewer.text import finite, md, pick

#: Most episode-boundary marks drawn on the frame slider.
MAX_SLIDER_MARKS = 40
#: Width / height of the reward chart: low enough that the chart with its title and legend fits in what
#: the panel shows of it in a 768 px tall window (at 1.4 it was cut).
REWARD_ASPECT = 2.2
#: Seconds between plot pushes while playing (plots are the biggest messages).
PLOT_PERIOD = 0.1

#: Seconds after the frame slider moved by a key within which a hotkey of the same client undoes that move.
KEY_ECHO_S = 0.5
#: Seconds after the last number typed in the Env box before it shows the env that number selected.
ENV_BOX_SETTLE_S = 0.8

#: (keys, what they do) of every hotkey, as the panel's Keys folder and docs/guides/replay.md list them.
HOTKEYS: tuple[tuple[str, str], ...] = (
    ("Space", "play / pause"),
    ("← / →", "step back / forward one frame"),
    ("↑ / ↓", "faster / slower"),
    ("PageUp / PageDown", "previous / next episode"),
    ("Home", "first frame"),
    ("N / P", "next / previous env"),
    ("B / W", "best / worst env"),
    ("L", "loop on / off"),
    ("F / T / S / R", "camera: follow / top / side / front"),
)


class Controls(Protocol):
    """What the GUI can ask the app to do. Every method updates the view itself."""

    def toggle_play(self) -> None: ...
    def step(self, delta: int) -> None: ...
    def seek(self, frame: int) -> None: ...
    def set_speed(self, speed: float) -> None: ...
    def change_speed(self, delta: int) -> None: ...
    def set_loop(self, loop: bool) -> None: ...
    def select_env(self, env: int) -> None: ...
    def next_env(self, delta: int) -> None: ...
    def best_env(self) -> None: ...
    def worst_env(self) -> None: ...
    def next_detail_env(self) -> None: ...
    def jump_episode(self, delta: int) -> None: ...
    def set_camera(self, mode: str) -> None: ...
    def set_trail(self, visible: bool) -> None: ...
    def set_trail_all_episodes(self, all_episodes: bool) -> None: ...
    def set_ghosts(self, visible: bool) -> None: ...
    def set_ghost_robots(self, robots: bool) -> None: ...
    def set_layout(self, layout: str) -> None: ...
    def set_pair(self, left: int, right: int) -> None: ...


def speed_label(speed: float) -> str:
    return f"{speed:g}x"


class ReplayGui:
    """The main panel for ``state`` on ``server``, wired to ``controls``. ``ghost_count``: how
    many other envs the ghosts draw (for the switch's label). ``ghost_robots``: whether ghosts
    are whole robots, or None when there is no robot model (no switch)."""

    def __init__(self, server: viser.ViserServer, state: ReplayState, controls: Controls, *, ghosts: bool,
                 ghost_count: int, names: Sequence[str] = ("A", "B"), ghost_robots: bool | None = None):
        self._server = server
        self._state = state
        self._controls = controls
        self.key_echo = KeyEcho()
        self._env_typing = False  # an env being selected from the Env box: the box keeps what is typed
        self._env_timer: threading.Timer | None = None
        self._env_timer_lock = threading.Lock()
        gui = server.gui
        r = state.rollout
        self._last_plot = 0.0

        gui.configure_theme(control_width="large")
        letters = run_letters(len(state.runs))
        if state.comparing:
            runs = " · ".join(f"{x} **{md(n)}**" for x, n in zip(letters, names))
            self.title = gui.add_markdown(f"**Compare** · {runs} · {r.N} envs × {state.num_frames} steps · dt {r.dt:g} s")
        else:
            self.title = gui.add_markdown(self.title_line())
        self.legacy_note = None
        if r.terms_are_env_means:
            self.legacy_note = gui.add_markdown("⚠️ *Recorded by the original recorder: reward terms are means over "
                                                "all envs, not this env's values.*")
        if state.detail_summary():  # format v2: what the file keeps
            gui.add_markdown(f"*Kept: {md(state.detail_summary(), 400)}.*")
        self.frame_text = gui.add_markdown("Frame")
        self.episode_text = gui.add_markdown("Episode")

        with gui.add_folder("Playback"):
            self.play = gui.add_button("Play", icon=viser.Icon.PLAYER_PLAY)
            self.play.on_click(lambda _: controls.toggle_play())
            self.frame = gui.add_slider("Frame", min=0, max=max(state.num_frames - 1, 1), step=1, initial_value=0)
            self.frame.on_update(lambda e: _number(e, lambda v: self._slider_moved(e.client_id, v)))
            steps = ("◀ Back", "Forward ▶")
            self.stepper = gui.add_button_group("Step", steps)
            self.stepper.on_click(lambda e: _option(e, steps, lambda v: controls.step(-1 if v.startswith("◀") else 1)))
            speeds = tuple(speed_label(s) for s in SPEEDS)
            self.speed = gui.add_dropdown("Speed", speeds, initial_value="1x")
            self.speed.on_update(lambda e: _option(e, speeds, lambda v: controls.set_speed(float(v[:-1])),
                                                   reset=speed_label(state.clock.speed)))
            self.loop = gui.add_checkbox("Loop", initial_value=state.clock.loop)
            self.loop.on_update(lambda e: controls.set_loop(bool(e.target.value)))

        # The recorded cameras (format v3): filled by the app (`rollrec.viewer.cameras_gui`), right under the slider.
        self.cameras_folder = gui.add_folder("Cameras") if getattr(r, "cameras", None) else None

        with gui.add_folder("Environment"):
            self.env = gui.add_number("Env", initial_value=state.env, min=-r.N, max=r.N - 1, step=1,
                                      hint=f"0..{r.N - 1}; negative counts from the end (-1: env {r.N - 1}).")
            # A typed number beyond either end selects the nearest env; the box then shows the env selected.
            self.env.on_update(lambda e: _number(e, lambda v: self._env_typed(v)))
            # A file that keeps every field for some envs or episodes only (format v2): what this env has.
            self.detail_text = gui.add_markdown("", visible=state.data.detail is not None)
            nav = ("◀ Prev", "Next ▶", "Best", "Worst") + (("Detail ▶",) if state.data.detail is not None else ())
            self.env_nav = gui.add_button_group("Go to env", nav)
            self.env_nav.on_click(lambda e: _option(e, nav, lambda v: _env_nav(controls, v)))
            episodes = ("◀ Previous", "Next ▶")
            self.episode_nav = gui.add_button_group("Episode", episodes)
            self.episode_nav.on_click(lambda e: _option(e, episodes,
                                                        lambda v: controls.jump_episode(-1 if v.startswith("◀") else 1)))

        with gui.add_folder("View"):
            cameras = tuple(m.capitalize() for m in CAMERA_MODES)
            self.camera = gui.add_button_group("Camera", cameras)
            self.camera.on_click(lambda e: _option(e, cameras, lambda v: controls.set_camera(v.lower())))
            self.camera_text = gui.add_markdown(_camera_line(state.camera_mode))
            self.trail = gui.add_checkbox("Trail", initial_value=True, hint="The base's path in the episode shown.")
            self.trail.on_update(lambda e: controls.set_trail(bool(e.target.value)))
            self.trail_all = gui.add_checkbox("Trail: all episodes", initial_value=False,
                                              hint="The base's path in every episode of the env, not the shown one's only.")
            self.trail_all.on_update(lambda e: controls.set_trail_all_episodes(bool(e.target.value)))
            label = f"Ghosts ({ghost_count} of {r.N - 1} other envs)" if ghost_count < r.N - 1 else "Ghosts (other envs)"
            self.ghosts = gui.add_checkbox(label, initial_value=ghosts,
                                           hint="Other envs' bases at this frame, as small translucent spheres.")
            self.ghosts.on_update(lambda e: controls.set_ghosts(bool(e.target.value)))
            self.ghost_robots = None
            if ghost_robots is not None:
                self.ghost_robots = gui.add_checkbox(
                    "Ghosts as robots", initial_value=ghost_robots,
                    hint="Draw the ghosts as whole translucent robots (at most 64 envs) instead of spheres; "
                         "those that would cover the selected robot are left out.")
                self.ghost_robots.on_update(lambda e: controls.set_ghost_robots(bool(e.target.value)))
            self.layout = None
            self.pair = None
            if state.comparing:
                self.layout = gui.add_dropdown("Layout", LAYOUTS, initial_value=state.layout,
                                               hint="B beside A, or both on one spot.")
                self.layout.on_update(lambda e: _option(e, LAYOUTS, controls.set_layout, reset=state.layout))
            if len(state.runs) > 2:  # which two of the rollouts stand side by side
                self.pairs = {f"{letters[i]} and {letters[j]}": (i, j)
                              for i in range(len(letters)) for j in range(i + 1, len(letters))}
                self.pair = gui.add_dropdown("Side by side", tuple(self.pairs), initial_value=pair_label(state),
                                             hint="The two rollouts shown; the Compare tab's per-env table follows.")
                self.pair.on_update(lambda e: self._pick_pair(controls, str(e.target.value)))

        with gui.add_folder("Rewards") as self._rewards_folder:
            self.rewards_text = gui.add_markdown("Rewards")
            note = " (env means)" if r.terms_are_env_means else ""
            if state.comparing:
                self._plot_order: float | None = None
                self.plot = self._pair_plot()
                self._plot_order = self.plot.handle.order  # where the chart goes back when the pair changes
            else:
                names_ = list(r.reward_term_names)
                colors = [PLOT_COLORS[i % len(PLOT_COLORS)] for i in range(len(names_))] + ["#000000"]
                self.plot = WindowPlot(gui, f"Reward terms{note}", (*names_, "total"), marked=(len(names_),),
                                       colors=colors, widths=[1.5] * len(names_) + [2.0], aspect=REWARD_ASPECT)

        with gui.add_folder("Keys", expand_by_default=False):
            self.keys_text = gui.add_markdown(keys_markdown(HOTKEYS))
        self._add_hotkeys(controls)

    def title_line(self) -> str:
        """The panel's first line: file, task, size, dt (single rollout)."""
        r = self._state.rollout
        return f"**{md(r.path.name)}** · {md(r.env_name)} · {r.N} envs × {self._state.num_frames} steps · dt {r.dt:g} s"

    def _pair_plot(self) -> WindowPlot:
        """The reward chart of compare mode: the two rollouts' totals, in their colours."""
        a, b = self._state.labels
        colors = tuple("#{:02x}{:02x}{:02x}".format(*run_color(i)) for i in self._state.pair)
        return WindowPlot(self._server.gui, f"Reward, {a} and {b}", (f"{a} total", f"{b} total"), marked=(0, 1),
                          colors=colors, widths=(2.0, 2.0), order=self._plot_order, aspect=REWARD_ASPECT)

    def _pick_pair(self, controls: Controls, label: str) -> None:
        pair = self.pairs.get(label)
        if pair is not None:  # a value that is not one of the options is ignored
            controls.set_pair(*pair)

    def set_pair(self) -> None:
        """The shown pair changed (`ReplayState.set_pair`): the reward chart's curves and the selector."""
        self.plot.remove()
        with self._rewards_folder:
            self.plot = self._pair_plot()
        if self.pair is not None:
            self.pair.value = pair_label(self._state)

    def _add_hotkeys(self, c: Controls) -> None:
        bindings = (
            ("Play / pause", "space", c.toggle_play),
            ("Step back", "arrowleft", lambda: c.step(-1)),
            ("Step forward", "arrowright", lambda: c.step(1)),
            ("Faster", "arrowup", lambda: c.change_speed(1)),
            ("Slower", "arrowdown", lambda: c.change_speed(-1)),
            ("Previous episode", "pageup", lambda: c.jump_episode(-1)),
            ("Next episode", "pagedown", lambda: c.jump_episode(1)),
            ("First frame", "home", lambda: c.seek(0)),
            ("Next env", "N", lambda: c.next_env(1)),
            ("Previous env", "P", lambda: c.next_env(-1)),
            ("Best env", "B", c.best_env),
            ("Worst env", "W", c.worst_env),
            ("Toggle loop", "L", lambda: c.set_loop(not self._state.clock.loop)),
            ("Camera: follow", "F", lambda: c.set_camera("follow")),
            ("Camera: top", "T", lambda: c.set_camera("top")),
            ("Camera: side", "S", lambda: c.set_camera("side")),
            ("Camera: front", "R", lambda: c.set_camera("front")),
        )
        self.commands = []
        for label, key, fn in bindings:
            self.bind(label, key, fn)

    def bind(self, label: str, key: str, fn, *, modifier: str | None = None) -> None:
        """Make hotkey ``key`` (with ``modifier``) call ``fn``, replacing what it did (e.g. a live
        session's ``L`` toggles the policy instead of looping: `rollrec.viewer.live`)."""
        for cmd in [c for c in self.commands if c.hotkey == key and c.modifier == modifier]:
            cmd.remove()
            self.commands.remove(cmd)
        cmd = self._server.gui.add_command(label, hotkey=key, modifier=modifier)  # type: ignore[arg-type]
        cmd.on_trigger(lambda e: self._hotkey(e.client_id, fn))
        self.commands.append(cmd)

    def _hotkey(self, client: int | None, fn: Callable[[], object]) -> None:
        """A hotkey of ``client``: first undo a frame-slider move the same key press made (`KeyEcho`)."""
        before = self.key_echo.hotkey(client)
        if before is not None:
            self._controls.seek(before)
        fn()

    def _slider_moved(self, client: int | None, value: float) -> None:
        s = self._state
        frame = int(min(max(value, 0), s.num_frames - 1))
        if self.key_echo.slider(client, s.frame, frame, s.num_frames):
            self._controls.seek(frame)
        else:  # the slider's own move by a key whose hotkey already acted: set it back
            self.frame.value = s.frame

    def _env_typed(self, value: float) -> None:
        """A number typed in the Env box: select it (negative from the end, beyond either end the
        nearest env) and, once typing pauses (`ENV_BOX_SETTLE_S`), show the env selected there
        (showing it at once would splice it into the number being typed)."""
        n = self._state.num_envs
        self._env_typing = True
        try:
            self._controls.select_env(int(min(max(value, -n), n - 1)))
        finally:
            self._env_typing = False
        if value != self._state.env:
            with self._env_timer_lock:
                if self._env_timer is not None:
                    self._env_timer.cancel()
                self._env_timer = threading.Timer(ENV_BOX_SETTLE_S, self.settle_env_box)
                self._env_timer.daemon = True
                self._env_timer.start()

    def settle_env_box(self) -> None:
        """Show the selected env's number in the Env box."""
        with self._env_timer_lock:
            self._env_timer = None
        try:
            self.env.value = self._state.env
        except Exception:  # noqa: BLE001 (a timer thread: the server may have stopped meanwhile)
            pass

    def close(self) -> None:
        """Cancel the Env box's pending update."""
        with self._env_timer_lock:
            if self._env_timer is not None:
                self._env_timer.cancel()
                self._env_timer = None

    # ---- readouts --------------------------------------------------------------------------
    def set_env(self) -> None:
        """Refresh what depends on the selected env: env number, slider marks."""
        s = self._state
        if not self._env_typing:
            self.env.value = s.env
        starts = s.data.episodes[1:, 0]
        if len(starts) > MAX_SLIDER_MARKS:
            starts = starts[np.linspace(0, len(starts) - 1, MAX_SLIDER_MARKS).astype(int)]
        marks = [GuiSliderMark(float(b), None) for b in starts]
        if s.data.policy is not None:  # where the policy was switched off (and back on), labelled
            edges = np.flatnonzero(np.diff(np.r_[True, s.data.policy, True].astype(np.int8)))
            for i, t in enumerate(edges[: 2 * MAX_SLIDER_MARKS].tolist()):
                if t < s.num_frames:
                    marks.append(GuiSliderMark(float(t), "policy off" if i % 2 == 0 else "on"))
        self.frame._marks = tuple(marks)

    def set_camera_mode(self, mode: str) -> None:
        self.camera_text.content = _camera_line(mode)

    def plot_due(self, force: bool) -> bool:
        """Whether the plots should be pushed now: always when ``force`` or paused, else at
        most every `PLOT_PERIOD` seconds."""
        now = time.monotonic()
        if force or not self._state.clock.playing or now - self._last_plot >= PLOT_PERIOD:
            self._last_plot = now
            return True
        return False

    def show(self, *, plot: bool) -> None:
        """Write the readouts for the current frame (and the reward plot when ``plot``)."""
        s = self._state
        t = s.frame
        policy = "" if s.data.policy is None or s.data.policy[t] else " · ⛔ policy off"
        self.frame_text.content = f"**{s.frame_status()}**{policy}"
        self.episode_text.content = s.episode_status()
        detail = s.detail_status()
        if detail:
            self.detail_text.content = f"*{md(detail, 400)}*"
        self.frame.value = t
        self.play.label = "Pause" if s.clock.playing else "Play"
        self.play.icon = viser.Icon.PLAYER_PAUSE if s.clock.playing else viser.Icon.PLAYER_PLAY
        self.rewards_text.content = self._reward_table()
        if plot:
            lo, hi = s.plot_window()
            if s.data_b is not None:
                self.plot.update(lo, [s.data.rew[lo:hi], s.data_b.rew[lo:hi]], t)
            else:
                self.plot.update(lo, [*s.data.rew_terms[lo:hi].T, s.data.rew[lo:hi]], t)

    def _reward_table(self) -> str:
        s = self._state
        t = s.frame
        rows = s.reward_readout()
        if s.data_b is not None:
            b = dict(s.reward_readout_b())
            la, lb = s.labels
            lines = [f"| term | {la} | {lb} |", "|---|---:|---:|"]
            for name, v in rows[:-1]:
                lines.append(f"| {md(name)} | {v:+.3f} | {b[name]:+.3f} |" if name in b else f"| {md(name)} | {v:+.3f} | |")
            lines.append(f"| **total** | **{rows[-1][1]:+.3f}** | **{b['total']:+.3f}** |")
            lines.append(f"| return so far | {s.data.return_so_far[t]:+.2f} | {s.data_b.return_so_far[t]:+.2f} |")
            return "\n".join(lines)
        cells = [f"{md(n)} | {v:+.3f}" for n, v in rows[:-1]]
        cells += [f"**total** | **{rows[-1][1]:+.3f}**", f"return so far | {s.data.return_so_far[t]:+.2f}"]
        if len(cells) % 2:
            cells.append(" | ")
        half = len(cells) // 2  # two columns of (term, value): half the height
        lines = ["| term | value | term | value |", "|---|---:|---|---:|"]
        lines += [f"| {a} | {b} |" for a, b in zip(cells[:half], cells[half:])]
        return "\n".join(lines)


class KeyEcho:
    """Tells a key press that reached both the frame slider and a hotkey (`ReplayGui`).

    A focused Mantine slider moves itself on arrows (one step), Home and End (first, last value)
    and sends its new value before the hotkey's trigger arrives. `slider` notes such a move and
    `hotkey` returns the frame from before it, to be restored before the hotkey acts, when the
    same client's hotkey follows within `KEY_ECHO_S`. Should the trigger arrive first, `slider`
    refuses the slider's move instead. Moves by the mouse or by a client other than the
    hotkey's are left alone. Thread-safe (viser calls back from its thread pool)."""

    def __init__(self, now: Callable[[], float] = time.monotonic):
        self._now = now
        self._lock = threading.Lock()
        self._move: tuple[int, int, float] | None = None  # (client, frame before, when)
        self._key: tuple[int, float] | None = None  # (client, when) of the last hotkey

    def slider(self, client: int | None, before: int, after: int, num_frames: int) -> bool:
        """The slider of ``client`` moved from ``before`` to ``after``: whether to follow it (False:
        it is the slider's share of a key press whose hotkey already acted)."""
        keyish = client is not None and after != before and (abs(after - before) == 1 or after in (0, num_frames - 1))
        now = self._now()
        with self._lock:
            self._move = (client, before, now) if keyish else None  # type: ignore[assignment]
            key, self._key = self._key, None
        if keyish and key is not None and key[0] == client and now - key[1] <= KEY_ECHO_S:
            with self._lock:
                self._move = None
            return False
        return True

    def hotkey(self, client: int | None) -> int | None:
        """A hotkey of ``client`` arrived: the frame to restore first (the slider's key move just
        before it), else None."""
        now = self._now()
        with self._lock:
            move, self._move = self._move, None
            undo = move is not None and client is not None and move[0] == client and now - move[2] <= KEY_ECHO_S
            self._key = None if undo or client is None else (client, now)  # type: ignore[assignment]
        return move[1] if undo and move is not None else None


def keys_markdown(hotkeys: tuple[tuple[str, str], ...]) -> str:
    """The Keys folder's list."""
    return "\n".join(f"- **{k}**: {what}" for k, what in hotkeys)


def pair_label(state: ReplayState) -> str:
    """How the "Side by side" selector names the shown pair, e.g. ``A and C``."""
    a, b = state.labels
    return f"{a} and {b}"


def _camera_line(mode: str) -> str:
    if mode == "follow":
        return "Camera: follow (orbit or zoom freely; it keeps tracking the robot)"
    return f"Camera: {mode} (fixed)"


def _option(event, options, act, *, reset: str | None = None) -> None:
    """``act(value)`` when the value a client sent is one of ``options`` (the viewer's own: a
    client can change a handle's options too); else nothing (a dropdown is set back to ``reset``):
    viser passes on whatever a client sends."""
    value = pick(event.target.value, tuple(options))
    if value is not None:
        act(value)
    elif reset is not None:
        event.target.value = reset


def _number(event, act) -> None:
    """``act(value)`` when the value a client sent is a finite number; else nothing."""
    value = finite(event.target.value)
    if value is not None:
        act(value)


def _env_nav(c: Controls, option: str) -> None:
    if option.startswith("◀"):
        c.next_env(-1)
    elif option.startswith("Next"):
        c.next_env(1)
    elif option.startswith("Detail"):  # the next env that holds every field somewhere
        c.next_detail_env()
    elif option == "Best":
        c.best_env()
    else:
        c.worst_env()
