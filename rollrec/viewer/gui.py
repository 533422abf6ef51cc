"""The control panel of the replay viewer (viser GUI handles) and its hotkeys.

`ReplayGui` builds every control and readout; each control calls one method of a `Controls`
object (the app), and `show` writes the readouts for the current state. Labels are what users
(and the browser test) see: "Play", "Frame", "Env", "Best", "Follow"...
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np
import viser
import viser.uplot as uplot
from viser._messages import GuiSliderMark  # viser 1.1 exposes slider marks only as this private prop

from rollrec.viewer.clock import SPEEDS
from rollrec.viewer.state import CAMERA_MODES, ReplayState

#: Longest stretch of steps the reward plot shows (around the current frame, within its episode).
PLOT_WINDOW = 400
#: Most episode-boundary marks drawn on the frame slider.
MAX_SLIDER_MARKS = 40
_PLOT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")

#: (keys, what they do) of every hotkey, as the GUI and the README list them.
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
    def jump_episode(self, delta: int) -> None: ...
    def set_camera(self, mode: str) -> None: ...
    def set_trail(self, visible: bool) -> None: ...
    def set_ghosts(self, visible: bool) -> None: ...


def speed_label(speed: float) -> str:
    return f"{speed:g}x"


class ReplayGui:
    """All GUI elements for ``state`` on ``server``, wired to ``controls``."""

    def __init__(self, server: viser.ViserServer, state: ReplayState, controls: Controls, *, ghosts: bool):
        self._server = server
        self._state = state
        gui = server.gui
        r = state.rollout
        self._last_plot = 0.0

        gui.configure_theme(control_width="large")
        gui.add_markdown(f"**{r.path.name}** · {r.env_name} · {r.N} envs × {r.T} steps · dt {r.dt:g} s")
        self.legacy_note = None
        if r.terms_are_env_means:
            self.legacy_note = gui.add_markdown("⚠️ *Recorded by the original recorder: reward terms are means over all envs, "
                             "not this env's values.*")
        self.frame_text = gui.add_markdown("Frame")
        self.episode_text = gui.add_markdown("Episode")

        with gui.add_folder("Playback"):
            self.play = gui.add_button("Play", icon=viser.Icon.PLAYER_PLAY)
            self.play.on_click(lambda _: controls.toggle_play())
            self.frame = gui.add_slider("Frame", min=0, max=max(r.T - 1, 1), step=1, initial_value=0)
            self.frame.on_update(lambda e: controls.seek(int(e.target.value)))
            self.stepper = gui.add_button_group("Step", ("◀ Back", "Forward ▶"))
            self.stepper.on_click(lambda e: controls.step(-1 if e.target.value.startswith("◀") else 1))
            self.speed = gui.add_dropdown("Speed", tuple(speed_label(s) for s in SPEEDS), initial_value="1x")
            self.speed.on_update(lambda e: controls.set_speed(float(e.target.value[:-1])))
            self.loop = gui.add_checkbox("Loop", initial_value=state.clock.loop)
            self.loop.on_update(lambda e: controls.set_loop(bool(e.target.value)))

        with gui.add_folder("Environment"):
            self.env = gui.add_number("Env", initial_value=state.env, min=0, max=r.N - 1, step=1)
            # A typed number outside 0..N-1 selects the nearest env rather than failing.
            self.env.on_update(lambda e: controls.select_env(min(max(int(e.target.value), 0), r.N - 1)))
            self.env_nav = gui.add_button_group("Go to env", ("◀ Prev", "Next ▶", "Best", "Worst"))
            self.env_nav.on_click(lambda e: _env_nav(controls, e.target.value))
            self.episode_nav = gui.add_button_group("Episode", ("◀ Previous", "Next ▶"))
            self.episode_nav.on_click(lambda e: controls.jump_episode(-1 if e.target.value.startswith("◀") else 1))

        with gui.add_folder("Camera"):
            self.camera = gui.add_button_group("View", tuple(m.capitalize() for m in CAMERA_MODES))
            self.camera.on_click(lambda e: controls.set_camera(e.target.value.lower()))
            self.camera_text = gui.add_markdown(f"Camera: {state.camera_mode}")

        with gui.add_folder("Rewards"):
            note = " (env means)" if r.terms_are_env_means else ""
            self.rewards_text = gui.add_markdown("Rewards")
            names = list(r.reward_term_names) + ["total"]
            series = [uplot.Series(label="step")]
            series += [uplot.Series(label=n, stroke=_PLOT_COLORS[i % len(_PLOT_COLORS)], width=1.5)
                       for i, n in enumerate(names[:-1])]
            series += [uplot.Series(label="total", stroke="#000000", width=2.0), _marker_series(0)]
            self._series = tuple(series)
            x = np.zeros(2)
            self.plot = gui.add_uplot(
                tuple([x] * len(series)), self._series, title=f"Reward terms{note}, env {state.env}",
                aspect=1.4, legend=uplot.Legend(show=True), scales={"x": uplot.Scale(time=False)},
            )

        with gui.add_folder("Scene", expand_by_default=False):
            self.trail = gui.add_checkbox("Trail", initial_value=True)
            self.trail.on_update(lambda e: controls.set_trail(bool(e.target.value)))
            self.ghosts = gui.add_checkbox("Ghosts (other envs)", initial_value=ghosts)
            self.ghosts.on_update(lambda e: controls.set_ghosts(bool(e.target.value)))

        with gui.add_folder("Keys", expand_by_default=False):
            gui.add_markdown("\n".join(f"- **{k}**: {what}" for k, what in HOTKEYS))
        self._add_hotkeys(controls)

    def _add_hotkeys(self, c: Controls) -> None:
        gui = self._server.gui
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
            cmd = gui.add_command(label, hotkey=key)  # type: ignore[arg-type]
            cmd.on_trigger(lambda _e, fn=fn: fn())
            self.commands.append(cmd)

    # ---- readouts --------------------------------------------------------------------------
    def set_env(self) -> None:
        """Refresh what depends on the selected env: env number, slider marks, plot title."""
        s = self._state
        self.env.value = s.env
        starts = s.data.episodes[1:, 0]
        if len(starts) > MAX_SLIDER_MARKS:
            starts = starts[np.linspace(0, len(starts) - 1, MAX_SLIDER_MARKS).astype(int)]
        self.frame._marks = tuple(GuiSliderMark(float(b), None) for b in starts)
        self.plot.title = f"Reward terms{' (env means)' if s.rollout.terms_are_env_means else ''}, env {s.env}"

    def show(self, *, force_plot: bool = False) -> None:
        """Write the readouts for the current frame. The plot is pushed at most 10 times a
        second while playing (it is the biggest message), always when ``force_plot``."""
        s = self._state
        t = s.frame
        self.frame_text.content = f"**{s.frame_status()}**"
        self.episode_text.content = s.episode_status()
        self.frame.value = t
        self.play.label = "Pause" if s.clock.playing else "Play"
        self.play.icon = viser.Icon.PLAYER_PAUSE if s.clock.playing else viser.Icon.PLAYER_PLAY
        rows = s.reward_readout()
        cells = [f"{n} | {v:+.3f}" for n, v in rows[:-1]]
        cells += [f"**total** | **{rows[-1][1]:+.3f}**", f"return so far | {s.data.return_so_far[t]:+.2f}"]
        if len(cells) % 2:
            cells.append(" | ")
        half = len(cells) // 2  # two columns of (term, value): half the height
        lines = ["| term | value | term | value |", "|---|---:|---|---:|"]
        lines += [f"| {a} | {b} |" for a, b in zip(cells[:half], cells[half:])]
        self.rewards_text.content = "\n".join(lines)
        now = time.monotonic()
        if force_plot or not s.clock.playing or now - self._last_plot >= 0.1:
            self._last_plot = now
            self._show_plot(t)

    def _show_plot(self, t: int) -> None:
        d = self._state.data
        e = int(d.episode_of[t])
        lo, hi = int(d.episodes[e, 0]), int(d.episodes[e, 1])
        if hi - lo > PLOT_WINDOW:
            lo = min(max(t - PLOT_WINDOW // 2, lo), hi - PLOT_WINDOW)
            hi = lo + PLOT_WINDOW
        x = np.arange(lo, hi, dtype=np.float64)
        if hi - lo < 2:  # uPlot needs two points to draw a line
            x = np.array([lo, lo + 1], dtype=np.float64)
        sl = slice(int(x[0]), int(x[0]) + len(x))
        terms = d.rew_terms[sl]
        total = d.rew[sl]
        pad = len(x) - len(total)
        if pad:  # a one-step episode at the very end: repeat its value
            terms = np.pad(terms, ((0, pad), (0, 0)), mode="edge")
            total = np.pad(total, (0, pad), mode="edge")
        # The current frame is one point of a copy of "total", drawn alone (uPlot's points filter).
        self.plot.series = (*self._series[:-1], _marker_series(t - int(x[0])))
        self.plot.data = (x, *terms.T, total, total)


def _marker_series(index: int) -> uplot.Series:
    """A series that draws only point ``index`` (the current frame) as a red dot, no line."""
    return uplot.Series(label="now", stroke="rgba(0,0,0,0)", width=1,
                        points=uplot.Series_Points(show=True, size=10, space=0, fill="#e00000", stroke="#e00000",
                                                   filter=(float(index),)))

def _env_nav(c: Controls, option: str) -> None:
    if option.startswith("◀"):
        c.next_env(-1)
    elif option.startswith("Next"):
        c.next_env(1)
    elif option == "Best":
        c.best_env()
    else:
        c.worst_env()
