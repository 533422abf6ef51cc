"""Newton (``newton-physics/newton``, package ``newton``): an ``ArticulationView``'s poses.

Follows ``newton/_src/utils/selection.py``: ``ArticulationView.get_root_transforms(state)``
(``[worlds, articulations per world]`` ``wp.transform``: position then xyzw quaternion) and
``get_link_transforms(state)`` (``[worlds, articulations, links]``), named by ``link_names``.
Both return the state's memory or a staging array the next call refills, and ``wp.to_torch``
makes a zero-copy view of it: the next step (or read) overwrites it. The source copies both on
the device. Newton steps swap states (``solver.step(state_0, state_1, ...)``), so pass the state
that holds the current poses on every call.
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.pose_source import PoseSource


class NewtonPoses(PoseSource):
    """Poses of every articulation of ``view`` (env axis: worlds x articulations per world), xyzw."""

    quat_order = "xyzw"

    def __init__(self, view: Any):
        super().__init__([str(n) for n in view.link_names], {"articulations_per_world": int(view.count_per_world)})
        self.view = view

    def __call__(self, state: Any) -> dict[str, torch.Tensor]:
        import warp as wp

        root = wp.to_torch(self.view.get_root_transforms(state))
        links = wp.to_torch(self.view.get_link_transforms(state))
        root = root.reshape(-1, 7).clone()
        links = links.reshape(root.shape[0], -1, 7).clone()
        return {"base_pos": root[:, :3], "base_quat": root[:, 3:], "link_pos": links[..., :3], "link_quat": links[..., 3:]}
