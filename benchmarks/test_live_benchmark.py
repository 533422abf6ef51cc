"""The live replay against the recording it follows: ``pytest benchmarks/test_live_benchmark.py -s``.

Three figures of issue 23, each against its reference measured in the same run:

* **latency**, from the call of `record()` for a step to a real browser (headless Chromium) on
  ``Recorder(serve=...)``'s replay showing that step on its slider; median and p95 against the
  target ``flush_interval_s + 1 s`` (the recorder commits every ``flush_interval_s``, 1 s by
  default; the replay polls the sidecar every `rollrec.viewer.live.follower.POLL_S`);
* **the writer with and without a live viewer**: `record()` p50 and the sustained rate of a
  4096-env recording (the benchmark workload, ~5 MB a step) with the replay serving it to a
  browser, over the same recording without one; rounds alternate so the machine's load drifts
  into both (target: ratio >= 0.95);
* **the viewer's CPU** while it follows a 4096-env run: the replay process's user + system CPU
  time over the wall time it followed (1.0 = one core busy), at an eval's pace and unpaced.

Chromium: Debian's ``/usr/bin/chromium`` through Playwright, in a process of its own (skipped
where either is missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 4096
CHROMIUM = "/usr/bin/chromium"


#: The browser, in its own process: it opens the page, samples it and keeps Playwright's
#: connection drained (a sync Playwright client that is not called lets Chromium's event pipe fill,
#: and the browser then stalls), until ``STOP`` exists; then writes what it saw to ``OUT``.
WATCHER = """
import json, os, re, sys, time
from playwright.sync_api import sync_playwright
url, stop, out, chromium = sys.argv[1:5]
frame = re.compile(r"Frame \\d+ / (\\d+) · env")
with sync_playwright() as p:
    b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
    page = b.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120000)
    page.goto(url)
    page.get_by_text(frame).wait_for()
    open(out + ".ready", "w").close()
    seen, last = [], -1
    while not os.path.exists(stop):
        m = frame.search(page.inner_text("body"))
        if m and int(m.group(1)) > last:
            last = int(m.group(1))
            seen.append([time.time(), last])
        page.wait_for_timeout(20)
    json.dump(seen, open(out, "w"))
    b.close()
