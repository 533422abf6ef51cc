"""The robot model's members: a `rollrec.model.RobotModel` stored as plain numeric arrays.

A rollout may hold the geometry of the links whose poses it records, and of the static world,
so a replay needs no simulator. A file has all of these members or none (then `Rollout.model`
is None). G geoms, M meshes, H height fields; conventions are MuJoCo's ``mjModel`` fields of
the same names:

==========================  ==========  =======  ===============================================
key                         shape       dtype    meaning
==========================  ==========  =======  ===============================================
``model_geom_type``         ``[G]``     int8     0 plane, 1 hfield, 2 sphere, 3 capsule,
                                                 4 ellipsoid, 5 cylinder, 6 box, 7 mesh
``model_geom_link``         ``[G]``     int32    the link it rides on (index into ``link_names``),
                                                 -1: the world (static)
``model_geom_size``         ``[G, 3]``  float32  MuJoCo's ``geom_size`` (radius, half-lengths)
``model_geom_pos``          ``[G, 3]``  float32  position in its link's frame (world when static)
``model_geom_quat``         ``[G, 4]``  float32  orientation in its link's frame, wxyz
``model_geom_rgba``         ``[G, 4]``  float32  colour, [0, 1]
``model_geom_group``        ``[G]``     int8     visibility group (renderers show 0-2)
``model_geom_dataid``       ``[G]``     int32    its mesh or height field, else -1
``model_mesh_vert``         ``[V, 3]``  float32  vertices of every mesh, in the geom frame
``model_mesh_face``         ``[F, 3]``  int32    triangles, indices relative to the mesh's first vertex
``model_mesh_vertadr``,     ``[M]``     int32    each mesh's first vertex and vertex count
``model_mesh_vertnum``
``model_mesh_faceadr``,     ``[M]``     int32    each mesh's first face and face count
``model_mesh_facenum``
``model_hfield_size``       ``[H, 4]``  float32  x and y half-extent, height scale, base depth
``model_hfield_nrow``,      ``[H]``     int32    rows (along y) and columns (along x)
``model_hfield_ncol``
``model_hfield_adr``        ``[H]``     int32    first elevation in ``model_hfield_data``
``model_hfield_data``       ``[E]``     float32  elevations in [0, 1], row-major
==========================  ==========  =======  ===============================================

With a model, ``meta["model"]`` holds where it came from (``source``: ``"mujoco"`` or
``"urdf"``, ``source_version``, ``dropped_geoms``: geoms of bodies that move but are not
recorded) and ``meta["link_parents"]`` the body tree (each link's parent link, -1 for a root).
Readers check every index before following it (`rollrec.model.RobotModel.check`).

Every member is a plain numeric ``.npy`` (no pickle), named ``model_`` + the array's name
(`MODEL_KEYS`); `MODEL_ARRAYS` gives each array's dtype and trailing shape (the leading axis is
the count of its kind). The conversion between a `rollrec.model.RobotModel` and these members,
binding its links to the file's ``link_names``, is `rollrec.io.model`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Prefix of every model member's name.
PREFIX = "model_"

#: Array name -> (dtype, trailing shape), in member order. `rollrec.model.RobotModel` holds these.
MODEL_ARRAYS: dict[str, tuple[Any, tuple[int, ...]]] = {
    "geom_type": (np.int8, ()),
    "geom_link": (np.int32, ()),
    "geom_size": (np.float32, (3,)),
    "geom_pos": (np.float32, (3,)),
    "geom_quat": (np.float32, (4,)),
    "geom_rgba": (np.float32, (4,)),
    "geom_group": (np.int8, ()),
    "geom_dataid": (np.int32, ()),
    "mesh_vert": (np.float32, (3,)),
    "mesh_face": (np.int32, (3,)),
    "mesh_vertadr": (np.int32, ()),
    "mesh_vertnum": (np.int32, ()),
    "mesh_faceadr": (np.int32, ()),
    "mesh_facenum": (np.int32, ()),
    "hfield_size": (np.float32, (4,)),
    "hfield_nrow": (np.int32, ()),
    "hfield_ncol": (np.int32, ()),
    "hfield_adr": (np.int32, ()),
    "hfield_data": (np.float32, ()),
}

#: The member names of a stored model, in `MODEL_ARRAYS` order.
MODEL_KEYS: tuple[str, ...] = tuple(PREFIX + name for name in MODEL_ARRAYS)

__all__ = ["MODEL_ARRAYS", "MODEL_KEYS", "PREFIX"]
