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

Chromium: Debian's ``/usr/bin/chromium`` through Playwright (skipped where either is missing).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from rollrec.bench.workload import Workload
from rollrec.engine import Recorder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 4096
CHROMIUM = "/usr/bin/chromium"
#: JS: record (Date.now(), last frame) each time the page's frame readout shows a new last frame.
SAMPLER_JS = """() => {
  window.__seen = []; let last = -1;
  setInterval(() => {
    const m = /Frame \\d+ \\/ (\\d+)/.exec(document.body.innerText);
    if (m && +m[1] > last) { last = +m[1]; window.__seen.push([Date.now() / 1000, last]); }
  }, 10);
}"""


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def wl() -> Workload:
    return Workload(N)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_page(browser, rec: Recorder):
    url = rec.server.wait_url(120)
    assert url, "\n".join(rec.server.lines)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120000)
    page.goto(url)
    page.get_by_text("Frame ").first.wait_for()
    return page


def record_run(path: Path, wl: Workload, steps: int, *, browser=None, pace_s: float = 0.0,
               flush_interval_s: float = 1.0) -> dict:
    """Record ``steps`` of ``wl``; with ``browser``, served and watched. Returns the figures."""
    serve = 0 if browser is not None else None
    rec = Recorder(path, N, segment_steps=32, flush_interval_s=flush_interval_s, serve=serve)
    page = None
    rec.record(**wl.step(0))  # the first step starts the replay's process
    if browser is not None:
        page = open_page(browser, rec)
        page.evaluate(SAMPLER_JS)
        time.sleep(1.0)
    calls = np.zeros(steps)
    started = np.zeros(steps)
    cpu0 = cpu_seconds(rec.server.process.pid) if page is not None else 0.0
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
    if page is not None:
        rec.flush()
        time.sleep(flush_interval_s + 2.0)  # the last steps reach the page
        out["viewer_cpu"] = (cpu_seconds(rec.server.process.pid) - cpu0) / (time.perf_counter() - t0)
        seen = np.asarray(page.evaluate("() => window.__seen"), np.float64).reshape(-1, 2)
        # the page's last frame is T - 1: step t (0-based, the first recorded before the loop) is t + 1
        lat = []
        for t in range(steps):
            shown = seen[seen[:, 1] >= t + 1]
            lat.append(shown[0, 0] - started[t] if len(shown) else np.inf)
        out["latency"] = np.asarray(lat)
        page.close()
    rec.close()
    if rec.server is not None:
        rec.server.close()
    return out


def clean(path: Path) -> None:
    for p in path.parent.glob(path.name + "*"):
        p.unlink() if p.is_file() else shutil.rmtree(p)


def test_latency_from_record_to_the_browser(browser, wl, tmp_path, report):
    """An eval's pace (30 steps a second, 4096 envs) for 20 s, at the default flush interval."""
    path = tmp_path / "live.npz"
    fig = record_run(path, wl, 600, browser=browser, pace_s=1 / 30)
    lat = fig["latency"]
    assert np.isfinite(lat).all(), f"{int((~np.isfinite(lat)).sum())} steps never shown"
    med, p95 = float(np.median(lat)), float(np.percentile(lat, 95))
    target = 1.0 + 1.0
    report(f"record() -> browser shows the step (N={N}, 30 steps/s, flush_interval_s=1): median {med:.2f} s, "
           f"p95 {p95:.2f} s, max {lat.max():.2f} s; target <= {target:.1f} s (p95 / target {p95 / target:.2f})\n"
           f"viewer process CPU while following: {fig['viewer_cpu']:.2f} of a core; load {os.getloadavg()[0]:.1f}")
    clean(path)


def test_the_writer_with_and_without_a_live_viewer(browser, wl, tmp_path, report):
    """Unpaced 4096-env recordings, alternating without / with the served replay and a browser."""
    steps, rounds = 200, 2
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for i in range(rounds):
        for watched in (False, True):
            path = tmp_path / f"w{i}{int(watched)}.npz"
            runs[watched].append(record_run(path, wl, steps, browser=browser if watched else None))
            clean(path)
    p50 = {w: float(np.median([r["p50_ms"] for r in runs[w]])) for w in runs}
    rate = {w: float(np.median([r["rate"] for r in runs[w]])) for w in runs}
    cpu = [r["viewer_cpu"] for r in runs[True]]
    report(f"record() p50 (N={N}, {steps} steps x {rounds} rounds each): without a viewer {p50[False]:.2f} ms, "
           f"with one {p50[True]:.2f} ms: ratio (without / with) {p50[False] / p50[True]:.2f}\n"
           f"sustained rate: without {rate[False]:.0f} steps/s, with {rate[True]:.0f} steps/s: ratio (with / without) "
           f"{rate[True] / rate[False]:.2f}; rounds without {[round(r['rate']) for r in runs[False]]}, "
           f"with {[round(r['rate']) for r in runs[True]]}\n"
           f"viewer process CPU while following unpaced: {min(cpu):.2f}-{max(cpu):.2f} of a core; "
           f"load {os.getloadavg()[0]:.1f}")
