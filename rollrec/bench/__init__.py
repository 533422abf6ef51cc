"""What ``rollrec bench`` measures: one module per figure, every figure a ratio or a rate measured
side by side in the same run (`rollrec.bench.measure`).

`run` (`rollrec.bench.suite`) runs the sections of a `BenchConfig` (`FULL`, `QUICK`) in one
process and returns their `Row`s; `format_table` / `format_markdown` (`rollrec.bench.report`)
print them. The sections: ``record`` (`record`: ``record()`` against a plain copy of the same
tensors), ``e2e`` (`end_to_end`: against ``np.save``, the original recorder and TorchRL),
``stall``, ``rss`` (`memory`), ``reader``, ``cuda``, ``dist`` (`sharded`), ``volume``,
``sustained``, ``camera`` (`camera`: encoding, bytes against raw frames, ``record()`` with a camera);
`workload` holds the tensors they record and `disk` the device's own limit.
``benchmarks/`` reuses these pieces under pytest.

May import: `rollrec.engine`, `rollrec.io` and everything below them (torch, numpy); only
`rollrec.cli` imports it. The names are imported on first use (`rollrec._lazy`): building the
command line's parser needs only `SECTIONS` (`sections.py`), not torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "FULL": "rollrec.bench.suite",
    "QUICK": "rollrec.bench.suite",
    "SECTIONS": "rollrec.bench.sections",
    "BenchConfig": "rollrec.bench.suite",
    "Row": "rollrec.bench.measure",
    "format_markdown": "rollrec.bench.report",
    "format_table": "rollrec.bench.report",
    "machine": "rollrec.bench.suite",
    "run": "rollrec.bench.suite",
}

__all__ = ["FULL", "QUICK", "SECTIONS", "BenchConfig", "Row", "format_markdown", "format_table", "machine", "run"]

__getattr__, __dir__ = lazy_exports("rollrec.bench", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.bench.measure import Row
    from rollrec.bench.report import format_markdown, format_table
    from rollrec.bench.sections import SECTIONS
    from rollrec.bench.suite import FULL, QUICK, BenchConfig, machine, run
