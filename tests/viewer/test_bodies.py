"""The robot's geometry in the viewer: parts posed by the recorded links, ghost robots, terrain."""

from __future__ import annotations

import numpy as np
import pytest
import viser

import rollrec
from rollrec.viewer.bodies import BodiesView, GhostBodies, draw_terrain


@pytest.fixture
def server():
    s = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    yield s
    s.stop()


@pytest.fixture
def modelled(tmp_path, make_fields, make_model):
    fields = make_fields(T=6, N=5, L=4)
    fields["link_pos"][2, 3, 1] = np.nan  # env 3 lost link 1 at step 2
    path = rollrec.save_rollout(tmp_path / "m.npz", fields, dt=0.05, model=make_model(fields["link_names"]))
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


def test_terrain_draws_static_geoms_but_planes(server, modelled):
    handles = draw_terrain(server, "/t/terrain", modelled.model)
    assert len(handles) == 1  # the height field; the floor plane is the grid's job
    assert handles[0].vertices.shape == (12, 3)
