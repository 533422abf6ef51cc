"""Triangle meshes of a `RobotModel`'s geoms, baked per link: what the viewer and the video draw.

`geom_triangles` tessellates one geom in its own frame (primitives at a chosen ``detail``: the
number of segments around a circle); `link_parts` bakes every visible geom into its link's frame
and merges the geoms of one link and one colour into one `Part`, so a renderer moves one mesh
per part with the link's recorded pose. Faces are counter-clockwise seen from outside.

The drawing cost is bounded (`fit_budget`): a renderer asks for the detail and the mesh
decimation that keep a model within its triangle budget (coarser primitives first, then
decimated meshes), and a model with more than `MAX_GEOMS` visible geoms, or that no detail
fits, is refused with one line (`ModelTooLarge`) before anything is tessellated: the viewer and
the video then draw the links as a skeleton.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rollrec.geometry.quaternion import quat_to_matrix
from rollrec.model.robot import (
    BOX,
    CAPSULE,
    CYLINDER,
    ELLIPSOID,
    HFIELD,
    MESH,
    PLANE,
    SPHERE,
    VISIBLE_GROUPS,
    RobotModel,
)

#: Half-size used for an infinite plane (MuJoCo's size 0), metres.
INFINITE_PLANE_HALF = 50.0


@dataclass
class Part:
    """Geoms of one link (``link`` -1: the static world) and one colour, merged into one mesh.

    ``vertices [V, 3] float32`` in the link's frame, ``faces [F, 3] int32``, ``rgba`` in [0, 1],
    ``kinds``: the geom types merged (for renderers that treat planes and terrain apart).
    """

    link: int
    rgba: tuple[float, float, float, float]
    vertices: np.ndarray
    faces: np.ndarray
    kinds: frozenset[int]

    @property
    def rgb255(self) -> tuple[int, int, int]:
        return tuple(round(255 * min(max(c, 0.0), 1.0)) for c in self.rgba[:3])  # type: ignore[return-value]


# ---- primitives, each in its own frame ------------------------------------------------------
def _lathe(profile: np.ndarray, detail: int) -> tuple[np.ndarray, np.ndarray]:
    """Revolve ``profile`` ``[P, 2]`` of (radius, z) points, bottom to top, about z.

    Points of radius 0 (poles) are kept once. Returns vertices and CCW-outward faces."""
    angles = np.linspace(0.0, 2 * np.pi, detail, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], -1)
    verts, rows = [], []
    for r, z in profile:
        if r <= 1e-12:
            rows.append([len(verts)] * detail)
            verts.append((0.0, 0.0, z))
        else:
            rows.append(list(range(len(verts), len(verts) + detail)))
            verts.extend((r * c, r * s, z) for c, s in ring)
    faces = []
    for lo, hi in itertools.pairwise(rows):
        for k in range(detail):
            k1 = (k + 1) % detail
            a, b, c, d = lo[k], lo[k1], hi[k1], hi[k]
            if a != b:
                faces.append((a, b, c))
            if c != d:
                faces.append((a, c, d))
    return np.asarray(verts, np.float64), np.asarray(faces, np.int32).reshape(-1, 3)


def _sphere_profile(radius: float, detail: int, z0: float = 0.0, half: str = "both") -> np.ndarray:
    rings = max(2, detail // 2)
    lo, hi = {"both": (-np.pi / 2, np.pi / 2), "bottom": (-np.pi / 2, 0.0), "top": (0.0, np.pi / 2)}[half]
    n = rings + 1 if half == "both" else rings // 2 + 1
    phi = np.linspace(lo, hi, n)
    return np.stack([radius * np.cos(phi), z0 + radius * np.sin(phi)], -1)


def _box() -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[x, y, z] for z in (-1, 1) for y in (-1, 1) for x in (-1, 1)], np.float64)
    f = np.array([[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
                  [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]], np.int32)
    return v, f


def _grid(heights: np.ndarray, half_x: float, half_y: float) -> tuple[np.ndarray, np.ndarray]:
    nrow, ncol = heights.shape
    xs = np.linspace(-half_x, half_x, ncol)
    ys = np.linspace(-half_y, half_y, nrow)
    gx, gy = np.meshgrid(xs, ys)
    verts = np.stack([gx, gy, heights], -1).reshape(-1, 3)
    idx = np.arange(nrow * ncol).reshape(nrow, ncol)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return verts, faces.astype(np.int32)


def geom_triangles(model: RobotModel, g: int, detail: int = 16, max_hfield_cells: int = 128 * 128
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices [V, 3] float64, faces [F, 3] int32)`` of geom ``g`` in the geom's frame.

    ``detail``: segments around a circle. Height fields larger than ``max_hfield_cells`` are
    subsampled. Planes are a square of their half-sizes (`INFINITE_PLANE_HALF` when infinite).
    """
    kind = int(model.geom_type[g])
    s = model.geom_size[g].astype(np.float64)
    if kind == SPHERE:
        return _lathe(_sphere_profile(s[0], detail), detail)
    if kind == ELLIPSOID:
        v, f = _lathe(_sphere_profile(1.0, detail), detail)
        return v * s, f
    if kind == CAPSULE:
        prof = np.concatenate([_sphere_profile(s[0], detail, -s[1], "bottom"), _sphere_profile(s[0], detail, s[1], "top")])
        return _lathe(prof, detail)
    if kind == CYLINDER:
        return _lathe(np.array([[0.0, -s[1]], [s[0], -s[1]], [s[0], s[1]], [0.0, s[1]]]), detail)
    if kind == BOX:
        v, f = _box()
        return v * s, f
    if kind == PLANE:
        hx = s[0] if s[0] > 0 else INFINITE_PLANE_HALF
        hy = s[1] if s[1] > 0 else INFINITE_PLANE_HALF
        return np.array([[-hx, -hy, 0], [hx, -hy, 0], [hx, hy, 0], [-hx, hy, 0]], np.float64), \
            np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    if kind == MESH:
        v, f = model.mesh(int(model.geom_dataid[g]))
        return v.astype(np.float64), f.astype(np.int32)
    if kind == HFIELD:
        h = int(model.geom_dataid[g])
        heights = model.hfield(h).astype(np.float64)
        step = max(1, int(np.ceil(np.sqrt(heights.size / max_hfield_cells))))
        size = model.hfield_size[h].astype(np.float64)
        return _grid(heights[::step, ::step] * size[2], size[0], size[1])
    raise ValueError(f"geom {g}: unknown geom type {kind}")


def decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """A mesh with at most about ``max_faces`` faces, by vertex clustering on a grid (coarse but
    shape-keeping: good for silhouettes). Meshes already small enough are returned as they are."""
    if len(faces) <= max_faces:
        return vertices, faces
    lo, hi = vertices.min(0), vertices.max(0)
    extent = np.maximum(hi - lo, 1e-9)
    cells = max(4, int(np.sqrt(max_faces / 2)))  # a surface of n x n cells has ~2 n^2 faces
    for _ in range(8):
        key = np.floor((vertices - lo) / extent * (cells - 1e-9)).astype(np.int64)
        flat = (key[:, 0] * (cells + 1) + key[:, 1]) * (cells + 1) + key[:, 2]
        uniq, inverse = np.unique(flat, return_inverse=True)
        f = inverse.reshape(-1)[faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        f = np.unique(f, axis=0)
        if len(f) <= max_faces * 1.2 or cells <= 4:
            break
        cells = max(4, int(cells * 0.75))
    sums = np.zeros((len(uniq), 3))
    np.add.at(sums, inverse.reshape(-1), vertices)
    counts = np.bincount(inverse.reshape(-1), minlength=len(uniq))[:, None]
    return sums / counts, f.astype(np.int32)


#: Most visible geoms a renderer draws (each is tessellated on its own; a model with more is refused).
MAX_GEOMS = 20_000
#: The coarsest detail primitives are drawn at (segments around a circle).
MIN_DETAIL = 6
#: Fewest faces a mesh is decimated to when a model's meshes must shrink to fit a budget.
MIN_MESH_FACES = 200


class ModelTooLarge(ValueError):
    """A model whose drawing would cost more than a renderer's budget (see the module docstring)."""


def _primitive_faces(kind: int, detail: int) -> int:
    """Faces of one primitive geom of ``kind`` at ``detail`` (0 for meshes and height fields)."""
    if kind in (SPHERE, ELLIPSOID):
        return len(_lathe(_sphere_profile(1.0, detail), detail)[1])
    if kind == CAPSULE:
        prof = np.concatenate([_sphere_profile(1.0, detail, -1.0, "bottom"), _sphere_profile(1.0, detail, 1.0, "top")])
        return len(_lathe(prof, detail)[1])
    if kind == CYLINDER:
        return 4 * detail
    return {BOX: 12, PLANE: 2}.get(kind, 0)


def estimate_faces(model: RobotModel, *, detail: int, max_mesh_faces: int | None = None, groups: Sequence[int] = VISIBLE_GROUPS,
                   planes: bool = True, max_hfield_cells: int = 128 * 128) -> int:
    """Faces `link_parts` would make with these options, counted without tessellating anything."""
    visible = model.visible(groups)
    kinds = model.geom_type[visible].astype(np.int64)
    if not planes:
        kinds = kinds[kinds != PLANE]
    total = sum(int((kinds == k).sum()) * _primitive_faces(int(k), detail) for k in np.unique(kinds))
    meshes = model.geom_dataid[visible][model.geom_type[visible] == MESH].astype(np.int64)
    cap = None if max_mesh_faces is None else int(max_mesh_faces * 1.2)  # `decimate` lands within 20% of its aim
    if len(meshes):
        faces = model.mesh_facenum.astype(np.int64)[meshes]
        total += int(np.minimum(faces, cap).sum() if cap is not None else faces.sum())
    for h in model.geom_dataid[visible][model.geom_type[visible] == HFIELD].astype(np.int64):
        cells = int(model.hfield_nrow[h]) * int(model.hfield_ncol[h])
        step = max(1, int(np.ceil(np.sqrt(cells / max_hfield_cells))))
        faces = 2 * (-(-int(model.hfield_nrow[h]) // step) - 1) * (-(-int(model.hfield_ncol[h]) // step) - 1)
        total += min(faces, cap) if cap is not None else faces
    return total


def fit_budget(model: RobotModel, *, max_faces: int, detail: int, max_mesh_faces: int | None = None,
               groups: Sequence[int] = VISIBLE_GROUPS, planes: bool = True) -> tuple[int, int | None]:
    """``(detail, max_mesh_faces)`` for `link_parts` that keep ``model`` within ``max_faces``
    triangles: the given ones when they fit; else primitives halved in detail down to
    `MIN_DETAIL`, then meshes and height fields decimated (no fewer than `MIN_MESH_FACES` each).
    Raises `ModelTooLarge` (one line) for more than `MAX_GEOMS` visible geoms, or when even that
    does not fit."""
    visible = model.visible(groups)
    count = int(visible.sum()) if planes else int((visible & (model.geom_type != PLANE)).sum())
    if count > MAX_GEOMS:
        raise ModelTooLarge(f"{count:,} visible geoms, more than the {MAX_GEOMS:,} a renderer draws")
    opts = {"groups": groups, "planes": planes}
    while estimate_faces(model, detail=detail, max_mesh_faces=max_mesh_faces, **opts) > max_faces and detail > MIN_DETAIL:
        detail = max(MIN_DETAIL, detail // 2)
    faces = estimate_faces(model, detail=detail, max_mesh_faces=max_mesh_faces, **opts)
    if faces > max_faces:
        big = (model.geom_type[visible] == MESH) | (model.geom_type[visible] == HFIELD)
        if big.any():  # share what the primitives leave among the meshes and height fields
            rest = faces - estimate_faces(model, detail=detail, max_mesh_faces=0, **opts)
            share = (max_faces - (faces - rest)) // int(big.sum())
            max_mesh_faces = max(MIN_MESH_FACES, min(share, max_mesh_faces or share))
            faces = estimate_faces(model, detail=detail, max_mesh_faces=max_mesh_faces, **opts)
    if faces > max_faces:
        raise ModelTooLarge(f"{faces:,} triangles at the coarsest detail, more than the {max_faces:,} a renderer "
                            "draws")
    return detail, max_mesh_faces


def link_parts(model: RobotModel, *, detail: int = 16, max_mesh_faces: int | None = None,
               groups: Sequence[int] = VISIBLE_GROUPS, planes: bool = True) -> list[Part]:
    """Every visible geom (``groups``, alpha > 0) baked into its link's frame, merged per (link, colour).

    ``max_mesh_faces``: decimate meshes and height fields above it (`decimate`). ``planes``:
    include plane geoms (renderers with their own ground grid leave them out).
    """
    groups_of: dict[tuple[int, tuple[float, ...]], list[tuple[np.ndarray, np.ndarray, int]]] = {}
    visible = model.visible(groups)
    rot = quat_to_matrix(model.geom_quat)
    for g in np.flatnonzero(visible):
        kind = int(model.geom_type[g])
        if kind == PLANE and not planes:
            continue
        v, f = geom_triangles(model, int(g), detail)
        if max_mesh_faces is not None and kind in (MESH, HFIELD):
            v, f = decimate(v, f, max_mesh_faces)
        v = v @ rot[g].T + model.geom_pos[g]
        key = (int(model.geom_link[g]), tuple(float(round(c, 4)) for c in model.geom_rgba[g]))
        groups_of.setdefault(key, []).append((v, f, kind))
    parts = []
    for (link, rgba), items in sorted(groups_of.items()):
        offsets = np.cumsum([0] + [len(v) for v, _, _ in items[:-1]])
        verts = np.concatenate([v for v, _, _ in items]).astype(np.float32)
        faces = np.concatenate([f + o for (_, f, _), o in zip(items, offsets)]).astype(np.int32)
        parts.append(Part(link, rgba, verts, faces, frozenset(k for _, _, k in items)))  # type: ignore[arg-type]
    return parts
