"""URDF robots: visuals become geoms of their links, fixed children fold in, meshes load from packages."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.model import model_from_urdf
from rollrec.geometry.quaternion import quat_to_matrix, rpy_to_quat

URDF = """<?xml version="1.0"?>
<robot name="arm">
  <material name="orange"><color rgba="1 0.5 0 1"/></material>
  <link name="base">
    <visual><origin xyz="0 0 0.05"/><geometry><box size="0.4 0.2 0.1"/></geometry><material name="orange"/></visual>
  </link>
  <link name="upper">
    <visual><origin xyz="0 0 0.2" rpy="0 0 0"/><geometry><cylinder radius="0.03" length="0.4"/></geometry>
      <material name="blue"><color rgba="0 0 1 1"/></material></visual>
  </link>
  <link name="tool_mount"/>
  <link name="tool">
    <visual><origin xyz="0.01 0 0"/><geometry><mesh filename="package://arm_description/meshes/tool.stl" scale="2 2 2"/></geometry></visual>
  </link>
  <link name="sensor"><visual><geometry><sphere radius="0.02"/></geometry></visual></link>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="upper"/><origin xyz="0 0 0.1"/></joint>
  <joint name="mount" type="fixed"><parent link="upper"/><child link="tool_mount"/><origin xyz="0 0 0.4" rpy="0 1.5707963 0"/></joint>
  <joint name="tool_fix" type="fixed"><parent link="tool_mount"/><child link="tool"/><origin xyz="0.1 0 0"/></joint>
  <joint name="probe" type="prismatic"><parent link="upper"/><child link="sensor"/><origin xyz="0 0.1 0"/></joint>
</robot>
"""


@pytest.fixture
def arm(tmp_path):
    import trimesh

    pkg = tmp_path / "src" / "arm_description"
    (pkg / "meshes").mkdir(parents=True)
    (pkg / "urdf").mkdir()
    trimesh.creation.box(extents=(0.02, 0.04, 0.06)).export(pkg / "meshes" / "tool.stl")
    path = pkg / "urdf" / "arm.urdf"
    path.write_text(URDF)
    return path


def test_every_link_by_default(arm):
    m = model_from_urdf(arm)
    assert m.link_names == ["base", "upper", "tool_mount", "tool", "sensor"]
    assert m.link_parents == [-1, 0, 1, 2, 1]
    assert m.geom_type.tolist() == [6, 5, 7, 2] and m.geom_link.tolist() == [0, 1, 3, 4]
    np.testing.assert_allclose(m.geom_size[0], [0.2, 0.1, 0.05])  # box: half sizes
    np.testing.assert_allclose(m.geom_size[1, :2], [0.03, 0.2])  # cylinder: radius, half length
    np.testing.assert_allclose(m.geom_rgba[:2], [[1, 0.5, 0, 1], [0, 0, 1, 1]])
    v, _ = m.mesh(0)
    np.testing.assert_allclose(np.ptp(v, axis=0), [0.04, 0.08, 0.12], atol=1e-6)  # scaled 2x
    assert m.info["source"] == "urdf" and m.info["robot"] == "arm"


def test_unrecorded_fixed_children_fold_into_their_recorded_parent(arm):
    m = model_from_urdf(arm, link_names=["base", "upper"])
    assert m.geom_type.tolist() == [6, 5, 7] and m.geom_link.tolist() == [0, 1, 1]
    assert m.info["dropped_geoms"] == 1  # the sensor moves on its own prismatic joint
    # tool in upper's frame: mount (0,0,0.4) pitched 90 deg, then (0.1,0,0), then the visual's (0.01,0,0)
    pitch = quat_to_matrix(rpy_to_quat(np.array([0, 1.5707963, 0])))
    np.testing.assert_allclose(m.geom_pos[2], [0, 0, 0.4] + pitch @ [0.11, 0, 0], atol=1e-6)
    np.testing.assert_allclose(quat_to_matrix(m.geom_quat[2]), pitch, atol=1e-6)


def test_rpy_is_fixed_axis_xyz():
    r, p, y = 0.3, -0.7, 1.1
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    np.testing.assert_allclose(quat_to_matrix(rpy_to_quat(np.array([r, p, y]))), rz @ ry @ rx, atol=1e-12)


def test_errors_name_the_problem(arm, tmp_path):
    moved = tmp_path / "elsewhere.urdf"
    moved.write_text(URDF)
    with pytest.raises(FileNotFoundError, match="link 'tool' visual 0: mesh 'package://arm_description/meshes/tool.stl' "
                       "not found .*package_dirs"):
        model_from_urdf(moved)
    assert model_from_urdf(moved, package_dirs=[arm.parents[1]]).num_meshes == 1
    with pytest.raises(ValueError, match="none of the links nope is in the URDF"):
        model_from_urdf(arm, link_names=["nope"])
    bad = tmp_path / "bad.urdf"
    bad.write_text(URDF.replace('size="0.4 0.2 0.1"', 'size="0.4 0.2"'))
    with pytest.raises(ValueError, match="link 'base' visual 0 box size: expected 3 numbers"):
        model_from_urdf(bad)


def test_urdf_stored_with_a_recording_and_drawn_by_video_urdf(arm, tmp_path, make_fields):
    fields = make_fields(T=6, N=2, L=2)
    fields["link_names"] = ["base", "upper"]
    path = rollrec.save(tmp_path / "arm.npz", fields, dt=0.05,
                        model=model_from_urdf(arm, link_names=["base", "upper"]))
    with rollrec.load(path) as r:
        assert r.model.info["source"] == "urdf" and r.model.num_meshes == 1
    plain = rollrec.save(tmp_path / "plain.npz", fields, dt=0.05)
    from rollrec.cli import main

    out = tmp_path / "arm.mp4"
    assert main(["video", str(plain), "--urdf", str(arm), "--size", "160x120", "-o", str(out), "--quiet"]) == 0
    assert out.exists()
    from rollrec.video.scene import scenes_for

    with rollrec.load(plain) as r:
        scene = scenes_for(r, [0], "top", model=model_from_urdf(arm))[0]  # bound to the file's links by name
        assert scene.bodies is not None and scene.bodies.num_faces > 12


def test_replay_urdf_poses_it_by_link_name(arm, tmp_path, make_fields, capsys):
    from rollrec.cli import main
    from rollrec.viewer.server import serve, stop_app

    fields = make_fields(T=6, N=2, L=2)
    fields["link_names"] = ["upper", "base"]
    path = rollrec.save(tmp_path / "arm.npz", fields, dt=0.05)
    app = serve(path, port=0, block=False, model=model_from_urdf(arm, link_names=["upper", "base"]))
    try:
        bodies = app.scene.robots[0].bodies
        assert bodies is not None and {p.link for p in bodies.parts} == {0, 1}
        app.seek(3)
        upper = next(h for h, p in zip(bodies.handles, bodies.parts) if p.link == 0)
        np.testing.assert_allclose(upper.position, fields["link_pos"][3, 0, 0], rtol=1e-6)
    finally:
        stop_app(app)
    no_links = make_fields(T=4, N=1)
    plain = rollrec.save(tmp_path / "plain.npz", no_links, dt=0.05)
    assert main(["replay", str(plain), "--urdf", str(arm), "--port", "0"]) == 1
    assert "records no link poses" in capsys.readouterr().err


def test_a_cycle_of_joints_is_an_error_not_a_hang(tmp_path):
    path = tmp_path / "cycle.urdf"
    path.write_text("""<robot name="loop">
  <link name="a"><visual><geometry><sphere radius="0.1"/></geometry></visual></link>
  <link name="b"><visual><geometry><sphere radius="0.1"/></geometry></visual></link>
  <link name="c"/>
  <joint name="j1" type="fixed"><parent link="a"/><child link="b"/></joint>
  <joint name="j2" type="fixed"><parent link="b"/><child link="a"/></joint>
