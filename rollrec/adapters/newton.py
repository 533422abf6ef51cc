"""Newton (``newton-physics/newton``, package ``newton``): an ``ArticulationView``'s poses.

Follows ``newton/_src/utils/selection.py``: ``ArticulationView.get_link_transforms(state)``
(``[worlds, articulations per world, links]`` ``wp.transform``: position then xyzw quaternion,
read from ``state.body_q``), named by ``link_names``; an articulation's links start at its root.
It returns the state's memory or a staging array the next call refills, and ``wp.to_torch``
makes a zero-copy view of it: the next step (or read) overwrites it, so the source copies it on
the device. The base is the root link's transform, from the same ``body_q``: not
``get_root_transforms``, which for a floating base reads ``state.joint_q``, a coordinate that
maximal-coordinate solvers (``SolverXPBD``, ``SolverVBD``, ``SolverSemiImplicit``) never update:
their bodies move while ``joint_q`` keeps its initial value. Newton steps swap states
(``solver.step(state_0, state_1, ...)``), so pass the state that holds the current poses on
every call. On a GPU the copy waits (on the device) for the work on Warp's stream
(`rollrec.adapters.warp_streams`).
"""

from __future__ import annotations

from typing import Any

import torch

from rollrec.adapters.pose_source import PoseSource
from rollrec.adapters.warp_streams import torch_waits_for_warp


class NewtonPoses(PoseSource):
    """Poses of every articulation of ``view`` (env axis: worlds x articulations per world), xyzw.

    ``base_*`` is link 0 (the root) of ``link_*``; both from ``state.body_q``, read only."""

    quat_order = "xyzw"

    def __init__(self, view: Any):
        super().__init__([str(n) for n in view.link_names], {"articulations_per_world": int(view.count_per_world)})
        self.view = view

    def __call__(self, state: Any) -> dict[str, torch.Tensor]:
        import warp as wp

        links_wp = self.view.get_link_transforms(state)
        torch_waits_for_warp(links_wp)  # the clone below runs on torch's stream, Newton's kernels on Warp's
        links = wp.to_torch(links_wp).reshape(-1, len(self.link_names), 7).clone()
        root = links[:, 0]
        return {"base_pos": root[:, :3], "base_quat": root[:, 3:], "link_pos": links[..., :3], "link_quat": links[..., 3:]}
