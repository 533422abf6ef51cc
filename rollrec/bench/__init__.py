"""The measuring code behind ``rollrec bench`` and ``benchmarks/``: one module per figure.

`run` runs the headline comparisons in one process and returns their `Row`s; every figure is a
ratio or a rate measured side by side in the same run (see `rollrec.bench.measure`).
"""

from __future__ import annotations

from rollrec.bench.measure import Row
from rollrec.bench.suite import FULL, QUICK, BenchConfig, run

__all__ = ["FULL", "QUICK", "BenchConfig", "Row", "run"]
