"""The Overview and Compare tabs (viser handles): every env at a glance.

`OverviewTab` shows the `Overview` of the rollout: a summary line, a histogram of episode
returns (of the episodes the filter keeps, the current episode marked) and the episode table;
clicking a row jumps to that env and episode. `CompareTab` shows the verdict of every rollout
against the first (``rollrec compare``'s tables) and the per-env return differences of the two
rollouts shown; clicking a row selects that env. Both are built empty and filled once computed
(in the background).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import viser

from rollrec.stats.report import comparison_markdown, escape_markdown, runs_markdown
from rollrec.viewer.overview.compare import EnvDifferences, difference_columns
from rollrec.viewer.overview.episodes import Overview, histogram
from rollrec.viewer.plots import HistogramPlot
from rollrec.viewer.overview.table import END_LABELS, FILTER_HELP, TableModel, env_mask, episode_columns, parse_filter
from rollrec.viewer.overview.table_gui import ButtonTable
from rollrec.viewer.text import md, pick

TABLE_ROWS = 12
HIST_BINS = 40


class OverviewTab:
    """Built inside the current GUI container; ``on_episode(env, start)`` jumps to an episode."""

    def __init__(self, gui: viser.GuiApi, container, *, lock: threading.RLock,
                 on_episode: Callable[[int, int], None]):
        self._gui = gui
        self._container = container  # re-entered by set_overview, which runs on another thread
        self._lock = lock
        self._on_episode = on_episode
        self.overview: Overview | None = None
        self.status = gui.add_markdown("Computing the overview of every env…")
        self.progress = gui.add_progress_bar(0.0, animated=True)
        self.histogram: HistogramPlot | None = None
        self.table: ButtonTable | None = None
        self.ended: viser.GuiDropdownHandle | None = None
        self.filter: viser.GuiTextHandle | None = None
        self.filter_note: viser.GuiMarkdownHandle | None = None
        self._current = (-1, -1)  # (env, row of its current episode)

    def set_progress(self, fraction: float) -> None:
        self.progress.value = 100.0 * fraction

    def set_overview(self, ov: Overview, seconds: float) -> None:
        """Fill the tab with ``ov`` (computed in ``seconds``). Call with the lock held."""
        with self._container:
            self._fill(ov, seconds)

    def _fill(self, ov: Overview, seconds: float) -> None:
        gui = self._gui
        self.overview = ov
        self.progress.remove()
        self.status.content = self._summary(ov, f"computed in {seconds:.2f} s")
        self.histogram = HistogramPlot(gui, "Episode returns (filtered)", ("episodes",))
        self.ended = gui.add_dropdown("Ended by", ("any", *END_LABELS), initial_value="any")  # the End column's words
        self.filter = gui.add_text("Filter", "", hint=f"Space-separated: {FILTER_HELP}.")
        self.filter_note = gui.add_markdown("")
        self.ended.on_update(lambda _e: self._apply_filter())
        self.filter.on_update(lambda _e: self._apply_filter())
        model = TableModel(episode_columns(ov), page_size=TABLE_ROWS)
        self.table = ButtonTable(gui, model, lock=self._lock, on_row=self._jump,
                                 is_current=lambda row: row == self._current[1])
        self._draw_histogram()

    @staticmethod
    def _summary(ov: Overview, how: str) -> str:
        c = ov.counts()
        return (f"**{ov.num_envs:,} envs · {len(ov):,} episodes** ({c['termination']:,} terminated, "
                f"{c['time-out']:,} time-outs, {c['unfinished']:,} unfinished at the end) · {how}")

    def update_overview(self, ov: Overview, how: str) -> None:
        """Show ``ov`` instead of the overview shown (a recording in progress committed more
        steps), keeping the sort, the filter and the page; ``how`` ends the summary line. Call
        with the lock held."""
        if self.table is None or self.overview is None:
            self.set_overview(ov, 0.0)
            self.status.content = self._summary(ov, how)
            return
        old = self.table.model
        model = TableModel(episode_columns(ov), page_size=TABLE_ROWS, sort_by=old.sort_by, descending=old.descending)
        self.overview = ov
        try:
            model.set_filter(parse_filter(self.filter.value, ov, self.ended.value))
        except ValueError:
            model.set_filter(np.zeros(len(ov), bool))  # the note under the filter says why already
        model.page = min(old.page, model.num_pages - 1)
        self.table.set_model(model)
        self._current = (-1, -1)
        self.status.content = self._summary(ov, how)
        self._draw_histogram()

    def _jump(self, row: int) -> None:
        ov = self.overview
        assert ov is not None
        self._on_episode(int(ov.env[row]), int(ov.start[row]))

    def _apply_filter(self) -> None:
        with self._lock:
            assert self.overview is not None and self.table is not None
            ended = pick(self.ended.value, ("any", *END_LABELS))
            if ended is None:  # not one of the options: a client may send anything
                self.ended.value = "any"
                return
            # A filter that cannot be read shows no rows (and says why), as one that matches nothing
            # does: the rows of the filter before it would look like its result.
            try:
                mask = parse_filter(str(self.filter.value), self.overview, ended)
                self.filter_note.content = ""
            except ValueError as exc:
                mask = np.zeros(len(self.overview), bool)
                self.filter_note.content = f"⚠️ {md(exc, 300)}: no rows shown."
            self.table.model.set_filter(mask)
            self.table.refresh()
            self._draw_histogram()

    def _draw_histogram(self) -> None:
        ov = self.overview
        assert ov is not None and self.histogram is not None and self.table is not None
        rows = self.table.model.order()
        edges, counts = histogram(ov.ret[rows], HIST_BINS)
        row = self._current[1]
        self.histogram.update(edges, [counts], float(ov.ret[row]) if row >= 0 else None)

    def set_current(self, env: int, frame: int) -> None:
        """Mark the episode of ``env`` at ``frame`` (histogram marker, ▶ in the table)."""
        ov = self.overview
        if ov is None or self.table is None:
            return
        try:
            row = ov.find(env, frame)
        except IndexError:
            row = -1
        if (env, row) == self._current:
            return
        self._current = (env, row)
        self.table.refresh_marks()
        self._draw_histogram()


class CompareTab:
    """Compare mode: the verdict of every rollout against the first (`set_verdict`: the tables of
    ``rollrec compare``, from `rollrec.stats`), then the per-env differences of the two rollouts
    shown (`set_differences`); clicking a row calls ``on_env(env)``."""

    def __init__(self, gui: viser.GuiApi, container, *, lock: threading.RLock, on_env: Callable[[int], None],
                 names: Sequence[str], notes: list[str], letters: Sequence[str] | None = None):
        self._gui = gui
        self._container = container
        self._lock = lock
        self._on_env = on_env
        self.names = tuple(names)
        self.letters = tuple(letters) if letters is not None else tuple("AB")
        lines = [" · ".join(f"**{x}** {md(n)}" for x, n in zip(self.letters, self.names))]
        lines += [f"- {md(n)}" for n in notes]
        gui.add_markdown("\n".join(lines))
        self.verdict = gui.add_markdown("Computing the verdict (each rollout against A: bootstrap over envs)…")
        self.result: dict | None = None
        self.summary = gui.add_markdown("Computing the per-env returns…")
        self.histogram: HistogramPlot | None = None
        self.filter: viser.GuiTextHandle | None = None
        self.table: ButtonTable | None = None
        self.differences: EnvDifferences | None = None
        self.labels = self.letters[:2]
        self._env = -1

    def set_verdict(self, result: dict) -> None:
        """Show a `rollrec.stats.compare.compare` result: the runs, then each rollout against the first
        (call with the lock held)."""
        self.result = result
        parts = [runs_markdown(result)] + [comparison_markdown(result, i) for i in range(len(result["comparisons"]))]
        self.verdict.content = "\n\n".join(parts)

    def set_verdict_error(self, message: str) -> None:
        self.verdict.content = f"⚠️ No verdict: {escape_markdown(message)}"

    def set_differences(self, d: EnvDifferences, ov_a: Overview, ov_b: Overview,
                        labels: tuple[str, str] = ("A", "B")) -> None:
        """Fill (or refill, for another pair) the per-env part (call with the lock held)."""
        with self._container:
            self._fill(d, ov_a, ov_b, labels)

    def _fill(self, d: EnvDifferences, ov_a: Overview, ov_b: Overview, labels: tuple[str, str]) -> None:
        self.differences = d
        self.labels = labels
        self.summary.content = d.summary(labels)
        order = None
        if self.histogram is not None:
            order = self.histogram.handle.order
            self.histogram.remove()
        self.histogram = HistogramPlot(self._gui, f"Episode returns, {labels[0]} and {labels[1]}", labels, order=order)
        lo = min(float(ov_a.ret.min()), float(ov_b.ret.min()))
        hi = max(float(ov_a.ret.max()), float(ov_b.ret.max()))
        edges = histogram(np.array([lo, hi]), HIST_BINS)[0]
        self.histogram.update(edges, [np.histogram(ov.ret, edges)[0] for ov in (ov_a, ov_b)], None)
        model = TableModel(difference_columns(d, labels), page_size=TABLE_ROWS, sort_by=f"{labels[1]}−{labels[0]}")
        if self.table is not None:
            model.set_filter(self.table.model.filter_mask)
            self.table.set_model(model)
            return
        self.filter = self._gui.add_text("Envs", "", hint="Env numbers or ranges to show, e.g. 0-99 512")
        self.filter.on_update(lambda _e: self._apply_filter())
        self.table = ButtonTable(self._gui, model, lock=self._lock, on_row=self._on_env,
                                 is_current=lambda row: row == self._env)

    def _apply_filter(self) -> None:
        with self._lock:
            assert self.table is not None and self.filter is not None and self.differences is not None
            try:
                mask = env_mask(str(self.filter.value), len(self.differences.delta))
            except ValueError as exc:
                self.summary.content = f"⚠️ {md(exc, 300)}"
                return
            self.summary.content = self.differences.summary(self.labels)
            self.table.model.set_filter(mask)
            self.table.refresh()

    def set_current(self, env: int) -> None:
        if env != self._env:
            self._env = env
            if self.table is not None:
                self.table.refresh_marks()
