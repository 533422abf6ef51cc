"""viser export: one episode as a scene recording, loaded back with viser's own message classes and
compared with the rollout step by step; the standalone page played in headless Chromium."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import rollrec

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


def load_recording(path: Path) -> tuple[float, list[tuple[float, object]]]:
    """``(duration, [(time, message)])`` of a ``.viser`` file, the messages rebuilt as viser's
    `Message` objects (the container: ``viser/infra/_infra.py`` ``StateSerializer.serialize``; the
    messages: ``Message.deserialize`` with the binary placeholders resolved to arrays)."""
    import msgspec
    import zstandard
    from viser.infra._messages import Message, _non_init_field_names

    import viser._messages  # noqa: F401 - registers viser's message classes

    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    inner = zstandard.ZstdDecompressor().decompress(raw[8:], max_output_size=size)
    n = int.from_bytes(inner[:8], "little")
    payload = msgspec.msgpack.decode(inner[8 : 8 + n])
    buffers, offset = [], 8 + n
    for length in payload["binaryBufferLengths"]:
        offset += (8 - offset % 8) % 8
        buffers.append(inner[offset : offset + length])
        offset += length

    def resolve(v):
        if isinstance(v, dict) and "__binary_index" in v:
            return np.frombuffer(buffers[v["__binary_index"]], dtype=np.dtype(v["dtype"]))
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [resolve(x) for x in v]
        return v

    classes = Message._subclass_from_type_string()
    out = []
    for t, mapping in payload["messages"]:
        mapping = resolve(mapping)
        cls = classes[mapping.pop("type")]
        kwargs = cls._from_serializable_dict(mapping)
        late = {k: kwargs.pop(k) for k in _non_init_field_names(cls) if k in kwargs}
        msg = cls(**kwargs)
        for k, v in late.items():
            setattr(msg, k, v)
        out.append((t, msg))
    return payload["durationSeconds"], out


def _value(m, name: str, attr: str):
    """``attr`` of node ``name`` as message ``m`` sets it (a creation's props, a Set*Message, an
    update), or None."""
    if getattr(m, "name", None) != name:
        return None
    if type(m).__name__ == "SceneNodeUpdateMessage":
        return m.updates.get(attr)
    if hasattr(m, attr):
        return getattr(m, attr)
    props = getattr(m, "props", None)
    return props.get(attr) if isinstance(props, dict) else getattr(props, attr, None)


def _states(messages, dt: float, n: int, name: str, attr: str) -> np.ndarray:
    """``attr`` of node ``name`` at each of the ``n`` steps: the last value set at or before step t's time."""
    out, cur = [], None
    timeline = iter(messages)
    pending = next(timeline, None)
    for step in range(n):
        while pending is not None and pending[0] <= step * dt + 1e-9:
            value = _value(pending[1], name, attr)
            if value is not None:
                cur = np.asarray(value, np.float64)
            pending = next(timeline, None)
        out.append(cur)
    return np.array(out)


@pytest.fixture
def modelled(tmp_path, make_fields, make_model):
    fields = make_fields(40, 3, L=3, done_every=15)
    fields["base_pos"][..., 0] += np.arange(40)[:, None] * 0.05  # walking along x
    return rollrec.save(tmp_path / "m.npz", fields, dt=0.04, env_name="modelled", model=make_model(fields["link_names"]))