"""


@pytest.fixture(scope="module")
def browser():
    """How to start a watching browser (see `WATCHER`); skipped without Playwright or Chromium."""
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}")
    return CHROMIUM


@pytest.fixture(scope="module")
def wl() -> Workload:
    return Workload(N)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_page(chromium: str, rec: Recorder, folder: Path) -> tuple[subprocess.Popen, Path, Path]:
    """Start the watching browser on ``rec``'s replay; returns (process, stop file, samples file)."""
    url = rec.server.wait_url(120)
    assert url, "\n".join(rec.server.lines)
    stop, out = folder / "watch.stop", folder / "watch.json"
    stop.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", WATCHER, url, str(stop), str(out), chromium])
    deadline = time.monotonic() + 180
    while not Path(str(out) + ".ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the watching browser did not start"
        time.sleep(0.1)
    Path(str(out) + ".ready").unlink()
    return proc, stop, out


def record_run(path: Path, wl: Workload, steps: int, *, served: bool = False, browser=None, pace_s: float = 0.0,
               flush_interval_s: float = 1.0) -> dict:
    """Record ``steps`` of ``wl``; ``served``: with the live replay following it; ``browser``: and
    a page watching it. Returns the figures."""
    served = served or browser is not None
    rec = Recorder(path, wl.num_envs, segment_steps=32, flush_interval_s=flush_interval_s, serve=0 if served else None)
    page = None
    rec.record(**wl.step(0))  # the first step starts the replay's process
    if served:
        rec.flush()  # committed: the replay opens it
        assert rec.server.wait_url(120), "\n".join(rec.server.lines)
    if browser is not None:
        page = open_page(browser, rec, path.parent)
    if served:
        time.sleep(1.0)
    calls = np.zeros(steps)
    started = np.zeros(steps)
    cpu0 = cpu_seconds(rec.server.process.pid) if served else 0.0
    t0 = time.perf_counter()
    for t in range(steps):
        started[t] = time.time()
        a = time.perf_counter()
        rec.record(**wl.step(t + 1))
        calls[t] = time.perf_counter() - a
        if pace_s:
            time.sleep(max(0.0, pace_s - (time.perf_counter() - a)))
    loop_s = time.perf_counter() - t0
    out = {"p50_ms": 1e3 * float(np.median(calls)), "rate": steps / loop_s}
    if served:
        out["viewer_cpu"] = (cpu_seconds(rec.server.process.pid) - cpu0) / loop_s
    if page is not None:
        rec.flush()
        time.sleep(flush_interval_s + 2.0)  # the last steps reach the page
        proc, stop, samples = page
        stop.touch()
        assert proc.wait(timeout=120) == 0
        seen = np.asarray(json.loads(samples.read_text()), np.float64).reshape(-1, 2)
        # the page's last frame is T - 1: step t (0-based, the first recorded before the loop) is t + 1
        lat = []
        for t in range(steps):
            shown = seen[seen[:, 1] >= t + 1]
            lat.append(shown[0, 0] - started[t] if len(shown) else np.inf)
        out["latency"] = np.asarray(lat)
    rec.close()
    if rec.server is not None:
        rec.server.close()
    return out


def clean(path: Path) -> None:
    for p in path.parent.glob(path.name + "*"):
        p.unlink() if p.is_file() else shutil.rmtree(p)


@pytest.mark.parametrize("num_envs", [256, N])
def test_latency_from_record_to_the_browser(browser, num_envs, tmp_path, report):
    """An eval's pace (30 steps a second) for 20 s, at the default flush interval. The headless
    browser renders on this machine's CPU (no GPU), beside the recorder: at 4096 envs its
    drawing of every env's ghost is part of what is measured."""
    path = tmp_path / "live.npz"
    wl = Workload(num_envs)
    fig = record_run(path, wl, 600, browser=browser, pace_s=1 / 30)
    lat = fig["latency"]
    assert np.isfinite(lat).all(), f"{int((~np.isfinite(lat)).sum())} steps never shown"
    med, p95 = float(np.median(lat)), float(np.percentile(lat, 95))
    target = 1.0 + 1.0
    report(f"record() -> browser shows the step (N={num_envs}, 30 steps/s, flush_interval_s=1): median {med:.2f} s, "
           f"p95 {p95:.2f} s, max {lat.max():.2f} s; target <= {target:.1f} s (p95 / target {p95 / target:.2f})\n"
           f"viewer process CPU while following: {fig['viewer_cpu']:.2f} of a core; load {os.getloadavg()[0]:.1f}")
    clean(path)


def test_the_writer_with_and_without_a_live_viewer(browser, wl, tmp_path, report):
    """Unpaced 4096-env recordings, alternating: without a viewer, with the served replay
    following it (the browser elsewhere, as over ``ssh -L``), and with a headless browser on this
    machine too (it then competes with the recorder for this machine's CPU)."""
    steps, rounds = 200, 2
    modes = {"without": {}, "served": {"served": True}, "served+browser": {"browser": browser}}
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for i in range(rounds):
        for mode, kwargs in modes.items():
            path = tmp_path / f"w{i}{len(runs[mode])}{mode[:3]}.npz"
            runs[mode].append(record_run(path, wl, steps, **kwargs))
            clean(path)
    p50 = {m: float(np.median([r["p50_ms"] for r in runs[m]])) for m in runs}
    rate = {m: float(np.median([r["rate"] for r in runs[m]])) for m in runs}
    lines = [f"N={N}, {steps} steps x {rounds} rounds each, load {os.getloadavg()[0]:.1f}"]
    for m in ("served", "served+browser"):
        cpu = [r["viewer_cpu"] for r in runs[m]]
        lines.append(f"{m}: record() p50 {p50[m]:.2f} ms vs {p50['without']:.2f} ms without "
                     f"(ratio without / with {p50['without'] / p50[m]:.2f}); sustained {rate[m]:.0f} vs "
                     f"{rate['without']:.0f} steps/s (ratio {rate[m] / rate['without']:.2f}); rounds "
                     f"{[round(r['rate']) for r in runs[m]]} vs {[round(r['rate']) for r in runs['without']]}; "
                     f"replay process CPU {min(cpu):.2f}-{max(cpu):.2f} of a core")
    report("\n".join(lines))
