"""Fixtures for the viewer tests: small rollouts recorded from the built-in walker."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs import GaitPolicy, WalkerEnv

REPO = Path(__file__).resolve().parents[2]


def record_walker(path: Path, *, steps: int = 200, num_envs: int = 8, seed: int = 0) -> Path:
    """Record ``steps`` x ``num_envs`` of `WalkerEnv` with `GaitPolicy` into a v1 file at ``path``."""
    env = WalkerEnv(num_envs, seed=seed, max_episode_steps=60)
    return RolloutRecorder(env, max_steps=steps, progress=False).run(GaitPolicy(), path.parent, filename=path.name)


@pytest.fixture(scope="session")
def walker_file(tmp_path_factory) -> Path:
    """A 200-step, 8-env walker rollout with link poses (shared by the session: do not modify)."""
    return record_walker(tmp_path_factory.mktemp("walker") / "walker.npz")


@pytest.fixture(scope="session")
def legacy_file(legacy_dir) -> Path:
    """A 2-env file of the original recorder (written by tests/conftest.py)."""
    return legacy_dir / "legacy_rollout_n2.npz"


@pytest.fixture(scope="session")
def walker_file_b(tmp_path_factory) -> Path:
    """The same task as `walker_file` (8 envs, 200 steps) with another policy: a second checkpoint."""
    path = tmp_path_factory.mktemp("walker_b") / "walker_b.npz"
    env = WalkerEnv(8, seed=0, max_episode_steps=60)
    return RolloutRecorder(env, max_steps=200, progress=False).run(GaitPolicy(amplitude=0.5), path.parent,
                                                                   filename=path.name)


# ---- synthetic walkers: numpy-made rollouts, instant at any size --------------------------------
OBS_LAYOUT = [{"name": "base_vel", "start": 0, "stop": 3, "shape": [3]},
              {"name": "joint_pos", "start": 3, "stop": 7, "shape": [4]},
              {"name": "phase", "start": 7, "stop": 8, "shape": []}]


def synthetic_walkers(path: Path, *, num_envs: int = 16, steps: int = 300, seed: int = 0, speed: float = 1.0,
                      fall_rate: float = 0.02, max_episode_steps: int = 60, dt: float = 0.02) -> Path:
    """A v1 rollout of quadruped-like walkers made with numpy: envs on a 2 m grid walk along +x
    at their own speed, fall at their own rate (terminations) or time out after
    ``max_episode_steps``; 13 links (base, 4 legs of hip/knee/foot), 4 reward terms, obs with a
    named layout (``base_vel[0..2]``, ``joint_pos[0..3]``, ``phase``)."""
    from rollrec.envs import WalkerEnv
    from rollrec.io.save import save_rollout

    T, N = steps, num_envs
    rng = np.random.default_rng(seed)
    v = speed * rng.uniform(0.4, 1.2, N)
    p_fall = fall_rate * rng.uniform(0.0, 2.0, N) ** 2
    done = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    age = np.zeros((T, N), np.int64)
    a = np.zeros(N, np.int64)
    for t in range(T):
        age[t] = a
        truncated[t] = a + 1 >= max_episode_steps
        done[t] = truncated[t] | (rng.random(N) < p_fall)
        a = np.where(done[t], 0, a + 1)
    origin = np.stack([2.0 * (np.arange(N) % 8), 2.0 * (np.arange(N) // 8), np.zeros(N)], axis=1)
    phase = 2 * np.pi * 2.0 * age * dt
    base = origin + np.stack([v * age * dt, 0.02 * np.sin(phase), 0.35 + 0.02 * np.sin(2 * phase)], axis=2)
    hips = np.array([(0.25, 0.14), (0.25, -0.14), (-0.25, 0.14), (-0.25, -0.14)])
    links = [base]
    for i, (hx, hy) in enumerate(hips):
        swing = 0.08 * np.sin(phase + (np.pi if i in (1, 2) else 0.0))
        hip = base + np.array([hx, hy, 0.0])
        knee = hip + np.stack([swing, np.zeros_like(swing), np.full_like(swing, -0.17)], axis=2)
        foot = knee + np.stack([-0.5 * swing, np.zeros_like(swing), np.full_like(swing, -0.17)], axis=2)
        links += [hip, knee, foot]
    link_pos = np.stack(links, axis=2).astype(np.float32)  # [T, N, 13, 3]
    quat = np.zeros((T, N, 4), np.float32)
    quat[..., 0] = 1.0
    terms = np.stack([v * (1 + 0.3 * np.sin(phase)), np.full((T, N), 0.5), -0.01 * (1 + np.sin(phase) ** 2),
                      np.full((T, N), 0.2)], axis=2).astype(np.float32)
    terms[..., 1] -= 0.5 * (done & ~truncated)  # a fall is not upright
    obs = np.concatenate([np.stack([v * np.ones((T, N)), 0.02 * np.cos(phase), np.zeros((T, N))], axis=2),
                          link_pos[:, :, [2, 5, 8, 11], 0] - base[:, :, None, 0].astype(np.float32),
                          np.sin(phase)[..., None]], axis=2).astype(np.float32)
    fields = {"obs": obs, "act": rng.uniform(-1, 1, (T, N, 4)).astype(np.float32), "rew": terms.sum(axis=2),
              "done": done, "truncated": truncated, "base_pos": base.astype(np.float32), "base_quat": quat,
              "rew_terms": terms, "rew_term_names": ["forward", "upright", "energy", "alive"],
              "link_pos": link_pos, "link_quat": np.repeat(quat[:, :, None], 13, axis=2),
              "link_names": list(WalkerEnv.link_names)}
    meta = {"obs_layout": OBS_LAYOUT, "link_parents": list(WalkerEnv.link_parents)}
    return save_rollout(path, fields, dt=dt, env_name="synthetic-walker", meta=meta)


def camera_colors(t: int, envs) -> np.ndarray:
    """``[len(envs), 3]`` uint8: the solid colour of env e's camera frame at step t (neighbouring
    steps and envs differ by tens of levels, so a picture shows which frame it is)."""
    envs = np.asarray(list(envs), np.int64)
    return np.stack([np.full(envs.shape, (37 * t) % 256), (11 * t + 60 * envs) % 256,
                     np.full(envs.shape, 128)], -1).astype(np.uint8)


def camera_images(t: int, num_envs: int, size: tuple[int, int] = (24, 32)) -> dict[str, np.ndarray]:
    """Step t's images of every env: ``front`` solid `camera_colors`, ``depth`` uint16 ``1000 + 10 t + x``
    (a ramp across the image, moving with t)."""
    h, w = size
    front = np.broadcast_to(camera_colors(t, range(num_envs))[:, None, None], (num_envs, h, w, 3)).copy()
    depth = np.broadcast_to((1000 + 10 * t + np.arange(w)).astype(np.uint16), (num_envs, h, w)).copy()
    return {"front": front, "depth": depth}


def rerecord(src: Path, dst: Path, *, cameras: bool = False, **options) -> Path:
    """Record the v1 rollout ``src`` again, step by step, through `Recorder` with volume
    ``options`` (``envs=``, ``every=``, ``capture=`` ...) into ``dst``: a format-v2 file of the same values
    (format v3 with ``cameras``: `camera_images` at every step)."""
    import rollrec
    from rollrec.engine import Recorder

    with rollrec.load(src) as r:
        names = r.reward_term_names
        meta = {k: r.meta[k] for k in ("obs_layout", "link_parents") if k in r.meta}
        with Recorder(dst, r.N, max_steps=r.T, dt=r.dt, env_name=r.env_name, link_names=r.link_names, meta=meta,
                      flush_interval_s=None, **options) as rec:
            for t in range(r.T):
                rec.record(obs=np.array(r["obs"][t]), act=np.array(r["act"][t]), rew=np.array(r["rew"][t]),
                           done=np.array(r["done"][t]), truncated=np.array(r["truncated"][t]),
                           base_pos=np.array(r["base_pos"][t]), base_quat=np.array(r["base_quat"][t]),
                           reward_terms={n: np.array(r["rew_terms"][t, :, i]) for i, n in enumerate(names)},
                           link_pos=np.array(r["link_pos"][t]), link_quat=np.array(r["link_quat"][t]),
                           images=camera_images(t, r.N) if cameras else None)
    return Path(dst)


# ---- a real browser, shared by every browser test of the session -----------------------------------
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
FRAME_RE = re.compile(r"Frame (\d+) / (\d+) · env (\d+) / (\d+)")


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium driven by playwright (skips without them)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_replay(browser, url: str, *, width: int = 1600, height: int = 1000):
    """A new page on the replay at ``url``, loaded (frame readout shown), notices closed."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20000)
    page.goto(url)
    page.get_by_text(FRAME_RE).wait_for()
    close = page.locator(".mantine-Notification-closeButton")  # "software WebGL" notice
    if close.count():  # a DOM click: a real one waits for a renderer busy drawing software WebGL (10-20 s under load)
        close.first.dispatch_event("click")
    return page


