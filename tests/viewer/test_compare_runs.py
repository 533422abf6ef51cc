"""Compare mode with any number of rollouts, without a browser: the verdict the Compare tab shows
is ``rollrec compare``'s, any two rollouts stand side by side, robots with a real model are tinted
in their rollout's colour and spaced by their size, and files of the same name are told apart."""

from __future__ import annotations

import contextlib
import shutil

import numpy as np
import pytest
import viser

import rollrec
from rollrec.stats.compare import compare
from rollrec.stats.report import comparison_markdown, runs_markdown
from rollrec.viewer.app import ReplayApp
from rollrec.viewer.scene import RUN_COLORS
from rollrec.viewer.state import SIDE_BY_SIDE_GAP, ReplayState, robot_reach

from .conftest import synthetic_walkers


@contextlib.contextmanager
def compare_app(*paths, **kwargs):
    """A `ReplayApp` comparing ``paths`` (the first is the baseline) on a server of its own."""
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    runs = [rollrec.load(p) for p in paths]
    app = None
    try:
        app = ReplayApp(runs[0], server, others=runs[1:], **kwargs)
        yield app
    finally:
        if app is not None:
            app.close()
        server.stop()
        for r in runs:
            r.close()


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    d = tmp_path_factory.mktemp("three")
    return (synthetic_walkers(d / "base.npz", num_envs=12, steps=150, seed=0),
            synthetic_walkers(d / "fast.npz", num_envs=12, steps=150, seed=0, speed=1.3),
            synthetic_walkers(d / "short.npz", num_envs=12, steps=120, seed=2, fall_rate=0.05))


def test_the_compare_tab_shows_the_verdict_of_rollrec_compare(three):
    with compare_app(*three) as app:
        result = app.wait_verdict(60)
        assert result == compare(*three)  # what the library (and rollrec compare --json) gives
        content = app.compare_tab.verdict.content
        assert content == "\n\n".join([runs_markdown(result), comparison_markdown(result, 0), comparison_markdown(result, 1)])
        assert "**B vs A**: unpaired: the first observations differ" in content and "**C vs A**: unpaired" in content
        # the per-env table below it is the pair on screen
        app.wait_overview(30)
        assert list(app.compare_tab.table.model.columns) == ["Env", "A", "B", "B−A", "A falls", "B falls"]


def test_any_two_rollouts_stand_side_by_side(three):
    with compare_app(*three) as app:
        s = app.state
        assert [r.path.name for r in s.runs] == ["base.npz", "fast.npz", "short.npz"]
        assert s.num_frames == 120 and s.labels == ("A", "B")  # the shortest sets the timeline
        assert any("short.npz 120" in n for n in s.notes)
        app.wait_overview(30)
        app.select_env(5)
        app.seek(40)
        app.set_pair(0, 2)
        assert s.pair == (0, 2) and s.labels == ("A", "C") and (s.env, s.frame) == (5, 40)
        with rollrec.load(three[2]) as c:
            np.testing.assert_allclose(s.data_b.base_pos, c["base_pos"][:120, 5])
        assert app.gui.plot.labels == ("A total", "C total") and app.gui.pair.value == "A and C"
        assert "return A" in s.episode_status() and " · C " in s.episode_status()
        assert list(app.compare_tab.table.model.columns)[1:4] == ["A", "C", "C−A"]
        assert app.compare_tab.summary.content.startswith("mean total A ")
        app.set_pair(1, 2)  # B where A stood: its robot, its ghosts
        assert [r._color for r in app.scene.robots] == [RUN_COLORS[1], RUN_COLORS[2]]
        assert app.scene.ghosts._rollout is s.runs[1]
        assert app.scene.robots[0].label.text == "B" and app.scene.robots[1].label.text == "C"
        np.testing.assert_allclose(app.scene.robots[1].base.position, s.data_b.base_pos[40] + s.offset_b, rtol=1e-6)
        app.gui._pick_pair(app, "not a pair")  # a value that is not an option changes nothing
        assert s.pair == (1, 2)
        with pytest.raises(ValueError, match="pick two different rollouts of 3"):
            s.set_pair(1, 1)


