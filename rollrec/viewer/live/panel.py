"""The live replay's controls (viser handles): the LIVE line, "Jump to latest", and, in a session
served by the rollout loop, the policy and simulation controls.

`LivePanel` sits at the top of the main panel, right above the frame readout: a line saying
whether the recording is live (and how many steps it has committed, how long ago the last
came), stopped (naming ``rollrec recover``) or finished, and a button that jumps to the newest
step and keeps the replay there. `PolicyPanel` drives a `rollrec.loop.control.PolicyControl`:
the policy on or off for the selected env or for every env (``L`` / ``Shift+L``, as the
original tool's ``l``), and pause, resume and single steps of the simulation.
"""

from __future__ import annotations

from collections.abc import Callable

import viser

from rollrec.io.live.follow import LiveStatus
from rollrec.loop.control import PolicyControl

#: What the Keys folder lists in a session with policy control (``L`` is no longer loop).
POLICY_HOTKEYS: tuple[tuple[str, str], ...] = (
    ("L", "policy off / on for the selected env (off: zero actions, or the fallback's)"),
    ("Shift+L", "policy off / on for every env"),
    ("K", "pause / resume the simulation"),
    ("J", "one simulation step (while paused)"),
)


class LivePanel:
    """The LIVE line and "Jump to latest", placed just before ``before`` (a handle's ``order``)."""

    def __init__(self, gui: viser.GuiApi, *, order: float, on_jump: Callable[[], None]):
        self.text = gui.add_markdown("⏳ **Waiting** for the first committed step…", order=order - 0.2)
        self.jump = gui.add_button("Jump to latest", icon=viser.Icon.PLAYER_TRACK_NEXT, order=order - 0.1,
                                   hint="Show the newest committed step and stay at the live edge.")
        self.jump.on_click(lambda _e: on_jump())
        self.line = ""

    def show(self, status: LiveStatus, *, steps: int, behind: int, since: float | None, note: str, path: str) -> None:
        """Say where the recording stands: ``steps`` committed, the replay ``behind`` the newest
        by that many, the last step ``since`` seconds ago (None: unknown)."""
        if status is LiveStatus.RECORDING or status is LiveStatus.WAITING:
            ago = "" if since is None else " · last step < 1 s ago" if since < 1 else f" · last step {since:.0f} s ago"
            where = "at the live edge" if behind == 0 else f"{behind:,} steps behind the live edge"
            line = f"🔴 **LIVE** · recording · {steps:,} steps committed{ago} · {where}"
            if status is LiveStatus.WAITING and steps == 0:
                line = "⏳ **Waiting** for the first committed step…"
        elif status is LiveStatus.STOPPED:
            line = f"⚠️ **Recording stopped** after {steps:,} committed steps: {note}"
        elif status is LiveStatus.FINISHED:
            line = f"✅ **Recording finished** · {steps:,} steps · replaying {path}"
        else:
            line = f"⚠️ **Recording gone**: {note}"
        self.jump.visible = status in (LiveStatus.RECORDING, LiveStatus.WAITING)
        if line != self.line:
            self.line = line
            self.text.content = line


class PolicyPanel:
    """Policy and simulation controls over ``control``; ``selected()`` is the selected env."""

    def __init__(self, gui: viser.GuiApi, control: PolicyControl, *, order: float, selected: Callable[[], int],
                 lock):
        self.control = control
        self._selected = selected
        self._lock = lock
        self.folder = gui.add_folder("Policy (live)", order=order)
        with self.folder:
            self.status = gui.add_markdown("")
            self.policy = gui.add_button_group("Policy", ("Toggle this env (L)", "Toggle all envs (Shift+L)"),
                                               hint="Off: the env gets zero actions, or the fallback's.")
            self.policy.on_click(lambda e: self.toggle(all_envs=e.target.value.startswith("Toggle all")))
            self.sim = gui.add_button_group("Simulation", ("Pause (K)", "Step (J)"))
            self.sim.on_click(lambda e: self.pause_resume() if e.target.value.startswith(("Pause", "Resume"))
                              else self.step())
        self.show()

    def toggle(self, *, all_envs: bool = False) -> None:
        with self._lock:
            self.control.toggle(None if all_envs else [self._selected()])
            self.show()

    def pause_resume(self) -> None:
        with self._lock:
            self.control.resume() if self.control.paused else self.control.pause()
            self.show()

    def step(self) -> None:
        with self._lock:
            if not self.control.paused:
                self.control.pause()
            self.control.step(1)
            self.show()

    def show(self) -> None:
        c = self.control
        on = c.policy_on()
        env = self._selected()
        here = "on" if on[env] else "**off**"
        sim = "finished" if c.finished else "paused" if c.paused else "running"
        line = (f"Policy {here} for env {env} · on for {int(on.sum()):,} of {len(on):,} envs · "
                f"simulation {sim} (step {c.loop_step:,})")
        if self.status.content != line:
            self.status.content = line
        label = ("Resume (K)" if c.paused else "Pause (K)", "Step (J)")
        if self.sim.options != label:
            self.sim.options = label


__all__ = ["POLICY_HOTKEYS", "LivePanel", "PolicyPanel"]