def test_the_recording_replays_the_episode_step_by_step(walker, reference, tmp_path):
    ref = reference(walker)
    env, start, stop, end, _ret = ref.of(envs=[3])[1]
    out = rollrec.export(walker, tmp_path / "ep.viser", to="viser", env=3, episode=1)
    duration, messages = load_recording(out)
    n, dt = stop - start, ref.meta["dt"]
    assert duration == pytest.approx(n * dt)
    base = _states(messages, dt, n, "/replay/a/base", "position")
    np.testing.assert_allclose(base, ref.fields["base_pos"][start:stop, env], rtol=1e-6, atol=1e-7)
    wxyz = _states(messages, dt, n, "/replay/a/base", "wxyz")
    np.testing.assert_allclose(wxyz, ref.fields["base_quat"][start:stop, env], rtol=1e-6, atol=1e-7)
    links = _states(messages, dt, n, "/replay/a/links/frames", "batched_positions")
    np.testing.assert_allclose(links.reshape(n, -1, 3), ref.fields["link_pos"][start:stop, env], rtol=1e-6, atol=1e-7)
    label = next(m for _, m in messages if type(m).__name__ == "LabelMessage")
    assert f"env {env}: steps {start}..{stop}, {end}" in label.props["text"]


def test_the_robot_model_moves_with_its_links(modelled, reference, tmp_path):
    ref = reference(modelled)
    env, start, stop, *_ = ref.of(envs=[2], end="terminated")[0]
    out = rollrec.export(modelled, tmp_path / "ep.viser", to="viser", env=2, episodes="terminated")
    _, messages = load_recording(out)
    meshes = [m for _, m in messages if type(m).__name__ == "MeshMessage" and m.name.startswith("/replay/a/bodies/")]
    assert meshes, "the robot's parts are in the recording"
    from rollrec.model.shapes import link_parts

    with rollrec.load(modelled) as r:
        parts = [p for p in link_parts(r.model, detail=24, planes=False) if p.link >= 0]
    n = stop - start
    for i, part in enumerate(parts):
        pos = _states(messages, ref.meta["dt"], n, f"/replay/a/bodies/part_{i}", "position")
        np.testing.assert_allclose(pos, ref.fields["link_pos"][start:stop, env, part.link], rtol=1e-6, atol=1e-7)
    assert any(type(m).__name__ == "MeshMessage" and m.name.startswith("/replay/terrain/") for _, m in messages)


def test_a_missing_episode_says_how_many_there_are(walker, reference, tmp_path):
    count = len(reference(walker).of(envs=[0]))
    with pytest.raises(IndexError, match=rf"episode {count} out of range: env 0 has {count} matching episode"):
        rollrec.export(walker, tmp_path / "ep.viser", to="viser", env=0, episode=count)


def _drawn(png) -> bool:
    """Whether the screenshot's scene area holds drawn pixels (far from its mean colour)."""
    from PIL import Image

    scene = np.asarray(Image.open(png).convert("RGB"), np.int16)[150:500, 100:700]
    return bool((np.abs(scene - scene.mean((0, 1))).sum(-1) > 60).mean() > 0.002)


@pytest.mark.browser
def test_the_page_plays_in_a_browser_without_a_server(modelled, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    playwright = pytest.importorskip("playwright.sync_api")
    page_path = rollrec.export(modelled, tmp_path / "ep.html", to="viser", env=0)
    html = page_path.read_text()
    assert "__VISER_EMBED_DATA__" in html and "http://" not in html.split("__VISER_EMBED_DATA__")[1][:200]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 800, "height": 600})
            requests = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_path.as_uri())
            page.wait_for_selector("canvas", timeout=30_000)
            deadline = time.monotonic() + 45.0  # software WebGL on a loaded machine fades the scene in slowly
            while True:
                time.sleep(1.0)
                first = page.screenshot(path=str(tmp_path / "a.png"))
                if _drawn(tmp_path / "a.png") or time.monotonic() > deadline:
                    break
            time.sleep(0.5)
            second = page.screenshot(path=str(tmp_path / "b.png"))
        finally:
            browser.close()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), [u for u in requests if "://" in u][:3]
    from PIL import Image

    a = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"), np.int16)
    b = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"), np.int16)
    assert _drawn(tmp_path / "a.png"), "nothing drawn"
    assert np.abs(a - b).sum(-1).astype(bool).mean() > 0.0005, "the recording does not play"
    assert first and second
