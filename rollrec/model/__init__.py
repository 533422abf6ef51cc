"""Robot models stored with a rollout: geometry per link (primitives, meshes, height fields).

`RobotModel` holds the arrays; `model_from_mujoco` builds one from an ``MjModel``,
`model_from_urdf` from a URDF file; `shapes` tessellates them for the renderers;
`rollrec.io.model` stores one in a rollout file.

May import: `rollrec.geometry` (quaternions) and numpy; MuJoCo and trimesh only inside the
function that needs them. `rollrec.io` and everything above may import it.
"""

from rollrec.model.robot import GEOM_TYPES, ModelError, RobotModel

__all__ = ["GEOM_TYPES", "ModelError", "RobotModel", "model_from_mujoco", "model_from_urdf"]


def __getattr__(name: str):
    if name == "model_from_mujoco":
        from rollrec.model.mujoco import model_from_mujoco

        return model_from_mujoco
    if name == "model_from_urdf":
        from rollrec.model.urdf import model_from_urdf

        return model_from_urdf
    raise AttributeError(f"module 'rollrec.model' has no attribute {name!r}")
