"""The drawing cost of a model is bounded: a renderer lowers the detail of primitives, then
decimates meshes, to stay within its triangle budget, and refuses (one line) a model with more
visible geoms than it draws or that no detail fits; the viewer and the video then draw the links
as a skeleton. (100,000 spheres took 45 s and 3.1 GB for a 2-frame video and 111 s to start the
viewer; 500,000 were an internal MemoryError.)"""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.model import RobotModel
from rollrec.model.robot import MESH, SPHERE
from rollrec.model.shapes import MAX_GEOMS, ModelTooLarge, estimate_faces, fit_budget, link_parts
from rollrec.video.bodies import MAX_FACES as VIDEO_FACES
from rollrec.video.bodies import BodiesDrawer
from rollrec.viewer.bodies import MAX_FACES as VIEWER_FACES

LINKS = ["base", "arm", "hand"]


def spheres(n: int, seed: int = 0) -> RobotModel:
    """``n`` small spheres spread over 3 links: a valid model, and a large one."""
    rng = np.random.default_rng(seed)
    return RobotModel(
        link_names=LINKS, geom_type=np.full(n, SPHERE), geom_link=np.arange(n) % len(LINKS),
        geom_size=np.c_[np.full(n, 0.01), np.zeros((n, 2))], geom_pos=rng.uniform(-0.3, 0.3, (n, 3)),
        geom_quat=np.tile([1.0, 0, 0, 0], (n, 1)), geom_rgba=np.tile([0.8, 0.3, 0.2, 1.0], (n, 1)),
        geom_group=np.zeros(n), geom_dataid=np.full(n, -1),
    ).check()


def big_meshes(faces: int, count: int) -> RobotModel:
    """``count`` geoms of one mesh of about ``faces`` triangles (a fine sphere-like grid)."""
    side = int(np.sqrt(faces / 2)) + 1
    u, v = np.meshgrid(np.linspace(0, np.pi, side), np.linspace(0, 2 * np.pi, side))
    verts = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1).reshape(-1, 3) * 0.1
    idx = np.arange(side * side).reshape(side, side)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    tris = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return RobotModel(
        link_names=LINKS, geom_type=np.full(count, MESH), geom_link=np.arange(count) % len(LINKS),
        geom_size=np.zeros((count, 3)), geom_pos=np.zeros((count, 3)), geom_quat=np.tile([1.0, 0, 0, 0], (count, 1)),
        geom_rgba=np.tile([0.5, 0.5, 0.5, 1.0], (count, 1)), geom_group=np.zeros(count), geom_dataid=np.zeros(count),
        mesh_vert=verts, mesh_face=tris, mesh_vertadr=[0], mesh_vertnum=[len(verts)], mesh_faceadr=[0],
        mesh_facenum=[len(tris)],
    ).check()


def test_more_geoms_than_a_renderer_draws_are_refused_in_one_line():
    model = spheres(MAX_GEOMS + 1)
    with pytest.raises(ModelTooLarge, match=r"^20,001 visible geoms, more than the 20,000 a renderer draws$"):
        fit_budget(model, max_faces=10**9, detail=24)


@pytest.mark.parametrize("budget", [VIEWER_FACES, VIDEO_FACES, 150_000])
def test_primitives_get_coarser_until_they_fit(budget):
    model = spheres(5_000)
    assert estimate_faces(model, detail=24) > budget  # as asked, it would not fit
    detail, mesh_faces = fit_budget(model, max_faces=budget, detail=24)
    faces = sum(len(p.faces) for p in link_parts(model, detail=detail, max_mesh_faces=mesh_faces))
    assert faces == estimate_faces(model, detail=detail) <= budget and detail >= 6


def test_meshes_are_decimated_to_fit_and_what_cannot_fit_is_refused():
    model = big_meshes(200_000, 6)  # 1.2 M triangles
    drawer = BodiesDrawer(model)
    assert 0 < drawer.num_faces <= VIDEO_FACES
    with pytest.raises(ModelTooLarge, match=r"triangles at the coarsest detail, more than the 1,000 a renderer"):
        fit_budget(model, max_faces=1_000, detail=10)


@pytest.fixture
def crowded(tmp_path, make_fields):
    """A rollout storing a valid model of 100,000 spheres (6.6 MB of model members)."""
    fields = make_fields(4, 2, L=len(LINKS))
    fields["link_names"] = LINKS
    return rollrec.save(tmp_path / "crowded.npz", fields, dt=0.05, model=spheres(100_000))


def test_the_video_draws_sticks_and_says_so_in_one_line(crowded, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(["video", str(crowded), "-o", str(out), "--quiet"]) == 0 and out.exists()
    err = capsys.readouterr().err.strip()
    assert err == ("rollrec video: note: crowded.npz: the robot model is not drawn (100,000 visible geoms, more than "
                   "the 20,000 a renderer draws); its links are drawn as sticks")
    assert main(["video", str(crowded), "-o", str(out), "--quiet", "--style", "bodies"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "the robot model is not drawn (100,000 visible geoms" in err and "sticks" in err


def test_the_viewer_draws_the_skeleton_with_a_note(crowded):
    from rollrec.viewer import serve, stop_app

    app = serve(crowded, port=0, block=False)
    try:
        assert any("the robot model is not drawn: 100,000 visible geoms" in n for n in app.state.notes)
        assert all(v.bodies is None for v in app.scene.robots)
    finally:
        stop_app(app)
