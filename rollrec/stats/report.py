"""A `compare` result as text: aligned columns for a terminal, or Markdown tables.

``rollrec compare`` prints `text` (or `markdown` with ``--markdown``); the viewer's Compare tab
shows `runs_markdown` and `comparison_markdown`: the same strings from the same numbers, so the
command line and the browser always agree to the last digit shown.

Numbers are rounded to what their interval can tell apart: each row shows as many decimals as give
its interval's half-width two significant digits; rates are percentages, their differences
percentage points (pp). Everything taken from a file (names, reward terms, notes) is escaped for
Markdown and HTML in the Markdown forms.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

from rollrec.stats.compare import BETTER, WORSE

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # emphasis, code, links, table cells, strike-through


def escape_markdown(text: Any) -> str:
    """``text`` safe inside Markdown (and the HTML it becomes): no markup, no tags, no table cells."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=True)).replace("\n", " ")


def _decimals(*values: float | None, half: float | None = None) -> int:
    """Decimals that give ``half`` (an interval's half-width) two significant digits, else four
    significant digits of the largest value; between 0 and 6."""
    ref = half if half is not None and half > 0 and math.isfinite(half) else None
    if ref is None:
        finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
        if not finite:
            return 2
        return int(min(6, max(0, 3 - math.floor(math.log10(max(finite))))))
    return int(min(6, max(0, 1 - math.floor(math.log10(ref)))))


def _fmt(x: float | None, decimals: int, *, signed: bool = False, scale: float = 1.0, unit: str = "") -> str:
    if x is None:
        return "–"
    return f"{x * scale:{'+' if signed else ''},.{decimals}f}{unit}"


def metric_cells(m: dict[str, Any]) -> dict[str, str]:
    """The text of one metric row of a comparison: ``label``, ``baseline``, ``run``, ``difference``,
    ``interval``, ``detectable``, ``verdict``."""
    rate = m["metric"] == "termination"
    scale = 100.0 if rate else 1.0
    unit, dunit = ("%", " pp") if rate else ("", "")
    low, high = m["low"], m["high"]
    half = (high - low) / 2 * scale if low is not None and high is not None else None
    d = _decimals(*(None if v is None else v * scale for v in (m["baseline"], m["run"], m["difference"])), half=half)
    return {
        "label": m["label"],
        "baseline": _fmt(m["baseline"], d, scale=scale, unit=unit),
        "run": _fmt(m["run"], d, scale=scale, unit=unit),
        "difference": _fmt(m["difference"], d, signed=True, scale=scale, unit=dunit),
        "interval": "–" if half is None else f"[{_fmt(low, d, signed=True, scale=scale)}, "
                                              f"{_fmt(high, d, signed=True, scale=scale)}]{dunit}",
        "detectable": _fmt(m["detectable"], d, scale=scale, unit=dunit),
        "verdict": m["verdict"],
    }


def run_cells(r: dict[str, Any]) -> dict[str, str]:
    """The text of one run's row: ``name``, ``envs``, ``completed``, ``terminated``, ``truncated``,
    ``unfinished``, ``mean``, ``iqm``, ``termination``, ``length``."""
    e = r["episodes"]
    mean, iqm = r["return"]["mean"], r["return"]["iqm"]
    d = _decimals(mean, iqm)
    steps = r["length"]["steps"]
    return {"name": r["name"], "envs": f"{r['envs']:,}", "completed": f"{e['completed']:,}",
            "terminated": f"{e['terminated']:,}", "truncated": f"{e['truncated']:,}", "unfinished": f"{e['unfinished']:,}",
            "mean": _fmt(mean, d), "iqm": _fmt(iqm, d), "termination": _fmt(r["termination_rate"], 2, scale=100, unit="%"),
            "length": _fmt(steps, _decimals(steps))}


_RUN_HEADER = {"name": "run", "envs": "envs", "completed": "completed", "terminated": "terminated",
               "truncated": "time-outs", "unfinished": "unfinished", "mean": "mean return", "iqm": "IQM return",
               "termination": "termination", "length": "length (steps)"}


def _metric_header(result: dict[str, Any], c: dict[str, Any]) -> dict[str, str]:
    return {"label": "metric", "baseline": "A", "run": "B", "difference": "B − A",
            "interval": f"{result['level'] * 100:g}% interval", "detectable": "detectable", "verdict": "verdict"}


def letters(n: int) -> list[str]:
    """``A``, ``B``, ... (``A1``... past Z) for ``n`` runs: how tables name them."""
    return [chr(ord("A") + i) if i < 26 else f"A{i}" for i in range(n)]


def headline(result: dict[str, Any], c: dict[str, Any], metrics: list[str] | None = None) -> str:
    """One line on the ``metrics`` (default: mean return): ``B vs A: worse (mean return -2.64 [-4.41,
    -0.87])``; with several, ``B vs A: worse on mean return; better on energy (sum); no detectable
    difference on IQM return``. Overall ``worse`` when any is worse, ``better`` when one is better."""
    keys = metrics or ["mean"]
    rows = [m for m in c["metrics"] if m["metric"] in keys]
    ab = letters(len(result["runs"]))
    who = f"{ab[c['run']]} vs {ab[c['baseline']]}"
    if not rows:
        return f"{who}: no data ({'; '.join(c['notes'])})"
    if len(rows) == 1:
        m, cells = rows[0], metric_cells(rows[0])
        return f"{who}: {m['verdict']} ({m['label']} {cells['difference']} {cells['interval']})"
    groups: dict[str, list[str]] = {}
    for m in rows:
        groups.setdefault(m["verdict"], []).append(m["label"])
    order = [WORSE, BETTER, "longer", "shorter", "no detectable difference", "no data"]
    return f"{who}: " + "; ".join(f"{v} on {', '.join(groups[v])}" for v in order if v in groups)