def spy_env_reads(rollout) -> list[tuple[int, tuple[str, ...]]]:
    """Record every ``rollout.env(k, keys)`` call from now on as ``(k, keys)`` in the list returned."""
    calls: list[tuple[int, tuple[str, ...]]] = []
    real_env = rollout.env
    rollout.env = lambda k, keys=None: calls.append((k, tuple(keys))) or real_env(k, keys)
    return calls


@contextlib.contextmanager
def local_app(path, **app_kwargs):
    """A `ReplayApp` of the file at ``path`` on a viser server of its own (no browser); the app,
    the server and the rollout are closed afterwards."""
    import viser

    import rollrec
    from rollrec.viewer.app import ReplayApp

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    rollout = rollrec.load(path)
    app = None
    try:
        app = ReplayApp(rollout, server, **app_kwargs)
        yield app
    finally:
        if app is not None:
            app.close()
        server.stop()
        rollout.close()


@contextlib.contextmanager
def replay_page(browser, *paths, **serve_kwargs):
    """``(app, page)``: ``rollrec replay`` of ``paths`` served on a free port and opened in a new page;
    both closed afterwards."""
    from rollrec.viewer import serve, stop_app

    app = serve(*paths, port=0, block=False, **serve_kwargs)
    try:
        page = open_replay(browser, f"http://127.0.0.1:{app.server.get_port()}")
        try:
            yield app, page
        finally:
            page.close()
    finally:
        stop_app(app)


