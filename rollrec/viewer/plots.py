"""uPlot charts of the replay viewer (viser handles): curves over the plot window with a marker
at the current frame, and histograms.

A chart's series are fixed when it is created; every later push changes only its data. (The
browser keeps the x range of a chart across data pushes relative to the data; re-sending the
series or the title on every frame rebuilt the chart each time and left that range stale: the
blank plot of issue 15.) The current-frame marker is therefore data, not a series option: a
copy of the marked curve that is NaN except at the frame, drawn as points only, and left out
of the y scale's auto-ranging (``auto: false``: uPlot's min/max would turn NaN). A chart whose
set of curves changes is removed and added again. A chart has at most one marker (its legend
one "now" entry, not one per curve). Histogram counts are whole numbers, and so are their ticks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import viser
from viser import uplot

from rollrec.viewer.text import plain

PLOT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf")
MARKER_COLOR = "#e00000"
_SCALES = {"x": uplot.Scale(time=False)}
#: Tick spacings of a count axis: whole numbers only (uPlot's default picks 0.5, 0.25 ... for small counts).
COUNT_INCRS = tuple(float(m * 10**e) for e in range(10) for m in (1, 2, 5))


def _marker_series(label: str = "now") -> uplot.Series:
    return uplot.Series(label=label, auto=False, stroke="rgba(0,0,0,0)", width=1,
                        points=uplot.Series_Points(show=True, size=9, space=0, fill=MARKER_COLOR,
                                                   stroke=MARKER_COLOR))


def held(y: np.ndarray) -> np.ndarray:
    """``y`` (float64) with non-finite values replaced by the previous finite one (the first
    finite one at the start; zeros when none is): NaN in a curve would blank the chart."""
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    if ok.all():
        return y
    if not ok.any():
        return np.zeros_like(y)
    idx = np.where(ok, np.arange(len(y)), 0)
    np.maximum.accumulate(idx, out=idx)
    idx[: int(np.argmax(ok))] = int(np.argmax(ok))
    return y[idx]


def marker(y: np.ndarray, index: int) -> np.ndarray:
    """``y`` as NaN everywhere but ``index`` (the marker's data)."""
    out = np.full(len(y), np.nan)
    if 0 <= index < len(y):
        out[index] = y[index]
    return out


class WindowPlot:
    """Curves ``labels`` over a window of steps, with a marker at the current frame on the first
    curve of ``marked`` (indices into ``labels``; none when empty). ``widths``/``dashes``/``colors``
    style each curve."""

    def __init__(self, gui: viser.GuiApi, title: str, labels: Sequence[str], *, marked: Sequence[int] = (),
                 colors: Sequence[str] | None = None, widths: Sequence[float] | None = None,
                 dashes: Sequence[tuple[float, ...] | None] | None = None, aspect: float = 1.4,
                 order: float | None = None):
        colors = colors or [PLOT_COLORS[i % len(PLOT_COLORS)] for i in range(len(labels))]
        series = [uplot.Series(label="step")]
        for i, label in enumerate(labels):
            s = uplot.Series(label=plain(label, 80), stroke=colors[i], width=widths[i] if widths else 1.5)
            if dashes and dashes[i]:
                s["dash"] = dashes[i]
            series.append(s)
        self.marked = tuple(marked)[:1]
        series += [_marker_series() for _ in self.marked]
        self.labels = tuple(labels)
        empty = np.zeros(2)
        self.handle = gui.add_uplot(tuple([empty] * len(series)), tuple(series), title=title, aspect=aspect,
                                    legend=uplot.Legend(show=True), scales=dict(_SCALES), order=order)

    def update(self, lo: int, ys: Sequence[np.ndarray], t: int) -> None:
        """Show steps ``lo .. lo + len(ys[0]) - 1`` of each curve, marker at step ``t``. Missing
        (non-finite) values are drawn held at the last finite value (see `held`)."""
        x = np.arange(lo, lo + len(ys[0]), dtype=np.float64)
        curves = [held(y) for y in ys]
        marks = [marker(curves[i], t - lo) for i in self.marked]
        self.handle.data = (x, *curves, *marks)

    def remove(self) -> None:
        self.handle.remove()


def stairs(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A histogram as a line uPlot can draw: three points per bin (left edge, centre, right
    edge) at the bin's count. Returns ``(x [3B], y [3B])``; the centre of bin i is ``3i+1``."""
    left, right = edges[:-1], edges[1:]
    x = np.stack([left, (left + right) / 2, right], axis=1).reshape(-1)
    y = np.repeat(np.asarray(counts, np.float64), 3)
    return x.astype(np.float64), y


class HistogramPlot:
    """Histograms of one or more sets of values on shared bins (filled steps), with a marker on
    the first set's bin of the current value."""

    def __init__(self, gui: viser.GuiApi, title: str, labels: Sequence[str], *, order: float | None = None,
                 aspect: float = 2.0):
        fills = ("rgba(31,119,180,0.30)", "rgba(255,127,14,0.30)")
        series = [uplot.Series(label="return")]
        series += [uplot.Series(label=plain(label, 80), stroke=PLOT_COLORS[i], width=1.5, fill=fills[i % 2])
                   for i, label in enumerate(labels)]
        series.append(_marker_series("this episode"))
        self.labels = tuple(labels)
        empty = np.zeros(2)
        axes = (uplot.Axis(), uplot.Axis(incrs=COUNT_INCRS))  # counts: whole-number ticks
        self.handle = gui.add_uplot(tuple([empty] * len(series)), tuple(series), title=title, aspect=aspect,
                                    legend=uplot.Legend(show=True), scales=dict(_SCALES), axes=axes, order=order)
        self.edges = np.array([0.0, 1.0])

    def update(self, edges: np.ndarray, counts: Sequence[np.ndarray], current: float | None) -> None:
        """Bins ``edges`` ``[B+1]``, one ``counts`` ``[B]`` per label; marker at ``current``."""
        self.edges = np.asarray(edges, np.float64)
        x, first = stairs(self.edges, counts[0])
        ys = [first] + [stairs(self.edges, c)[1] for c in counts[1:]]
        mark = np.full(len(x), np.nan)
        if current is not None and np.isfinite(current):
            b = int(np.clip(np.searchsorted(self.edges, current, side="right") - 1, 0, len(self.edges) - 2))
            mark[3 * b + 1] = first[3 * b + 1]
        self.handle.data = (x, *ys, mark)

    def remove(self) -> None:
        self.handle.remove()
