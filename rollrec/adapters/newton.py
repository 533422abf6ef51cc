"""Newton (``newton-physics/newton``, package ``newton``): an ``ArticulationView``'s poses.

Follows ``newton/_src/utils/selection.py``: ``ArticulationView.get_root_transforms(state)``
(``[worlds, articulations per world]`` ``wp.transform``: position then xyzw quaternion) and
``get_link_transforms(state)`` (``[worlds, articulations, links]``), named by ``link_names``.
Both return the state's memory or a staging array the next call refills, and ``wp.to_torch``
makes a zero-copy view of it: the next step (or read) overwrites it. The source copies both on
the device. Newton steps swap states (``solver.step(state_0, state_1, ...)``), so pass the state
that holds the current poses on every call. On a GPU the copies wait (on the device) for the
work on Warp's stream (`rollrec.adapters.warp_streams`).
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.pose_source import PoseSource
from rollrec.adapters.warp_streams import torch_waits_for_warp


class NewtonPoses(PoseSource):
    """Poses of every articulation of ``view`` (env axis: worlds x articulations per world), xyzw."""

    quat_order = "xyzw"

    def __init__(self, view: Any):
        super().__init__([str(n) for n in view.link_names], {"articulations_per_world": int(view.count_per_world)})
        self.view = view

    def __call__(self, state: Any) -> dict[str, torch.Tensor]:
        import warp as wp

        root_wp, links_wp = self.view.get_root_transforms(state), self.view.get_link_transforms(state)
        torch_waits_for_warp(links_wp)  # the clones below run on torch's stream, Newton's kernels on Warp's
        root, links = wp.to_torch(root_wp), wp.to_torch(links_wp)
        root = root.reshape(-1, 7).clone()
        links = links.reshape(root.shape[0], -1, 7).clone()
        return {"base_pos": root[:, :3], "base_quat": root[:, 3:], "link_pos": links[..., :3], "link_quat": links[..., 3:]}
