"""What every benchmark shares: the `Row` a figure is reported in, medians, timers, scratch dirs.

Figures are ratios or rates measured side by side in one run: each repeat times the candidate
and its reference back to back (so both see the same machine load), and a row reports the median
of each and the median of the per-repeat ratios.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the table.

    ``value`` (in ``unit``) is the figure; ``reference`` is what it is compared with (its name
    in ``reference_name``, same unit unless ``reference_unit`` says otherwise); ``ratio`` is
    ``value / reference`` unless the row says otherwise (``ratio_means``), measured per repeat.
    ``target`` is a bound on the ratio (``("<=", 1.5)``, ``(">=", 0.7)``) or None; ``passed``
    follows from it (None: no target, or not measured).
    """

    section: str
    name: str
    value: float | None
    unit: str
    reference_name: str = ""
    reference: float | None = None
    reference_unit: str = ""
    ratio: float | None = None
    ratio_means: str = ""
    target: tuple[str, float] | None = None
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        op, bound = self.target
        return self.ratio <= bound if op == "<=" else self.ratio >= bound

    @property
    def target_text(self) -> str:
        return "" if self.target is None else f"{self.target[0]} {self.target[1]:g}x"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = self.target_text or None
        d["passed"] = self.passed
        return d


def skipped(section: str, name: str, why: str, **params: Any) -> Row:
    """A row for a figure that could not be measured here (``why`` says why)."""
    return Row(section, name, None, "", note=f"skipped ({why})", params=params)


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def paired_ratio(values: Sequence[float], references: Sequence[float]) -> float:
    """Median over repeats of ``value / reference`` (each pair measured back to back)."""
    return median([v / r for v, r in zip(values, references) if r])


def percentile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q / 100.0 * (len(s) - 1))))
    return float(s[k])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call of ``fn``, with the garbage collector held off."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out
    finally:
        if was:
            gc.enable()


def default_scratch_root() -> Path:
    """Where scratch files go: ``$ROLLREC_BENCH_DIR``, else the system temp dir."""
    return Path(os.environ.get("ROLLREC_BENCH_DIR") or tempfile.gettempdir())


@contextmanager
def scratch_dir(root: str | os.PathLike | None = None) -> Iterator[Path]:
    """A fresh directory under ``root`` (see `default_scratch_root`), removed afterwards."""
    base = Path(root) if root is not None else default_scratch_root()
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="rollrec-bench-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def remove(path: str | os.PathLike) -> None:
    """Delete a file or folder written by a benchmark (dirty pages of a deleted file never hit the disk)."""
    p = Path(path)
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


GB = 1e9