def text(result: dict[str, Any], metrics: list[str] | None = None) -> str:
    """The whole result for a terminal: the runs, then each comparison's table and headline."""
    ab = letters(len(result["runs"]))
    how = "each env's first episode" if result["first_episode"] else "all completed episodes"
    lines = [f"runs ({how}; level {result['level'] * 100:g}%, {result['resamples']} bootstrap resamples of envs, "
             f"seed {result['seed']})"]
    rows = [dict(run_cells(r), name=f"{ab[i]}  {r['name']}") for i, r in enumerate(result["runs"])]
    lines += _aligned([_RUN_HEADER, *rows], right=set(_RUN_HEADER) - {"name"})
    for i, r in enumerate(result["runs"]):
        lines += [f"  {ab[i]}: note: {n}" for n in r["notes"]]
    for c in result["comparisons"]:
        lines += ["", f"{ab[c['run']]} vs {ab[c['baseline']]} ({c['name']} vs {c['baseline_name']}): {c['pairing']}"]
        lines += [f"  note: {n}" for n in c["notes"]]
        if c["metrics"]:
            header = _metric_header(result, c)
            header.update(baseline=ab[c["baseline"]], run=ab[c["run"]], difference=f"{ab[c['run']]} − {ab[c['baseline']]}")
            lines += _aligned([header, *(metric_cells(m) for m in c["metrics"])],
                              right={"baseline", "run", "difference", "interval", "detectable"})
        lines.append(headline(result, c, metrics))
    return "\n".join(lines)


def _aligned(rows: list[dict[str, str]], right: set[str]) -> list[str]:
    keys = list(rows[0])
    width = {k: max(len(r[k]) for r in rows) for k in keys}
    return ["  ".join(r[k].rjust(width[k]) if k in right else r[k].ljust(width[k]) for k in keys).rstrip() for r in rows]


def _md_table(rows: list[dict[str, str]], right: set[str]) -> list[str]:
    """Rows (the first the header) as a Markdown table; every cell escaped (names come from files)."""
    keys = list(rows[0])
    out = ["| " + " | ".join(escape_markdown(rows[0][k]) for k in keys) + " |",
           "|" + "|".join("---:" if k in right else "---" for k in keys) + "|"]
    out += ["| " + " | ".join(escape_markdown(r[k]) for k in keys) + " |" for r in rows[1:]]
    return out


def runs_markdown(result: dict[str, Any]) -> str:
    """The runs' table in Markdown."""
    ab = letters(len(result["runs"]))
    rows = [dict(run_cells(r), name=f"{ab[i]} · {r['name']}") for i, r in enumerate(result["runs"])]
    return "\n".join(_md_table([_RUN_HEADER, *rows], right=set(_RUN_HEADER) - {"name"}))


def comparison_markdown(result: dict[str, Any], index: int, metrics: list[str] | None = None) -> str:
    """Comparison ``index`` (of ``result["comparisons"]``) in Markdown: pairing, notes, table, headline."""
    c = result["comparisons"][index]
    ab = letters(len(result["runs"]))
    lines = [f"**{ab[c['run']]} vs {ab[c['baseline']]}**: {escape_markdown(c['pairing'])}"]
    lines += [f"- {escape_markdown(n)}" for n in c["notes"]]
    if c["metrics"]:
        header = _metric_header(result, c)
        header.update(baseline=ab[c["baseline"]], run=ab[c["run"]], difference=f"{ab[c['run']]} − {ab[c['baseline']]}")
        lines += ["", *_md_table([header, *(metric_cells(m) for m in c["metrics"])],
                                 right={"baseline", "run", "difference", "interval", "detectable"})]
    lines += ["", f"*{escape_markdown(headline(result, c, metrics))}*"]
    return "\n".join(lines)


def markdown(result: dict[str, Any], metrics: list[str] | None = None) -> str:
    """The whole result in Markdown: the runs' table, then every comparison."""
    how = "each env's first episode" if result["first_episode"] else "all completed episodes"
    parts = [f"{how}; level {result['level'] * 100:g}%, {result['resamples']} bootstrap resamples of envs, "
             f"seed {result['seed']}", "", runs_markdown(result)]
    for i, r in enumerate(result["runs"]):
        parts += [f"- {letters(len(result['runs']))[i]}: {escape_markdown(n)}" for n in r["notes"]]
    for i in range(len(result["comparisons"])):
        parts += ["", comparison_markdown(result, i, metrics)]
    return "\n".join(parts)


__all__ = ["comparison_markdown", "escape_markdown", "headline", "letters", "markdown", "metric_cells", "run_cells",
           "runs_markdown", "text"]