</robot>""")
    with pytest.raises(ValueError, match="cycle"):
        model_from_urdf(path, link_names=["c"])


def _one_mesh_urdf(path, filename: str):
    path.write_text(f'<robot name="r"><link name="a"><visual><geometry><mesh filename="{filename}"/></geometry>'
                    '</visual></link></robot>')
    return path


@pytest.mark.parametrize("filename, message", [
    ("package://../../../etc/passwd", r"'\.\.' is not a package name"),
    ("package://arm_description/../../secret.stl", r"resolves to .*secret\.stl, outside its package folder"),
    ("package://arm_description/meshes/link.stl", r"resolves to .*secret\.stl, outside its package folder"),
])
def test_package_paths_stay_inside_their_package(arm, tmp_path, filename, message):
    import trimesh

    secret = tmp_path / "secret.stl"  # a real mesh, but outside every package folder
    trimesh.creation.box(extents=(1, 1, 1)).export(secret)
    (arm.parents[1] / "meshes" / "link.stl").symlink_to(secret)
    urdf = _one_mesh_urdf(arm.parent / "escape.urdf", filename)
    with pytest.raises(ValueError, match=r"link 'a' visual 0: mesh .*" + message):
        model_from_urdf(urdf)


@pytest.mark.parametrize("name, content, message", [
    ("bad.stl", b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0\nendloop\n", "the mesh has no triangles"),
    ("bad.ply", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\n", r"cannot read the mesh \("),
    ("bad.obj", b"v 0 0 0\nf 1 2 3\n", r"cannot read the mesh \(IndexError"),
    ("m.dae", b"<COLLADA></COLLADA>", r"cannot read the mesh \("),
    ("m.xyz123", b"\x00\x01", r"cannot read the mesh \("),
])
def test_a_malformed_or_unsupported_mesh_is_one_line(tmp_path, capsys, make_fields, name, content, message):
    (tmp_path / name).write_bytes(content)
    urdf = _one_mesh_urdf(tmp_path / "r.urdf", name)
    with pytest.raises(ValueError, match=message):
        model_from_urdf(urdf)
    fields = make_fields(3, 1, L=1)
    fields["link_names"] = ["a"]
    run = rollrec.save(tmp_path / "run.npz", fields, dt=0.1)
    from rollrec.cli import main

    assert main(["video", str(run), "--urdf", str(urdf), "-o", str(tmp_path / "v.mp4")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "internal error" not in err and name in err
