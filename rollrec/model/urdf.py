"""A `RobotModel` from a URDF file: each link's ``<visual>`` elements as geoms of that link.

Follows the URDF specification (ROS ``urdf/XML``): ``<link name>`` with ``<visual>`` holding
``<origin xyz rpy>`` (rpy: fixed-axis roll about x, pitch about y, yaw about z), ``<geometry>``
(``<box size>`` full lengths, ``<cylinder radius length>`` along z, ``<sphere radius>``,
``<mesh filename scale>``; ``<capsule radius length>`` as some exporters write) and
``<material name>`` (a ``<color rgba>`` inline, or the name of a top-level ``<material>``);
``<joint type>`` with ``<parent link>``, ``<child link>`` and ``<origin>``.

Meshes are read with trimesh (STL, OBJ, and what else it reads) into vertex and face arrays.
``package://<pkg>/<path>`` is looked up in ``package_dirs`` (a folder that is the package or
holds it) and in the folders above the URDF's; ``file://`` and relative paths are paths.

Recorded link poses are link frames, so a link's visuals ride on it directly. With
``link_names`` (the links a rollout records), a link that is not recorded but hangs on a recorded
one through ``fixed`` joints is folded into it (its visuals placed by the joints' origins); a
link that moves on its own and is not recorded is left out (``info["dropped_geoms"]``).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rollrec.model.robot import BOX, CAPSULE, CYLINDER, MESH, SPHERE, RobotModel

DEFAULT_RGBA = (0.7, 0.7, 0.7, 1.0)


def _floats(text: str | None, n: int, default: Sequence[float], where: str) -> np.ndarray:
    if text is None:
        return np.asarray(default, np.float64)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise ValueError(f"{where}: expected {n} numbers, got {text!r}") from None
    if len(values) != n:
        raise ValueError(f"{where}: expected {n} numbers, got {text!r}")
    return np.asarray(values, np.float64)


def rpy_to_quat(rpy: np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, y, z) -> wxyz quaternion of ``Rz(yaw) Ry(pitch) Rx(roll)``."""
    r, p, y = np.asarray(rpy, np.float64) / 2
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy])


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _qmul(_qmul(q, np.array([0.0, *v])), q * np.array([1, -1, -1, -1]))[1:]


