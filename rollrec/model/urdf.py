"""A `RobotModel` from a URDF file: each link's ``<visual>`` elements as geoms of that link.

Follows the URDF specification (ROS ``urdf/XML``): ``<link name>`` with ``<visual>`` holding
``<origin xyz rpy>`` (rpy: fixed-axis roll about x, pitch about y, yaw about z), ``<geometry>``
(``<box size>`` full lengths, ``<cylinder radius length>`` along z, ``<sphere radius>``,
``<mesh filename scale>``; ``<capsule radius length>`` as some exporters write) and
``<material name>`` (a ``<color rgba>`` inline, or the name of a top-level ``<material>``);
``<joint type>`` with ``<parent link>``, ``<child link>`` and ``<origin>``.

Meshes are read with trimesh (STL, OBJ, and what else it reads) into vertex and face arrays.
``package://<pkg>/<path>`` is looked up in ``package_dirs`` (a folder that is the package or
holds it) and in the folders above the URDF's, and must stay inside that package's folder once
resolved (``..`` and symlinks included); ``file://`` and relative paths are paths. A mesh trimesh
cannot read (malformed, unsupported, no triangles) is a ValueError naming the file.

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

from rollrec.geometry.quaternion import quat_mul, quat_rotate, rpy_to_quat
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
        if pkg in ("", ".", "..") or "\\" in pkg:
            raise ValueError(f"mesh {filename!r}: {pkg!r} is not a package name")
        roots = [Path(d) for d in package_dirs] + [urdf_dir, *urdf_dir.parents]
        candidates = []
        for root in roots:
            candidates += [(root / pkg, root / pkg / rest)] + ([(root, root / rest)] if root.name == pkg else [])
        for package, c in candidates:
            if c.is_file():
                real, inside = os.path.realpath(c), os.path.realpath(package)
                if os.path.commonpath([real, inside]) != inside:
                    raise ValueError(f"mesh {filename!r} resolves to {real}, outside its package folder {inside}; "
                                     "refused")
                return c
        candidates = []
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

    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
        verts = np.asarray(mesh.vertices, np.float64).reshape(-1, 3) * scale
        faces = np.asarray(mesh.faces, np.int64).reshape(-1, 3)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - trimesh raises anything on a malformed or unsupported file
        raise ValueError(f"{path}: cannot read the mesh ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
                         ) from None
    if not len(faces):
        raise ValueError(f"{path}: the mesh has no triangles")
    if faces.min() < 0 or faces.max() >= len(verts):
        raise ValueError(f"{path}: the mesh's faces index vertices it does not have")
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
    root = _read_robot(path)
    materials = _materials(root)
    links = {el.get("name"): el for el in root.findall("link")}
    tree = _JointTree(path, root)
    names = list(links if link_names is None else link_names)
    index = {n: i for i, n in enumerate(names)}
    geoms = _Geoms(path, package_dirs, materials)
    dropped = 0
    for name, el in links.items():
        visuals = el.findall("visual")
        if not visuals:
            continue
        ride = tree.carrier(name, index)
        if ride is None:
            dropped += len(visuals)
            continue
        for k, vis in enumerate(visuals):
            geoms.add(vis, ride, f"link {name!r} visual {k}")
    parents = tree.parents(names, index)
    unknown = [n for n in names if n not in links]
    if names and len(unknown) == len(names):
        raise ValueError(f"{path}: none of the links {', '.join(names[:4])}{'...' if len(names) > 4 else ''} is in "
                         f"the URDF (its links: {', '.join(links)})")
    info = {"source": "urdf", "file": path.name, "robot": root.get("name", ""), "dropped_geoms": dropped,
            **({"links_not_in_urdf": unknown} if unknown else {})}
    return geoms.model(names, parents, info)


def _read_robot(path: Path) -> ET.Element:
    """The ``<robot>`` element of the file at ``path``; ValueError for bad XML or another root."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML ({exc})") from None
    if root.tag != "robot":
        raise ValueError(f"{path}: the root element is <{root.tag}>, a URDF has <robot>")
    return root


def _materials(root: ET.Element) -> dict[str, np.ndarray]:
    """``{name: rgba}`` of the top-level ``<material>`` elements that hold a ``<color>``."""
    materials = {}
    for m in root.findall("material"):
        color = m.find("color")
        if m.get("name") and color is not None:
            materials[m.get("name")] = _floats(color.get("rgba"), 4, DEFAULT_RGBA, f"material {m.get('name')!r}")
    return materials


class _JointTree:
    """The URDF's joints by child link: ``child -> (parent, type, origin pos, origin quat)``."""

    def __init__(self, path: Path, root: ET.Element):
        self.path = path
        self.joints: dict[str | None, tuple[str | None, str, np.ndarray, np.ndarray]] = {}
        for j in root.findall("joint"):
            parent, child = j.find("parent"), j.find("child")
            if parent is None or child is None:
                raise ValueError(f"{path}: joint {j.get('name')!r} needs <parent> and <child>")
            pos, quat = _origin(j.find("origin"), f"joint {j.get('name')!r}")
            self.joints[child.get("link")] = (parent.get("link"), j.get("type", "fixed"), pos, quat)

    def carrier(self, link: str, index: dict[str, int]) -> tuple[int, np.ndarray, np.ndarray] | None:
        """``(link index, pos, quat of link in it)`` of the recorded link (in ``index``) that
        ``link`` rides on through ``fixed`` joints, or None when it moves on its own."""
        pos, quat = np.zeros(3), np.array([1.0, 0, 0, 0])
        for _ in range(len(self.joints) + 1):
            if link in index:
                return index[link], pos, quat
            if link not in self.joints or self.joints[link][1] != "fixed":
                return None
            parent, _, jpos, jquat = self.joints[link]
            pos, quat = jpos + quat_rotate(jquat, pos), quat_mul(jquat, quat)
            link = parent
        raise ValueError(f"{self.path}: the joints form a cycle through link {link!r}")

    def parents(self, names: list[str], index: dict[str, int]) -> list[int]:
        """Per link of ``names``: the index of its nearest recorded ancestor, -1 for none."""
        parents = []
        for n in names:
            p, hops = self.joints.get(n, (None,))[0], 0
            while p is not None and p not in index:
                p, hops = self.joints.get(p, (None,))[0], hops + 1
                if hops > len(self.joints):
                    raise ValueError(f"{self.path}: the joints form a cycle above link {n!r}")
            parents.append(index[p] if p is not None else -1)
        return parents


