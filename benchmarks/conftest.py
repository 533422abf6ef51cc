"""Fixtures for the benchmarks: torch on one thread, a large rollout built once per session, and
the ratios each benchmark measured, printed at the end of the session.

Every module here is collected by ``pytest benchmarks/`` (``test_*_benchmark.py``). Two styles,
both comparing against a reference measured in the same run:

* pytest-benchmark tests put the reference in the same ``group``, so pytest-benchmark's table
  shows them side by side (each figure with its ratio to the group's fastest in parentheses);
* the others measure a figure and its reference themselves and ``report`` the ratio: the lines
  are printed under "ratios measured in this run" when the session ends.

``pytest benchmarks/ --benchmark-disable`` runs each pytest-benchmark test once (a quick check
that everything runs). The modules that were scripts keep a ``main()`` for full-size runs:
``python benchmarks/test_soak_benchmark.py --size-gb 10`` and so on (each says how).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_REPORTED = pytest.StashKey[list[str]]()


@pytest.fixture
def report(request) -> Callable[[str], None]:
    """``report(text)``: lines of figures and their ratios measured by this test, printed in the
    session's summary (pytest captures what a test prints itself)."""
    lines = request.config.stash.setdefault(_REPORTED, [])

    def add(text: str) -> None:
        lines.append(f"{request.node.nodeid}:")
        lines.extend(f"  {line}" for line in text.splitlines())

    return add


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = config.stash.get(_REPORTED, [])
    if lines:
        terminalreporter.section("ratios measured in this run")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def large_rollout(tmp_path_factory) -> Path:
    """A ~1.1 GB synthetic rollout (``ROLLREC_BENCH_ROLLOUT`` names one to reuse, built there if absent)."""
    from test_reader_benchmark import ENV_VAR, build_rollout

    path = Path(os.environ.get(ENV_VAR) or tmp_path_factory.mktemp("bench") / "large.npz")
    if not path.exists():
        build_rollout(path, size_gb=float(os.environ.get("ROLLREC_BENCH_SIZE_GB", "1.1")))
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch runs on one intra-op thread for the module (as `rollrec bench` does), restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