def readout(page) -> tuple[int, int]:
    """(frame, env) as the page shows them."""
    m = FRAME_RE.search(page.inner_text("body"))
    assert m, "no frame readout on the page"
    return int(m.group(1)), int(m.group(3))


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


#: JS: the uPlot chart (viser's test hook) that has a series labelled ``label``, as ``{min, max,
#: x, y, series}``: its x scale and data, that series' data, and every series' data by label (NaN
#: as null). Null when no chart has such a series.
CHART_JS = """(label) => {
  for (const tp of Object.values(window.__viserTestpoints?.uplots || {})) {
    const c = tp.chart;
    const i = c.series.findIndex(s => s.label === label);
    if (i < 0) continue;
    const arr = d => Array.from(d, v => Number.isNaN(v) ? null : v);
    return {min: c.scales.x.min, max: c.scales.x.max, x: arr(c.data[0]), y: arr(c.data[i]),
            series: c.series.map((s, j) => [s.label, arr(c.data[j])])};
  }
  return null;
}"""


def chart(page, label: str) -> dict | None:
    return page.evaluate(CHART_JS, label)


def chart_shows_its_data(c: dict | None) -> bool:
    """The chart's x range is set and overlaps its data (else the plot is blank)."""
    return bool(c and c["min"] is not None and c["max"] is not None and c["x"]
                and c["min"] <= c["x"][-1] and c["max"] >= c["x"][0])


#: JS: where the scene node named first in ``names`` that exists appears on the page: its world
#: position projected through the viewer's camera, in page pixels, and whether the element at
#: that pixel is the 3D canvas (not a panel covering it). Null when no such node.
PROJECT_JS = """(names) => {
  const m = window.__viserMutable;
  const o = names.map(n => m.nodeRefFromName[n]).find(x => x);
  if (!o || !m.camera) return null;
  o.updateWorldMatrix(true, false);
  const e = o.matrixWorld.elements;
  const cam = m.camera;
  cam.updateMatrixWorld();
  const mul = (M, v) => [0, 1, 2, 3].map(r => M[r] * v[0] + M[4 + r] * v[1] + M[8 + r] * v[2] + M[12 + r] * v[3]);
  const v = mul(cam.projectionMatrix.elements, mul(cam.matrixWorldInverse.elements, [e[12], e[13], e[14], 1]));
  const ndc = [v[0] / v[3], v[1] / v[3], v[2] / v[3]];
  const r = m.canvas.getBoundingClientRect();
  const x = r.left + (ndc[0] + 1) / 2 * r.width, y = r.top + (1 - ndc[1]) / 2 * r.height;
  const el = document.elementFromPoint(x, y);
  return {ndc: ndc, x: x, y: y, visible: o.visible, onCanvas: !!el && el.tagName === "CANVAS"};
}"""


def project(page, *names: str) -> dict | None:
    return page.evaluate(PROJECT_JS, list(names))


def labelled_input(page, label: str):
    """The input of the control labelled ``label`` (viser's text inputs are not tied to their
    label element, so role and label queries do not find them)."""
    return page.locator(f"xpath=//label[normalize-space(.)='{label}']/ancestor::div[following-sibling::div][1]"
                        "/following-sibling::div[1]//input").first
