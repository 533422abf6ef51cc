"""The Plots tab (viser handles): any per-step field of the selected env over the plot window.

Pick a field in the searchable "Field" list (obs dimensions by name, actions, base coordinates,
link heights, extras; each offered with its group, so typing ``link`` or ``obs`` finds them) and
press "Add to plot"; up to `MAX_CHANNELS` share one chart with a
marker at the current frame. In compare mode each field is drawn for the two rollouts shown (A
solid, B dashed).
"""

from __future__ import annotations

import threading

import numpy as np
import viser

from rollrec.viewer.fields import Channel, FieldCache, channel_groups, find_channel, option
from rollrec.viewer.text import md, pick
from rollrec.viewer.plots import PLOT_COLORS, WindowPlot
from rollrec.viewer.state import ReplayState

MAX_CHANNELS = 6
PICK_NOTE = ("Pick a field (type to search by name or group: obs, act, base, link, ...) and press "
             "*Add to plot*.")


class FieldsTab:
    """Built inside the current GUI container (a tab), for ``state``."""

    def __init__(self, gui: viser.GuiApi, container, state: ReplayState, *, lock: threading.RLock):
        self._gui = gui
        self._container = container  # re-entered to add the chart again when the fields change
        self._state = state
        self._lock = lock
        self.groups = channel_groups(state.rollout)
        self._cache_a = FieldCache(state.rollout)
        self._cache_b = FieldCache(state.other) if state.other is not None else None
        labels = tuple(option(c) for chans in self.groups.values() for c in chans)
        self.channels: list[Channel] = []
        # No hint: its tooltip covered the tab bar above; the note below says how to search instead.
        self.field = gui.add_dropdown("Field", labels or ("(no fields)",), initial_value=labels[0] if labels else None)
        self.buttons = gui.add_button_group("Plot", ("Add to plot", "Clear"))
        self.buttons.on_click(lambda e: self._button(pick(e.target.value, ("Add to plot", "Clear"))))
        self.note = gui.add_markdown(PICK_NOTE)
        self.plot: WindowPlot | None = None
        self._b_channels: list[Channel] = []

    def _button(self, which: str | None) -> None:
        with self._lock:
            if which == "Clear":
                self.clear()
                return
            if which is None:  # not one of the buttons: a client may send anything
                return
            try:
                self.add(self.field.value)
            except (KeyError, TypeError):  # the dropdown holds whatever a client sent
                self.note.content = f"⚠️ No field called {md(repr(self.field.value))}."

    def set_pair(self) -> None:
        """The shown pair changed (`ReplayState.set_pair`): read the new rollouts, redraw the chart."""
        self._cache_a = FieldCache(self._state.rollout)
        self._cache_b = FieldCache(self._state.other) if self._state.other is not None else None
        self._rebuild()

    def add(self, label: str) -> Channel:
        """Add the field called ``label`` to the chart (KeyError if there is none)."""
        channel = find_channel(self.groups, label)
        if channel not in self.channels:
            if len(self.channels) >= MAX_CHANNELS:
                self.channels.pop(0)
            self.channels.append(channel)
            self._rebuild()
        return channel

    def clear(self) -> None:
        self.channels = []
        self._rebuild()

    def _rebuild(self) -> None:
        if self.plot is not None:
            self.plot.remove()
            self.plot = None
        if not self.channels:
            self.note.content = PICK_NOTE
            return
        names = [c.label for c in self.channels]
        self.note.content = "Plotted: " + ", ".join(md(n) for n in names)
        colors = [PLOT_COLORS[i % len(PLOT_COLORS)] for i in range(len(names))]
        labels, dashes, cols = list(names), [None] * len(names), list(colors)
        self._b_channels = [c for c in self.channels if self._b_has(c)] if self._cache_b is not None else []
        if self._cache_b is not None:
            a, b = self._state.labels
            labels = [f"{a} {n}" for n in names] + [f"{b} {c.label}" for c in self._b_channels]
            dashes += [(6.0, 4.0)] * len(self._b_channels)
            cols += [colors[self.channels.index(c)] for c in self._b_channels]
        with self._container:
            self.plot = WindowPlot(self._gui, "Fields", labels,
                                   marked=range(len(names)), colors=cols, dashes=dashes, aspect=1.3)
        self.show(force=True)

    def show(self, *, force: bool = False) -> None:
        """Push the chart's data for the current frame (cheap: the env's fields are cached)."""
        if self.plot is None:
            return
        s = self._state
        lo, hi = s.plot_window()
        ys = [self._cache_a.series(s.env, c)[lo:hi] for c in self.channels]
        if self._cache_b is not None:
            ys += [self._cache_b.series(s.env, c)[lo:hi] for c in self._b_channels]
        self.plot.update(lo, ys, s.frame)

    def _b_has(self, channel: Channel) -> bool:
        """Whether rollout B has ``channel`` (same member, element in range)."""
        other = self._state.other
        if other is None or channel.key not in other:
            return False
        return channel.index < int(np.prod(other[channel.key].shape[2:], dtype=np.int64))
