"""The table of `rollrec bench`: its rows as plain text (the terminal) or Markdown (docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rollrec.bench.measure import Row


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "n/a"
    a = abs(x)
    s = f"{x:.3g}" if a < 1000 else f"{x:,.0f}"
    return f"{s} {unit}".rstrip()


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: section, name, figure, reference, ratio, target, result, note."""
    header = ("section", "figure", "value", "reference", "ratio", "target", "result", "note")
    lines = []
    for r in rows:
        ref = (
            f"{r.reference_name} {_fmt(r.reference, r.reference_unit or r.unit)}".strip()
            if r.reference_name
            else ""
        )
        result = {True: "PASS", False: "MISS", None: ""}[r.passed]
        ratio = "" if r.ratio is None else f"{r.ratio:.3g}" + (f" ({r.ratio_means})" if r.ratio_means else "")
        target = "" if r.target is None else f"{r.target[0]} {r.target[1]:g}"
        lines.append(
            (
                r.section,
                r.name,
                _fmt(r.value, r.unit) if r.value is not None else "-",
                ref,
                ratio,
                target,
                result,
                r.note,
            )
        )
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    widths[-1] = len(header[-1])  # the note is last and left ragged
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out)


def format_markdown(rows: Sequence[Row]) -> str:
    """The same table in Markdown (for docs/benchmarks.md)."""
    out = [
        "| section | figure | value | reference | ratio | target | result | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = (
            f"{r.reference_name} {_fmt(r.reference, r.reference_unit or r.unit)}".strip()
            if r.reference_name
            else ""
        )
        ratio = "" if r.ratio is None else f"{r.ratio:.3g}" + (f" ({r.ratio_means})" if r.ratio_means else "")
        target = "" if r.target is None else f"{r.target[0]} {r.target[1]:g}"
        result = {True: "pass", False: "**miss**", None: ""}[r.passed]
        cells = (r.section, r.name, _fmt(r.value, r.unit), ref, ratio, target, result, r.note)
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(out)


__all__ = ["format_markdown", "format_table"]