def test_files_of_the_same_name_are_told_apart(three, tmp_path):
    for d in ("ckpt_100", "ckpt_200"):
        (tmp_path / d).mkdir()
        shutil.copy(three[0], tmp_path / d / "eval.npz")
    with compare_app(tmp_path / "ckpt_100" / "eval.npz", tmp_path / "ckpt_200" / "eval.npz") as app:
        assert app.names == ("ckpt_100/eval.npz", "ckpt_200/eval.npz")
        assert [r["name"] for r in app.wait_verdict(60)["runs"]] == list(app.names)


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v [..., 3]`` rotated by unit wxyz quaternions ``q [..., 4]`` (broadcast)."""
    w, u = q[..., :1], q[..., 1:]
    t = 2 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def big_robot(path, scale: float, make_fields, make_model):
    """A rollout of 3 envs whose 4 links stand ``scale`` metres around the base, with a model."""
    fields = make_fields(T=20, N=3, L=4, seed=1)
    rng = np.random.default_rng(0)
    offsets = scale * np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [-0.7, -0.7, 0]], np.float32)
    wobble = 0.05 * scale * rng.normal(size=(20, 3, 4, 3)).astype(np.float32)
    fields["link_pos"] = fields["base_pos"][:, :, None, :] + offsets + wobble
    return rollrec.save(path, fields, dt=0.02, model=make_model(fields["link_names"]))


@pytest.mark.parametrize("scale", [0.3, 2.5])
def test_side_by_side_robots_are_spaced_by_their_size(tmp_path, make_fields, make_model, scale):
    a = big_robot(tmp_path / "a.npz", scale, make_fields, make_model)
    b = big_robot(tmp_path / "b.npz", scale, make_fields, make_model)
    with compare_app(a, b) as app:
        s = app.state
        spacing = s.spacing
        np.testing.assert_allclose(s.offset_b, [0.0, -spacing, 0.0], rtol=1e-6)
        # no overlap: each robot's drawn geometry, at every step, stays within half the spacing of its base
        reach = 0.0
        for data, robot in zip((s.data, s.data_b), app.scene.robots):
            for part in robot.bodies.parts:
                pts = data.link_pos[:, part.link][:, None] + rotate(data.link_quat[:, part.link][:, None],
                                                                    part.vertices[None])
                reach = max(reach, float(np.hypot(*(pts - data.base_pos[:, None])[..., :2].transpose(2, 0, 1)).max()))
        assert 2 * reach < spacing <= 2 * reach + SIDE_BY_SIDE_GAP + 0.5
        assert spacing == pytest.approx(2 * (max(robot_reach(s.data), robot_reach(s.data_b))
                                             + app.scene.part_reach()) + SIDE_BY_SIDE_GAP)


def test_a_real_robot_is_tinted_in_its_rollouts_colour(tmp_path, make_fields, make_model):
    a = big_robot(tmp_path / "a.npz", 1.0, make_fields, make_model)
    b = big_robot(tmp_path / "b.npz", 1.0, make_fields, make_model)
    with compare_app(a, b) as app:
        robot_a, robot_b = (r.bodies for r in app.scene.robots)
        for part, ha, hb in zip(robot_a.parts, robot_a.handles, robot_b.handles):
            ca, cb = np.array(ha.color, float), np.array(hb.color, float)
            assert not np.array_equal(ca, cb)
            own = np.array(part.rgb255, float)
            # each moved towards its rollout's colour: A blue, B orange
            assert np.linalg.norm(ca - RUN_COLORS[0]) < np.linalg.norm(own - RUN_COLORS[0])
            assert np.linalg.norm(cb - RUN_COLORS[1]) < np.linalg.norm(own - RUN_COLORS[1])
    with rollrec.load(a) as r, compare_app(a) as single:  # one rollout: the model's own colours
        for part, h in zip(single.scene.robots[0].bodies.parts, single.scene.robots[0].bodies.handles):
            assert tuple(h.color) == part.rgb255
        assert ReplayState(r).spacing > 0


def test_without_links_the_spacing_keeps_its_default(tmp_path, make_fields):
    fields = make_fields(T=10, N=2)
    a = rollrec.save(tmp_path / "a.npz", fields, dt=0.02)
    with compare_app(a, a) as app:
        assert app.state.spacing == 1.5


def test_closing_a_compare_app_with_no_verdict_coming_does_not_wait_for_one(tmp_path, make_fields):
    """An app closed before its verdict was started (no Compare tab, or the overview cancelled)
    says at once that no verdict comes; close() used to wait 30 s for it."""
    a = rollrec.save(tmp_path / "a.npz", make_fields(T=10, N=2), dt=0.02)
    with compare_app(a, a) as app:
        pass
    assert app._verdict_done.is_set()
    assert app.wait_verdict(timeout=0) is None
