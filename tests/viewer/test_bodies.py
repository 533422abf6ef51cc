"""The robot's geometry in the viewer: parts posed by the recorded links, ghost robots, terrain."""

from __future__ import annotations

import numpy as np
import pytest
import viser

import rollrec
from rollrec.viewer.bodies import BodiesView, GhostBodies, draw_terrain

from .conftest import local_app


@pytest.fixture
def server():
    s = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    yield s
    s.stop()


@pytest.fixture
def modelled(tmp_path, make_fields, make_model):
    fields = make_fields(T=6, N=5, L=4)
    fields["link_pos"][2, 3, 1] = np.nan  # env 3 lost link 1 at step 2
    path = rollrec.save(tmp_path / "m.npz", fields, dt=0.05, model=make_model(fields["link_names"]))
    with rollrec.load(path) as r:
        yield r


def test_parts_follow_their_links(server, modelled):
    r = modelled
    view = BodiesView(server, "/t/bodies", r.model)
    assert len(view.handles) == 5  # box, 2 spheres, capsule, mesh: one part per (link, colour); no static
    pos, quat = np.asarray(r["link_pos"][4, 1]), np.asarray(r["link_quat"][4, 1])
    view.show(pos, quat)
    for h, part in zip(view.handles, view.parts):
        np.testing.assert_allclose(h.position, pos[part.link], rtol=1e-6)
        np.testing.assert_allclose(h.wxyz, quat[part.link], rtol=1e-6)
        assert h.visible
    view.show(np.asarray(r["link_pos"][2, 3]), np.asarray(r["link_quat"][2, 3]))
    assert [h.visible for h in view.handles] == [p.link != 1 for p in view.parts]  # the lost link's part hides


def test_ghosts_are_whole_robots_of_the_other_envs(server, modelled):
    r = modelled
    ghosts = GhostBodies(server, "/t/ghosts", r, r.model)
    ghosts.set_envs([0, 3, 4])
    ghosts.show_frame(2)
    assert len(ghosts.handles) == len(ghosts.parts) == 5
    for h, part in zip(ghosts.handles, ghosts.parts):
        want = np.asarray(r["link_pos"][2])[[0, 3, 4], part.link]
        np.testing.assert_allclose(h.batched_positions[[0, 2]], want[[0, 2]], rtol=1e-6)
        assert h.opacity == pytest.approx(0.3)
        scales = h.batched_scales.tolist()
        assert scales == ([1.0, 0.0, 1.0] if part.link == 1 else [1.0, 1.0, 1.0])  # env 3's lost link: not drawn
    ghosts.set_visible(False, 2)
    assert not any(h.visible for h in ghosts.handles)
    ghosts.set_envs([1])
    assert ghosts.handles == []  # rebuilt for the new envs at the next frame


def test_ghosts_that_would_cover_the_selected_robot_are_not_drawn(server, tmp_path, make_fields, make_model):
    """Issue 28: at a reset every Ant env stands at the origin and the selected robot was lost among
    63 translucent copies of itself."""
    fields = make_fields(T=6, N=5, L=4)
    pos = fields["link_pos"]
    pos[:] = pos[:, :1]  # every env where env 0 is ...
    pos[4] += (10.0 * np.arange(5))[:, None, None]  # ... but at step 4, where env k stands 10k m along x
    path = rollrec.save(tmp_path / "origin.npz", fields, dt=0.05, model=make_model(fields["link_names"]))
    with rollrec.load(path) as r:
        ghosts = GhostBodies(server, "/t/ghosts", r, r.model)
        ghosts.set_envs([1, 2, 3, 4], selected=0)
        ghosts.show_frame(0)
        assert all(h.batched_scales.tolist() == [0.0] * 4 for h in ghosts.handles)  # none over the selected robot
        ghosts.show_frame(4)
        assert all(h.batched_scales.tolist() == [1.0] * 4 for h in ghosts.handles)  # apart: every ghost drawn
        for h, part in zip(ghosts.handles, ghosts.parts):
            np.testing.assert_allclose(h.batched_positions, np.asarray(r["link_pos"][4])[[1, 2, 3, 4], part.link],
                                       rtol=1e-6)
        ghosts.set_envs([1, 2, 3, 4])  # no selected env: every ghost drawn, wherever it is
        ghosts.show_frame(0)
        assert all(h.batched_scales.tolist() == [1.0] * 4 for h in ghosts.handles)