def _origin(el: ET.Element | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    if el is None:
        return np.zeros(3), np.array([1.0, 0, 0, 0])
    return (_floats(el.get("xyz"), 3, (0, 0, 0), f"{where} origin xyz"),
            rpy_to_quat(_floats(el.get("rpy"), 3, (0, 0, 0), f"{where} origin rpy")))


def resolve_mesh_path(filename: str, urdf_dir: Path, package_dirs: Sequence[str | os.PathLike] = ()) -> Path:
    """The file a URDF mesh ``filename`` names (see the module docstring); FileNotFoundError if none."""
    if filename.startswith("file://"):
        candidates = [Path(filename[len("file://"):])]
    elif filename.startswith("package://"):
        pkg, _, rest = filename[len("package://"):].partition("/")
        roots = [Path(d) for d in package_dirs] + [urdf_dir, *urdf_dir.parents]
        candidates = []
        for root in roots:
            candidates += [root / pkg / rest] + ([root / rest] if root.name == pkg else [])
    else:
        candidates = [urdf_dir / filename]
    for c in candidates:
        if c.is_file():
            return c
    hint = " (pass the folder that holds the package with package_dirs / --package-dir)" \
        if filename.startswith("package://") else ""
    raise FileNotFoundError(f"mesh {filename!r} not found{hint}")


def _load_mesh(path: Path, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    mesh = trimesh.load(str(path), force="mesh", process=False)
    verts = np.asarray(mesh.vertices, np.float64) * scale
    faces = np.asarray(mesh.faces, np.int64)
    if not len(faces):
        raise ValueError(f"{path}: the mesh has no triangles")
    return verts, faces


def model_from_urdf(
    path: str | os.PathLike,
    *,
    link_names: Sequence[str] | None = None,
    package_dirs: Sequence[str | os.PathLike] = (),
) -> RobotModel:
    """The `RobotModel` of the URDF at ``path`` (see the module docstring).

    ``link_names``: the links a rollout records (default every link of the URDF, in file
    order); those the URDF lacks get no geoms (``info["links_not_in_urdf"]``). Raises
    FileNotFoundError for a missing file or mesh, ValueError naming the element for malformed
    numbers, and ValueError when none of ``link_names`` is in the URDF.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML ({exc})") from None
    if root.tag != "robot":
        raise ValueError(f"{path}: the root element is <{root.tag}>, a URDF has <robot>")
    materials = {}
    for m in root.findall("material"):
        color = m.find("color")
        if m.get("name") and color is not None:
            materials[m.get("name")] = _floats(color.get("rgba"), 4, DEFAULT_RGBA, f"material {m.get('name')!r}")
    links = {el.get("name"): el for el in root.findall("link")}
    all_names = list(links)
    joints = {}  # child -> (parent, type, pos, quat)
    for j in root.findall("joint"):
        parent, child = j.find("parent"), j.find("child")
        if parent is None or child is None:
            raise ValueError(f"{path}: joint {j.get('name')!r} needs <parent> and <child>")
        pos, quat = _origin(j.find("origin"), f"joint {j.get('name')!r}")
        joints[child.get("link")] = (parent.get("link"), j.get("type", "fixed"), pos, quat)
    names = list(all_names if link_names is None else link_names)
    index = {n: i for i, n in enumerate(names)}

    def carrier(link: str) -> tuple[int, np.ndarray, np.ndarray] | None:
        """``(link index, pose of link in it)`` of the recorded link ``link`` rides on, or None."""
        pos, quat = np.zeros(3), np.array([1.0, 0, 0, 0])
        for _ in range(len(joints) + 1):
            if link in index:
                return index[link], pos, quat
            if link not in joints or joints[link][1] != "fixed":
                return None
            parent, _, jpos, jquat = joints[link]
            pos, quat = jpos + _rotate(jquat, pos), _qmul(jquat, quat)
            link = parent
        raise ValueError(f"{path}: the joints form a cycle through link {link!r}")

    geoms: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = []
    verts, faces, vadr, vnum, fadr, fnum = [], [], [], [], [], []
    mesh_cache: dict[tuple[str, tuple[float, ...]], int] = {}
    dropped = 0
    for name, el in links.items():
        visuals = el.findall("visual")
        if not visuals:
            continue
        ride = carrier(name)
        if ride is None:
            dropped += len(visuals)
            continue
        li, lpos, lquat = ride
        for k, vis in enumerate(visuals):
            where = f"link {name!r} visual {k}"
            vpos, vquat = _origin(vis.find("origin"), where)
            pos, quat = lpos + _rotate(lquat, vpos), _qmul(lquat, vquat)
            rgba = _visual_rgba(vis, materials, where)
            geom = vis.find("geometry")
            shape = geom[0] if geom is not None and len(geom) else None
            if shape is None:
                raise ValueError(f"{path}: {where} has no <geometry>")
            size, kind, dataid = np.zeros(3), None, -1
            if shape.tag == "box":
                kind, size = BOX, _floats(shape.get("size"), 3, (0, 0, 0), f"{where} box size") / 2
            elif shape.tag == "sphere":
                kind, size[0] = SPHERE, float(_floats(shape.get("radius"), 1, (0,), f"{where} radius")[0])
            elif shape.tag in ("cylinder", "capsule"):
                kind = CYLINDER if shape.tag == "cylinder" else CAPSULE
                size[0] = float(_floats(shape.get("radius"), 1, (0,), f"{where} radius")[0])
                size[1] = float(_floats(shape.get("length"), 1, (0,), f"{where} length")[0]) / 2
            elif shape.tag == "mesh":
                kind = MESH
                scale = _floats(shape.get("scale"), 3, (1, 1, 1), f"{where} mesh scale")
                filename = shape.get("filename") or ""
                key = (filename, tuple(scale))
                if key not in mesh_cache:
                    try:
                        file = resolve_mesh_path(filename, path.parent, package_dirs)
                    except FileNotFoundError as exc:
                        raise FileNotFoundError(f"{path}: {where}: {exc}") from None
                    v, f = _load_mesh(file, scale)
                    mesh_cache[key] = len(vadr)
                    vadr.append(sum(map(len, verts)))
                    fadr.append(sum(map(len, faces)))
                    verts.append(v)
                    faces.append(f)
                    vnum.append(len(v))
                    fnum.append(len(f))
                dataid = mesh_cache[key]
            else:
                raise ValueError(f"{path}: {where}: unknown geometry <{shape.tag}>")
            geoms.append((kind, li, size, pos, quat, rgba, dataid))

    parents = []
    for n in names:
        p, hops = joints.get(n, (None,))[0], 0
        while p is not None and p not in index:
            p, hops = joints.get(p, (None,))[0], hops + 1
            if hops > len(joints):
                raise ValueError(f"{path}: the joints form a cycle above link {n!r}")
        parents.append(index[p] if p is not None else -1)
    unknown = [n for n in names if n not in links]
    if names and len(unknown) == len(names):
        raise ValueError(f"{path}: none of the links {', '.join(names[:4])}{'...' if len(names) > 4 else ''} is in "
                         f"the URDF (its links: {', '.join(all_names)})")
    return RobotModel(
        link_names=names,
        geom_type=[g[0] for g in geoms], geom_link=[g[1] for g in geoms],
        geom_size=np.array([g[2] for g in geoms]).reshape(-1, 3), geom_pos=np.array([g[3] for g in geoms]).reshape(-1, 3),
        geom_quat=np.array([g[4] for g in geoms]).reshape(-1, 4), geom_rgba=np.array([g[5] for g in geoms]).reshape(-1, 4),
        geom_group=[0] * len(geoms), geom_dataid=[g[6] for g in geoms],
        mesh_vert=np.concatenate(verts) if verts else np.zeros((0, 3)),
        mesh_face=np.concatenate(faces) if faces else np.zeros((0, 3)),
        mesh_vertadr=vadr, mesh_vertnum=vnum, mesh_faceadr=fadr, mesh_facenum=fnum,
        link_parents=parents,
        info={"source": "urdf", "file": path.name, "robot": root.get("name", ""), "dropped_geoms": dropped,
              **({"links_not_in_urdf": unknown} if unknown else {})},
    ).check()


def _visual_rgba(vis: ET.Element, materials: dict[str, np.ndarray], where: str) -> np.ndarray:
    mat = vis.find("material")
    if mat is None:
        return np.asarray(DEFAULT_RGBA)
    color = mat.find("color")
    if color is not None:
        return _floats(color.get("rgba"), 4, DEFAULT_RGBA, f"{where} material color")
    return materials.get(mat.get("name"), np.asarray(DEFAULT_RGBA))
