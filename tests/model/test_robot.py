"""`RobotModel` checks and binding, and the triangle meshes renderers draw from it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from rollrec.model import GEOM_TYPES, ModelError, RobotModel
from rollrec.model.shapes import decimate, geom_triangles, link_parts

LINKS = ["base", "thigh", "shin", "foot"]


def _volume(v: np.ndarray, f: np.ndarray) -> float:
    """Signed volume: positive when every face is counter-clockwise seen from outside."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


@pytest.mark.parametrize(
    ("kind", "size", "volume"),
    [
        ("sphere", (0.5, 0, 0), 4 / 3 * math.pi * 0.125),
        ("capsule", (0.2, 0.3, 0), math.pi * 0.04 * 0.6 + 4 / 3 * math.pi * 0.008),
        ("ellipsoid", (0.1, 0.2, 0.3), 4 / 3 * math.pi * 0.006),
        ("cylinder", (0.2, 0.4, 0), math.pi * 0.04 * 0.8),
        ("box", (0.1, 0.2, 0.3), 0.048),
    ],
)
def test_primitives_are_closed_outward_meshes_of_the_right_size(kind, size, volume):
    m = RobotModel(["a"], geom_type=[GEOM_TYPES.index(kind)], geom_link=[0], geom_size=[size], geom_pos=[[0, 0, 0]],
                   geom_quat=[[1, 0, 0, 0]], geom_rgba=[[1, 1, 1, 1]], geom_group=[0], geom_dataid=[-1]).check()
    v, f = geom_triangles(m, 0, detail=32)
    assert _volume(v, f) == pytest.approx(volume, rel=0.03)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # closed: every edge shared by exactly two faces


def test_height_field_grid_spans_its_size(make_model):
    m = make_model(LINKS)
    g = int(np.flatnonzero(m.geom_type == 1)[0])
    v, f = geom_triangles(m, g)
    assert v.shape == (12, 3) and f.shape == (2 * 2 * 3, 3)
    np.testing.assert_allclose(v[:, :2].min(0), [-1.0, -1.5])
    np.testing.assert_allclose(v[:, :2].max(0), [1.0, 1.5])
    assert v[:, 2].max() == pytest.approx(0.3)  # elevation 1 times the height scale
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    assert (np.cross(b - a, c - a)[:, 2] > 0).all()  # faces look up


def test_parts_bake_geoms_into_link_frames_merged_by_colour(make_model):
    m = make_model(LINKS)
    parts = link_parts(m, detail=8)
    by_link = {p.link: p for p in parts if p.link != 3}
    assert set(by_link) == {-1, 0, 1, 2}
    foot = [p for p in parts if p.link == 3]
    assert len(foot) == 2  # capsule (green) and mesh (blue): two colours, two parts
    mesh_part = next(p for p in foot if p.rgba[2] > 0.8)
    np.testing.assert_allclose(mesh_part.vertices.min(0), [0, 0, 0.05], atol=1e-6)  # geom_pos applied
    assert len(link_parts(m, planes=False)) == len(parts) - 1
    hidden = replace(m, geom_group=np.full(m.num_geoms, 3, np.int8))
    assert link_parts(hidden) == []


def test_decimate_bounds_faces_and_keeps_the_extent():
    sphere = RobotModel(["a"], geom_type=[2], geom_link=[0], geom_size=[[1.0, 0, 0]], geom_pos=[[0, 0, 0]],
                        geom_quat=[[1, 0, 0, 0]], geom_rgba=[[1, 1, 1, 1]], geom_group=[0], geom_dataid=[-1])
    v, f = geom_triangles(sphere, 0, detail=96)
    assert len(f) > 4000
    v2, f2 = decimate(v, f, 500)
    assert len(f2) <= 600 and f2.max() < len(v2)
    np.testing.assert_allclose(np.abs(v2).max(0), 1.0, atol=0.2)
    assert decimate(v, f, 10**6)[1] is f


def test_check_names_the_problem(make_model):
    m = make_model(LINKS)
    assert m.check() is m
    with pytest.raises(ModelError, match="geom_link: value 4 outside -1..3"):
        replace(m, geom_link=np.where(m.geom_link == 0, 4, m.geom_link)).check()
    with pytest.raises(ModelError, match="geom_dataid of mesh geoms: value 3"):
        replace(m, geom_dataid=np.where(m.geom_type == 7, 3, m.geom_dataid)).check()
    with pytest.raises(ModelError, match="link_parents has 2 entries for 4 links"):
        replace(m, link_parents=[-1, 0]).check()
    with pytest.raises(ModelError, match="at least 2 rows"):
        replace(m, hfield_nrow=np.array([1], np.int32)).check()


def test_bind_reorders_links_and_drops_unrecorded_ones(make_model):
    m = make_model(LINKS)
    assert m.bind(LINKS) is m
    b = m.bind(["foot", "base", "extra"])
    assert b.link_names == ["foot", "base", "extra"] and b.link_parents == [1, -1, -1]
    assert sorted(b.geom_link.tolist()) == [-1, -1, 0, 0, 1]  # spheres of thigh and shin dropped
    assert b.info["dropped_geoms"] == 2
    assert "4 links, 7 geoms" in repr(m)


def test_bind_refuses_a_cycle_of_parents(make_model):
    m = replace(make_model(LINKS), link_parents=[2, 0, 1, 2])  # base <- shin <- thigh <- base
    with pytest.raises(ModelError, match="cycle"):
        m.bind(["foot"])
