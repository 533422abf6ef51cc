"""`RobotModel`: the geometry of a recorded robot (and its static world), as plain arrays.

A model is a list of geoms, each a primitive or a mesh or a height field, rigidly attached to
one recorded link (``geom_link``: an index into the rollout's ``link_names``) or to the world
(``-1``: static, e.g. the floor or terrain). A geom's pose is given in its link's frame, so its
world pose at step t is ``link pose [t] * geom pose``. The conventions are MuJoCo's
(``mjModel``'s ``geom_*``, ``mesh_*``, ``hfield_*`` fields), so a MuJoCo model maps one to one:

=========  ======  ==============================================================================
type       value   ``geom_size`` (metres)
=========  ======  ==============================================================================
plane      0       x half-size, y half-size, grid spacing (0 half-size: infinite); normal +z
hfield     1       unused (``hfield_size`` of ``geom_dataid``)
sphere     2       radius
capsule    3       radius, half-length of the cylinder part (along z)
ellipsoid  4       three radii
cylinder   5       radius, half-length (along z)
box        6       three half-sizes
mesh       7       unused (vertices of mesh ``geom_dataid``, in the geom frame)
=========  ======  ==============================================================================

Quaternions are wxyz. Colours are RGBA in [0, 1]. ``geom_group`` is MuJoCo's visibility group:
renderers show groups 0-2 (MuJoCo's default; collision-only geoms usually sit in group 3).
A height field ``h`` is ``hfield_nrow[h] x hfield_ncol[h]`` elevations in [0, 1] at
``hfield_data[hfield_adr[h]:]`` (row-major, row 0 at -y), spanning ``[-size[0], size[0]] x
[-size[1], size[1]]`` with heights ``data * size[2]``, and ``size[3]`` of base below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from rollrec.format.model import MODEL_ARRAYS

GEOM_TYPES = ("plane", "hfield", "sphere", "capsule", "ellipsoid", "cylinder", "box", "mesh")
PLANE, HFIELD, SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX, MESH = range(8)
#: Geom groups shown by default (MuJoCo's own default).
VISIBLE_GROUPS = (0, 1, 2)

#: Array fields: name -> (dtype, trailing shape), as the file format stores them (`rollrec.format.model`).
#: The leading axis is the count of that kind.
ARRAYS: dict[str, tuple[Any, tuple[int, ...]]] = MODEL_ARRAYS
_GROUPS = {
    "geom": [k for k in ARRAYS if k.startswith("geom_")],
    "mesh": ["mesh_vertadr", "mesh_vertnum", "mesh_faceadr", "mesh_facenum"],
    "hfield": ["hfield_size", "hfield_nrow", "hfield_ncol", "hfield_adr"],
}


class ModelError(ValueError):
    """A model whose arrays contradict each other; the message names the array and the index."""


def _empty(name: str) -> np.ndarray:
    dtype, trailing = ARRAYS[name]
    return np.zeros((0, *trailing), dtype)


@dataclass
class RobotModel:
    """The geometry of a robot whose link poses a rollout records (see the module docstring).

    All arrays are numpy, on the host. Build one with `rollrec.model_from_mujoco` or
    `rollrec.model_from_urdf` rather than by hand.

    Args:
        link_names: the links ``geom_link`` indexes (the rollout's own ``link_names`` once the
            model is stored with it).
        geom_type: the geoms' arrays (``geom_*``), their meshes (``mesh_*``) and height fields
            (``hfield_*``), in MuJoCo's conventions: what the ``model_*`` members of a file hold,
            with their dtypes and shapes (`rollrec.format.model`). The other array arguments are
            the rest of that table, by the same names.
        link_parents: each link's parent link, -1 for a root (the body tree), or None.
        info: JSON-serialisable facts (``source``, its version, what was dropped).
    """

    link_names: list[str]
    geom_type: np.ndarray = field(default_factory=lambda: _empty("geom_type"))
    geom_link: np.ndarray = field(default_factory=lambda: _empty("geom_link"))
    geom_size: np.ndarray = field(default_factory=lambda: _empty("geom_size"))
    geom_pos: np.ndarray = field(default_factory=lambda: _empty("geom_pos"))
    geom_quat: np.ndarray = field(default_factory=lambda: _empty("geom_quat"))
    geom_rgba: np.ndarray = field(default_factory=lambda: _empty("geom_rgba"))
    geom_group: np.ndarray = field(default_factory=lambda: _empty("geom_group"))
    geom_dataid: np.ndarray = field(default_factory=lambda: _empty("geom_dataid"))
    mesh_vert: np.ndarray = field(default_factory=lambda: _empty("mesh_vert"))
    mesh_face: np.ndarray = field(default_factory=lambda: _empty("mesh_face"))
    mesh_vertadr: np.ndarray = field(default_factory=lambda: _empty("mesh_vertadr"))
    mesh_vertnum: np.ndarray = field(default_factory=lambda: _empty("mesh_vertnum"))
    mesh_faceadr: np.ndarray = field(default_factory=lambda: _empty("mesh_faceadr"))
    mesh_facenum: np.ndarray = field(default_factory=lambda: _empty("mesh_facenum"))
    hfield_size: np.ndarray = field(default_factory=lambda: _empty("hfield_size"))
    hfield_nrow: np.ndarray = field(default_factory=lambda: _empty("hfield_nrow"))
    hfield_ncol: np.ndarray = field(default_factory=lambda: _empty("hfield_ncol"))
    hfield_adr: np.ndarray = field(default_factory=lambda: _empty("hfield_adr"))
    hfield_data: np.ndarray = field(default_factory=lambda: _empty("hfield_data"))
    link_parents: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.link_names = [str(n) for n in self.link_names]
        for name, (dtype, _) in ARRAYS.items():
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        if self.link_parents is not None:
            self.link_parents = [int(p) for p in self.link_parents]

    # ---- sizes ------------------------------------------------------------------------------
    @property
    def num_geoms(self) -> int:
        return len(self.geom_type)

    @property
    def num_meshes(self) -> int:
        return len(self.mesh_vertadr)

    @property
    def num_hfields(self) -> int:
        return len(self.hfield_nrow)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array field by name (see `ARRAYS`)."""
        return {name: getattr(self, name) for name in ARRAYS}

    def mesh(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(vertices [V, 3] float32, faces [F, 3] int32)`` of mesh ``i``, faces indexing its own vertices."""
        va, vn = int(self.mesh_vertadr[i]), int(self.mesh_vertnum[i])
        fa, fn = int(self.mesh_faceadr[i]), int(self.mesh_facenum[i])
        return self.mesh_vert[va : va + vn], self.mesh_face[fa : fa + fn]

    def hfield(self, i: int) -> np.ndarray:
        """``[nrow, ncol]`` float32 elevations in [0, 1] of height field ``i``."""
        n, m, a = int(self.hfield_nrow[i]), int(self.hfield_ncol[i]), int(self.hfield_adr[i])
        return self.hfield_data[a : a + n * m].reshape(n, m)

    def visible(self, groups: Sequence[int] = VISIBLE_GROUPS) -> np.ndarray:
        """``[G]`` bool: geoms in ``groups`` and not fully transparent."""
        return np.isin(self.geom_group, list(groups)) & (self.geom_rgba[:, 3] > 0)

    # ---- checks -----------------------------------------------------------------------------
    def check(self) -> RobotModel:
        """Raise `ModelError` naming the first inconsistency (array shapes, index ranges), else return self.

        Every index a renderer follows is checked, so a damaged or hostile file cannot make one
        read out of bounds.
        """
        for group, names in _GROUPS.items():
            count = len(getattr(self, names[0]))
            for name in names:
                _, trailing = ARRAYS[name]
                arr = getattr(self, name)
                if arr.shape != (count, *trailing):
                    raise ModelError(f"{name} has shape {arr.shape}, expected {(count, *trailing)} "
                                     f"(one entry per {group}, like {names[0]})")
        for name in ("mesh_vert", "mesh_face", "hfield_data"):
            _, trailing = ARRAYS[name]
            arr = getattr(self, name)
            if arr.ndim != 1 + len(trailing) or arr.shape[1:] != trailing:
                raise ModelError(f"{name} has shape {arr.shape}, expected (n, {', '.join(map(str, trailing))})")
        L = len(self.link_names)
        _check_range("geom_type", self.geom_type, 0, len(GEOM_TYPES))
        _check_range("geom_link", self.geom_link, -1, L)
        for kind, count, label in ((MESH, self.num_meshes, "mesh"), (HFIELD, self.num_hfields, "hfield")):
            sel = self.geom_type == kind
            _check_range(f"geom_dataid of {label} geoms", self.geom_dataid[sel], 0, count)
        _check_spans("mesh vertices", self.mesh_vertadr, self.mesh_vertnum, len(self.mesh_vert))
        _check_spans("mesh faces", self.mesh_faceadr, self.mesh_facenum, len(self.mesh_face))
        self._check_faces()
        if (self.hfield_nrow < 2).any() or (self.hfield_ncol < 2).any():
            raise ModelError("every height field needs at least 2 rows and 2 columns")
        _check_spans("hfield_data", self.hfield_adr, self.hfield_nrow.astype(np.int64) * self.hfield_ncol,
                     len(self.hfield_data))
        if self.link_parents is not None:
            if len(self.link_parents) != L:
                raise ModelError(f"link_parents has {len(self.link_parents)} entries for {L} links")
            _check_range("link_parents", np.asarray(self.link_parents), -1, L)
        for name in ("geom_size", "geom_pos", "geom_quat", "geom_rgba", "mesh_vert", "hfield_size", "hfield_data"):
            if not np.isfinite(getattr(self, name)).all():
                raise ModelError(f"{name} holds NaN or infinite values")
        return self

    def _check_faces(self) -> None:
        """Every face indexes its own mesh's vertices; meshes do not claim more faces than stored
        (so the check is one vectorised pass over the faces, whatever a file claims)."""
        counts = self.mesh_facenum.astype(np.int64)
        total = int(counts.sum())
        if total > len(self.mesh_face):
            raise ModelError(f"mesh_facenum: the meshes claim {total} faces, {len(self.mesh_face)} are stored")
        if not total:
            return
        owner = np.repeat(np.arange(len(counts)), counts)
        first = np.cumsum(counts) - counts
        rows = np.repeat(self.mesh_faceadr.astype(np.int64), counts) + np.arange(total) - np.repeat(first, counts)
        faces = self.mesh_face[rows]
        bad = (faces < 0) | (faces >= self.mesh_vertnum[owner][:, None])
        if bad.any():
            i = int(owner[np.flatnonzero(bad.any(axis=1))[0]])
            raise ModelError(f"mesh_face of mesh {i} index vertices outside 0..{self.mesh_vertnum[i] - 1}")

    # ---- links ------------------------------------------------------------------------------
    def bind(self, link_names: Sequence[str]) -> RobotModel:
        """This model with ``geom_link`` re-indexed onto ``link_names`` (a rollout's), by name.

        Geoms of links not in ``link_names`` are dropped (``info["dropped_geoms"]`` counts them);
        static geoms stay. Link parents follow the names, up to the nearest kept ancestor.
        """
        names = [str(n) for n in link_names]
        if names == self.link_names:
            return self
        index = {n: i for i, n in enumerate(names)}
        old_to_new = np.array([index.get(n, -2) for n in self.link_names] + [-1], dtype=np.int32)  # [-1] -> world
        new_link = old_to_new[self.geom_link]  # geom_link == -1 picks the appended world entry
        keep = new_link != -2
        parents = None
        if self.link_parents is not None:
            parents = [-1] * len(names)
            for old, n in enumerate(self.link_names):
                if n not in index:
                    continue
                p, hops = self.link_parents[old], 0
                while p >= 0 and self.link_names[p] not in index:
                    p, hops = self.link_parents[p], hops + 1
                    if hops > len(self.link_names):
                        raise ModelError(f"link_parents: link {n!r} has a cycle among its ancestors")
                parents[index[n]] = index[self.link_names[p]] if p >= 0 else -1
        info = dict(self.info)
        if (~keep).any():
            info["dropped_geoms"] = int(info.get("dropped_geoms", 0)) + int((~keep).sum())
        geoms = {k: getattr(self, k)[keep] for k in _GROUPS["geom"]}
        geoms["geom_link"] = new_link[keep]
        return replace(self, link_names=names, link_parents=parents, info=info, **geoms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RobotModel):
            return NotImplemented
        return (self.link_names == other.link_names and self.link_parents == other.link_parents
                and all(np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                        if f.name in ARRAYS))

    def __repr__(self) -> str:
        kinds = np.bincount(self.geom_type, minlength=len(GEOM_TYPES))
        parts = ", ".join(f"{n} {GEOM_TYPES[k]}" for k, n in enumerate(kinds) if n)
        return (f"RobotModel({len(self.link_names)} links, {self.num_geoms} geoms ({parts or 'none'}), "
                f"{self.num_meshes} meshes, {self.num_hfields} height fields, source={self.info.get('source')!r})")


def _check_range(name: str, values: np.ndarray, lo: int, hi: int) -> None:
    if values.size and (values.min() < lo or values.max() >= hi):
        bad = values[(values < lo) | (values >= hi)][0]
        raise ModelError(f"{name}: value {int(bad)} outside {lo}..{hi - 1}")


def _check_spans(name: str, adr: np.ndarray, num: np.ndarray, total: int) -> None:
    adr, num = adr.astype(np.int64), num.astype(np.int64)
    if adr.size and (adr.min() < 0 or num.min() < 0 or (adr + num).max() > total):
        raise ModelError(f"{name}: an address range falls outside the {total} stored")
