"""Kill the writer at every step of writing, growing and finishing a rollout; recover; compare.

`crash_driver.py` (beside this file) forks one child per kill so each trial costs milliseconds;
see its docstring for the scenarios and modes. Every trial must end, after `rollrec.recover`, in
exactly the rows that were committed, values compared one by one, or in no file at all when
nothing was committed yet; never in wrong data, a refusal, or a file left behind.

Each test runs twice: rows written with direct I/O (whole 4 KiB blocks, the last partial block of
each member rewritten by the next append, several writes in flight), on a file system that takes
``O_DIRECT`` (the test folder's; skipped where none does), and buffered (the fallback) on tmpfs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


DRIVER = Path(__file__).with_name("crash_driver.py")
IO = ["direct", "buffered"]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the driver forks one child per kill")


@pytest.fixture(params=IO)
def io(request, tmp_path):
    """``(mode, folder)``: direct I/O in the test folder, or buffered on tmpfs where one exists (fsync is
    free there, the trials run faster)."""
    if request.param == "direct":
        yield "direct", request.getfixturevalue("direct_dir")  # skips where the file system refuses O_DIRECT
    elif os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="rollrec-crash-") as d:
            yield "buffered", Path(d)
    else:
        yield "buffered", tmp_path


def run_driver(scenario: str, mode: str, io: tuple[str, Path], *extra: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(DRIVER), scenario, mode, str(io[1]), "--io", io[0], *extra],
        capture_output=True, text=True, timeout=600, check=False,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in lines if r.get("ok") is False]
    assert out.returncode == 0 and not failed, (failed[:3], out.stderr[-2000:])
    return [r for r in lines if "summary" not in r]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["short", "empty-tail", "grow", "compress", "exact", "short-closed", "grow-closed",
                                      "open", "open-grow"])
def test_kill_at_every_fault_point(scenario, io):
    trials = run_driver(scenario, "points", io)
    # One trial per point reached; the last ones are in finishing, where all rows were committed.
    assert len(trials) >= 20
    assert trials[-1]["rows"] == 27
    assert ["run.npz", "run.npz.partial.json"] in [t["left"] for t in trials]  # renamed, not yet tidied


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["short", "grow", "compress", "short-closed", "open", "open-grow"])
def test_kill_before_every_file_change(scenario, io):
    trials = run_driver(scenario, "writes", io)
    states = {tuple(sorted(t["left"])) for t in trials}
    # From "nothing yet" through "sidecar claimed" to "renamed, sidecar not yet removed".
    assert ("run.npz.partial.json",) in states and ("run.npz", "run.npz.partial.json") in states, states
    assert {t.get("rows") for t in trials} >= {None, 0, 4, 27}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["short", "grow", "compress", "open", "open-grow"])
def test_kill_at_random_times(scenario, io):
    trials = run_driver(scenario, "random", io, "--random", "12", "--seed", str(len(scenario)))
    assert len(trials) == 12
