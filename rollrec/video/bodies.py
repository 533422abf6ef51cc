"""The robot's bodies in a video frame, on the CPU: shaded triangles in painter's order (OpenCV).

`BodiesDrawer` bakes a `RobotModel` once (`rollrec.model.shapes.link_parts`: primitives at a low
``detail``, meshes and terrain decimated to ``max_mesh_faces``) into one vertex array with the
link each vertex rides on. A frame then costs one vectorised transform and projection of every
vertex, back-face culling, a depth sort, and one ``cv2.fillConvexPoly`` per visible triangle.
Faces are shaded by a light over the camera's shoulder (ambient + Lambert), so shape reads
without a depth buffer. Planes are left to the ground grid the scene draws.
"""

from __future__ import annotations

import cv2
import numpy as np

from rollrec.model.robot import RobotModel
from rollrec.geometry.quaternion import quat_to_matrix
from rollrec.model.shapes import fit_budget, link_parts
from rollrec.video.camera import Camera

_SHIFT = 4
_SCALE = 1 << _SHIFT
_LIMIT = 1 << 20
_NEAR = 0.05
AMBIENT = 0.35
#: Most triangles a frame draws (each is one painter's-order polygon on the CPU: about 1 us).
MAX_FACES = 300_000


def check_drawable(model: RobotModel | None, max_faces: int = MAX_FACES) -> None:
    """Raise `rollrec.model.shapes.ModelTooLarge` (one line) when `BodiesDrawer` cannot draw
    ``model`` within ``max_faces`` triangles (nothing is tessellated); None passes."""
    if model is not None:
        fit_budget(model, max_faces=max_faces, detail=10, max_mesh_faces=400, planes=False)


class BodiesDrawer:
    """Draws ``model``'s visible geoms posed by link poses onto frames (see the module docstring).

    ``detail``: segments around a primitive's circle; ``max_mesh_faces``: faces per mesh or
    height field after decimation; both lowered as far as needed to keep the triangles within
    ``max_faces`` (default `MAX_FACES`; `rollrec.model.shapes.fit_budget`), and a model that
    cannot fit raises `rollrec.model.shapes.ModelTooLarge`.
    """

    def __init__(self, model: RobotModel, *, detail: int = 10, max_mesh_faces: int = 400, max_faces: int | None = None):
        detail, max_mesh_faces = fit_budget(model, max_faces=MAX_FACES if max_faces is None else max_faces, detail=detail,
                                            max_mesh_faces=max_mesh_faces, planes=False)
        parts = link_parts(model, detail=detail, max_mesh_faces=max_mesh_faces, planes=False)
        self.num_links = len(model.link_names)
        verts, links, faces, colors = [], [], [], []
        offset = 0
        for p in parts:
            verts.append(p.vertices.astype(np.float64))
            links.append(np.full(len(p.vertices), p.link if p.link >= 0 else self.num_links, np.int64))
            faces.append(p.faces.astype(np.int64) + offset)
            colors.append(np.broadcast_to(np.asarray(p.rgb255, np.float64), (len(p.faces), 3)))
            offset += len(p.vertices)
        self.vertices = np.concatenate(verts) if verts else np.zeros((0, 3))
        self.vertex_link = np.concatenate(links) if links else np.zeros(0, np.int64)
        self.faces = np.concatenate(faces) if faces else np.zeros((0, 3), np.int64)
        self.colors = np.concatenate(colors) if colors else np.zeros((0, 3))

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    def world_vertices(self, link_pos: np.ndarray | None, link_quat: np.ndarray | None) -> np.ndarray:
        """``[V, 3]`` vertices in the world for links at ``link_pos [L, 3]``, ``link_quat [L, 4]`` (wxyz)."""
        rot = np.empty((self.num_links + 1, 3, 3))
        pos = np.zeros((self.num_links + 1, 3))
        rot[-1] = np.eye(3)
        if self.num_links:
            rot[:-1] = quat_to_matrix(link_quat)
            pos[:-1] = link_pos
        r = rot[self.vertex_link]
        return np.einsum("vij,vj->vi", r, self.vertices) + pos[self.vertex_link]

    def draw(self, img: np.ndarray, cam: Camera, link_pos: np.ndarray | None, link_quat: np.ndarray | None) -> int:
        """Draw the bodies onto ``img`` in place; returns the number of triangles drawn.

        Links with a non-finite pose are not drawn."""
        if not len(self.faces):
            return 0
        world = self.world_vertices(link_pos, link_quat)
        camv = cam.to_camera(world)
        tri = camv[self.faces]  # [F, 3, 3] camera coordinates (right, up, depth)
        ok = np.isfinite(tri).all(axis=(1, 2)) & (tri[:, :, 2] > _NEAR).all(axis=1)
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        # (right, up, depth) is a left-handed frame: the cross product flips, so outward normals of
        # faces towards the eye (at the origin) have a positive dot product with the face centre.
        facing = np.einsum("fi,fi->f", normal, tri.mean(axis=1)) > 0
        normal = -normal  # outward, in camera coordinates
        keep = np.flatnonzero(ok & facing)
        if not keep.size:
            return 0
        n = normal[keep]
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        light = np.array([-0.35, 0.55, -0.75])  # from over the camera's left shoulder, in camera coordinates
        light /= np.linalg.norm(light)
        shade = AMBIENT + (1 - AMBIENT) * np.clip(n @ light, 0.0, 1.0)
        color = np.clip(self.colors[keep] * shade[:, None], 0, 255).astype(np.int32)
        depth = tri[keep, :, 2].mean(axis=1)
        order = np.argsort(-depth, kind="stable")
        w, h = cam.size
        f = cam.focal
        t = tri[keep][order]
        uv = np.stack((0.5 * w + f * t[..., 0] / t[..., 2], 0.5 * h - f * t[..., 1] / t[..., 2]), axis=-1)
        pts = np.round(np.clip(uv, -_LIMIT, _LIMIT) * _SCALE).astype(np.int32)
        for p, c in zip(pts, color[order].tolist()):
            cv2.fillConvexPoly(img, p, c, cv2.LINE_AA, _SHIFT)
        return len(keep)
