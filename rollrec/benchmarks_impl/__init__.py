"""The measuring code behind ``rollrec bench`` and ``benchmarks/``: one module per figure.

`run` runs the headline comparisons in one process and returns their `Row`s; every figure is a
ratio or a rate measured side by side in the same run (see `rollrec.benchmarks_impl.measure`).
"""

from __future__ import annotations

from rollrec.benchmarks_impl.measure import Row
from rollrec.benchmarks_impl.run import FULL, QUICK, BenchConfig, run

__all__ = ["FULL", "QUICK", "BenchConfig", "Row", "run"]