class _Geoms:
    """The geoms of a URDF's visuals as they are read, and the meshes they use (each file and
    scale read once)."""

    def __init__(self, path: Path, package_dirs: Sequence[str | os.PathLike], materials: dict[str, np.ndarray]):
        self.path, self.package_dirs, self.materials = path, package_dirs, materials
        self.rows: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = []
        self.verts: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.vadr: list[int] = []
        self.vnum: list[int] = []
        self.fadr: list[int] = []
        self.fnum: list[int] = []
        self._mesh_ids: dict[tuple[str, tuple[float, ...]], int] = {}

    def add(self, vis: ET.Element, ride: tuple[int, np.ndarray, np.ndarray], where: str) -> None:
        """The geom of ``<visual>`` ``vis`` on recorded link ``ride`` (index, pose of the visual's
        link in it)."""
        li, lpos, lquat = ride
        vpos, vquat = _origin(vis.find("origin"), where)
        pos, quat = lpos + quat_rotate(lquat, vpos), quat_mul(lquat, vquat)
        rgba = _visual_rgba(vis, self.materials, where)
        geom = vis.find("geometry")
        shape = geom[0] if geom is not None and len(geom) else None
        if shape is None:
            raise ValueError(f"{self.path}: {where} has no <geometry>")
        kind, size, dataid = self._shape(shape, where)
        self.rows.append((kind, li, size, pos, quat, rgba, dataid))

    def _shape(self, shape: ET.Element, where: str) -> tuple[int, np.ndarray, int]:
        """``(geom type, size [3], mesh id or -1)`` of a ``<geometry>``'s child element."""
        size = np.zeros(3)
        if shape.tag == "box":
            return BOX, _floats(shape.get("size"), 3, (0, 0, 0), f"{where} box size") / 2, -1
        if shape.tag == "sphere":
            size[0] = float(_floats(shape.get("radius"), 1, (0,), f"{where} radius")[0])
            return SPHERE, size, -1
        if shape.tag in ("cylinder", "capsule"):
            size[0] = float(_floats(shape.get("radius"), 1, (0,), f"{where} radius")[0])
            size[1] = float(_floats(shape.get("length"), 1, (0,), f"{where} length")[0]) / 2
            return (CYLINDER if shape.tag == "cylinder" else CAPSULE), size, -1
        if shape.tag == "mesh":
            scale = _floats(shape.get("scale"), 3, (1, 1, 1), f"{where} mesh scale")
            return MESH, size, self._mesh(shape.get("filename") or "", scale, where)
        raise ValueError(f"{self.path}: {where}: unknown geometry <{shape.tag}>")

    def _mesh(self, filename: str, scale: np.ndarray, where: str) -> int:
        """The id of the mesh ``filename`` at ``scale``, read on first use."""
        key = (filename, tuple(scale))
        if key not in self._mesh_ids:
            try:
                file = resolve_mesh_path(filename, self.path.parent, self.package_dirs)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"{self.path}: {where}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"{self.path}: {where}: {exc}") from None
            v, f = _load_mesh(file, scale)
            self._mesh_ids[key] = len(self.vadr)
            self.vadr.append(sum(map(len, self.verts)))
            self.fadr.append(sum(map(len, self.faces)))
            self.verts.append(v)
            self.faces.append(f)
            self.vnum.append(len(v))
            self.fnum.append(len(f))
        return self._mesh_ids[key]

    def model(self, names: list[str], parents: list[int], info: dict) -> RobotModel:
        """The checked `RobotModel` of the geoms read."""
        g = self.rows
        return RobotModel(
            link_names=names,
            geom_type=[r[0] for r in g], geom_link=[r[1] for r in g],
            geom_size=np.array([r[2] for r in g]).reshape(-1, 3), geom_pos=np.array([r[3] for r in g]).reshape(-1, 3),
            geom_quat=np.array([r[4] for r in g]).reshape(-1, 4), geom_rgba=np.array([r[5] for r in g]).reshape(-1, 4),
            geom_group=[0] * len(g), geom_dataid=[r[6] for r in g],
            mesh_vert=np.concatenate(self.verts) if self.verts else np.zeros((0, 3)),
            mesh_face=np.concatenate(self.faces) if self.faces else np.zeros((0, 3)),
            mesh_vertadr=self.vadr, mesh_vertnum=self.vnum, mesh_faceadr=self.fadr, mesh_facenum=self.fnum,
            link_parents=parents,
            info=info,
        ).check()


def _visual_rgba(vis: ET.Element, materials: dict[str, np.ndarray], where: str) -> np.ndarray:
    mat = vis.find("material")
    if mat is None:
        return np.asarray(DEFAULT_RGBA)
    color = mat.find("color")
    if color is not None:
        return _floats(color.get("rgba"), 4, DEFAULT_RGBA, f"{where} material color")
    return materials.get(mat.get("name"), np.asarray(DEFAULT_RGBA))