def test_terrain_draws_static_geoms_but_planes(server, modelled):
    handles = draw_terrain(server, "/t/terrain", modelled.model)
    assert len(handles) == 1  # the height field; the floor plane is the grid's job
    assert handles[0].vertices.shape == (12, 3)


# ---- in the app -------------------------------------------------------------------------------
@pytest.fixture
def modelled_app(tmp_path, make_fields, make_model):
    fields = make_fields(T=30, N=70, L=4)
    path = rollrec.save(tmp_path / "app.npz", fields, dt=0.05, model=make_model(fields["link_names"]))
    with local_app(path, env=2) as app:
        yield app


def test_the_selected_env_is_its_real_robot(modelled_app):
    app = modelled_app
    robot = app.scene.robots[0]
    assert robot.bodies is not None and robot.bones is None  # no skeleton over the robot
    app.seek(17)
    r = app.state.rollout
    for h, part in zip(robot.bodies.handles, robot.bodies.parts):
        np.testing.assert_allclose(h.position, r["link_pos"][17, 2, part.link], rtol=1e-6)
    app.select_env(5)
    h, part = robot.bodies.handles[0], robot.bodies.parts[0]
    np.testing.assert_allclose(h.position, r["link_pos"][17, 5, part.link], rtol=1e-6)
    assert len(app.scene.terrain) == 1  # the height field


def test_ghost_robots_when_asked(modelled_app):
    app = modelled_app
    ghosts = app.scene.ghosts
    assert not ghosts.as_robots and ghosts.handle is not None  # spheres by default
    assert app.gui.ghost_robots is not None and app.gui.ghost_robots.value is False
    app.set_ghost_robots(True)
    assert ghosts.as_robots and app.gui.ghost_robots.value is True
    assert len(ghosts.robots.envs) == 64 and 2 not in ghosts.robots.envs  # capped, the selected env apart
    assert len(ghosts.robots.handles) == len(ghosts.robots.parts) and not ghosts.handle.visible
    app.step(1)
    h, part = ghosts.robots.handles[0], ghosts.robots.parts[0]
    r = app.state.rollout
    np.testing.assert_allclose(h.batched_positions, r["link_pos"][1][ghosts.robots.envs, part.link], rtol=1e-6)
    app.set_ghosts(False)
    assert not any(h.visible for h in ghosts.robots.handles)
    app.set_ghosts(True)
    app.set_ghost_robots(False)
    assert ghosts.robots.handles == [] and ghosts.handle.visible


def test_files_without_a_model_keep_the_skeleton(walker_file):
    with local_app(walker_file) as app:
        assert app.scene.robots[0].bodies is None and app.scene.robots[0].bones is not None
        assert app.gui.ghost_robots is None and app.scene.terrain == []


def test_a_damaged_model_is_a_note_not_a_failed_replay(tmp_path, make_fields, make_model):
    fields = make_fields(T=5, N=2, L=4)
    good = rollrec.save(tmp_path / "g.npz", fields, dt=0.05, model=make_model(fields["link_names"]))
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["model_geom_link"] = arrays["model_geom_link"] + 10
    np.savez(tmp_path / "bad.npz", **arrays)
    with local_app(tmp_path / "bad.npz") as app:
        assert app.scene.robots[0].bodies is None
        assert any("robot model is not drawn" in n and "geom_link" in n for n in app.state.notes)


def test_model_members_are_never_plotted_as_fields(tmp_path, make_fields, make_model):
    from rollrec.viewer.fields import channel_groups

    fields = make_fields(T=7, N=3, L=4)  # 7 geoms x 3 sizes: a model member shaped like [T, N]
    path = rollrec.save(tmp_path / "m.npz", fields, dt=0.05, model=make_model(fields["link_names"]))
    with rollrec.load(path) as r:
        assert r["model_geom_size"].shape == (7, 3)
        assert not any(k.startswith("model_") for k in channel_groups(r))
